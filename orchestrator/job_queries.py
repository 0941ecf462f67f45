"""Reading a workspace's jobs: the filtered, cursor-paginated listing."""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q

from core.exceptions import OrchestratorError
from orchestrator.models import Job, Workspace

MAX_PAGE_SIZE = 100


class InvalidCursor(OrchestratorError):
    code = "invalid_request"
    status = 400


@dataclass(frozen=True)
class JobPage:
    jobs: list[Job]
    next_cursor: str | None


def list_jobs(
    *,
    workspace: Workspace,
    limit: int,
    cursor: str | None = None,
    statuses: list[str] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    client_request_id: str | None = None,
) -> JobPage:
    """Newest first. The cursor is the (created_at, id) of the last job shown, so inserts
    between pages land before it and never shift a page: nothing is skipped or repeated."""
    jobs = Job.objects.for_workspace(workspace).order_by("-created_at", "-id")
    if statuses:
        jobs = jobs.filter(status__in=statuses)
    if created_after is not None:
        jobs = jobs.filter(created_at__gte=created_after)
    if created_before is not None:
        jobs = jobs.filter(created_at__lt=created_before)
    if client_request_id is not None:
        jobs = jobs.filter(client_request_id=client_request_id)
    if cursor:
        created_at, job_id = _decode(cursor)
        jobs = jobs.filter(Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=job_id))
    page = list(jobs[: limit + 1])
    more = len(page) > limit
    page = page[:limit]
    return JobPage(jobs=page, next_cursor=_encode(page[-1]) if more else None)


def _encode(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, job_id = json.loads(raw)
        parsed = datetime.fromisoformat(created_at), uuid.UUID(job_id)
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise InvalidCursor(
            "The cursor is not one this API gave.", fields={"cursor": ["Invalid cursor."]}
        ) from None
    if parsed[0].tzinfo is None:
        raise InvalidCursor(
            "The cursor is not one this API gave.", fields={"cursor": ["Invalid cursor."]}
        )
    return parsed
