"""Celery tasks of actions: thin adapters that take ids and call one service function."""

from celery import shared_task

from actions import services


@shared_task
def run_approved_action(audit_id: int) -> None:
    services.execute_approved_action(audit_id=audit_id)


@shared_task
def sweep_actions() -> dict[str, int]:
    return services.sweep_actions()
