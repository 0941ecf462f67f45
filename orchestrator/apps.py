from django.apps import AppConfig


class OrchestratorConfig(AppConfig):
    name = "orchestrator"

    def ready(self) -> None:
        from orchestrator import signals  # noqa: F401 - connects the signal receivers
