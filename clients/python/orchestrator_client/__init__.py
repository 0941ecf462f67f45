"""A typed client of the AI Orchestrator API, sync and async, on httpx.

from orchestrator_client import OrchestratorClient

with OrchestratorClient("https://orchestrator.example.com", api_key) as client:
    job = client.submit(prompt="Plan my week", actions=["task.create"])
    job = client.wait_for_job(job.id)
    print(job.status, job.output_text)
"""

from orchestrator_client._version import __version__
from orchestrator_client.async_client import AsyncOrchestratorClient
from orchestrator_client.client import OrchestratorClient
from orchestrator_client.errors import (
    ActionNotPendingError,
    ApiConnectionError,
    ApiError,
    ApiTimeoutError,
    ApprovalExpiredError,
    ArgumentsChangedError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    CredentialsInUrlError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    InsufficientScopeError,
    InternalServerError,
    InvalidRequestError,
    JobFinishedError,
    JobWaitTimeout,
    MalformedJsonError,
    MethodNotAllowedError,
    NotAcceptableError,
    NotFoundError,
    OrchestratorClientError,
    RateLimitedError,
    RequestTooLargeError,
    ServerError,
    ServiceUnavailableError,
    UnexpectedResponseError,
    UnsupportedMediaTypeError,
    WebhookVerificationError,
)
from orchestrator_client.models import (
    Action,
    Job,
    JobAction,
    JobError,
    JobFields,
    JobFilters,
    JobSummary,
    Message,
    Page,
    WebhookEvent,
)
from orchestrator_client.retry import RetryPolicy
from orchestrator_client.webhooks import verify_webhook

__all__ = [
    "Action",
    "ActionNotPendingError",
    "ApiConnectionError",
    "ApiError",
    "ApiTimeoutError",
    "ApprovalExpiredError",
    "ArgumentsChangedError",
    "AsyncOrchestratorClient",
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "CredentialsInUrlError",
    "ForbiddenError",
    "IdempotencyKeyReusedError",
    "InsufficientScopeError",
    "InternalServerError",
    "InvalidRequestError",
    "Job",
    "JobAction",
    "JobError",
    "JobFields",
    "JobFilters",
    "JobFinishedError",
    "JobSummary",
    "JobWaitTimeout",
    "MalformedJsonError",
    "Message",
    "MethodNotAllowedError",
    "NotAcceptableError",
    "NotFoundError",
    "OrchestratorClient",
    "OrchestratorClientError",
    "Page",
    "RateLimitedError",
    "RequestTooLargeError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "UnexpectedResponseError",
    "UnsupportedMediaTypeError",
    "WebhookEvent",
    "WebhookVerificationError",
    "__version__",
    "verify_webhook",
]
