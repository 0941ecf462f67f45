"""Chat completions against any OpenAI-compatible endpoint, through the official SDK."""

import json
import logging
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from functools import cache

import httpx2
import openai
from django.conf import settings
from openai.types.chat import ChatCompletion

from core import metrics
from orchestrator.exceptions import ModelRequestFailed, ModelUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProposedCall:
    """A tool call as the model wrote it: the tool name and its raw JSON arguments."""

    id: str
    tool_name: str
    arguments: str


@dataclass(frozen=True)
class ModelReply:
    text: str
    tool_calls: list[ProposedCall]
    finish_reason: str
    usage: dict[str, int] = field(default_factory=dict)


_local = threading.local()


def prepare() -> None:
    """Build the shared TLS context and this thread's client now, before the first job.

    The first client imports the HTTP stack and loads the TLS certificates: a few tenths of a
    second of CPU per process, which would otherwise land on the first jobs.
    """
    _client()


def _client() -> openai.OpenAI:
    # One client per thread, each keeping its own connection to the model alive. A worker
    # thread makes one call at a time; one client shared by a process's threads made every
    # call scan a pool of a hundred connections (httpcore checks each one's socket). Built
    # again when the settings change, so tests and override_settings need no reset.
    config = (
        settings.OPENAI_BASE_URL,
        settings.OPENAI_API_KEY,
        settings.AI_REQUEST_TIMEOUT_SECONDS,
    )
    built = getattr(_local, "built", None)
    if built is None or built[0] != config:
        # Retries belong to the Celery task, which hands the job back and backs off, so the
        # SDK's own are off.
        client = openai.OpenAI(
            api_key=settings.OPENAI_API_KEY or "simulator",
            base_url=settings.OPENAI_BASE_URL,
            timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
            max_retries=0,
            http_client=openai.DefaultHttpxClient(
                verify=_tls_context(), limits=httpx2.Limits(max_keepalive_connections=1)
            ),
        )
        built = _local.built = (config, client)
    return built[1]


@cache
def _tls_context() -> ssl.SSLContext:
    # Shared by every thread's client: loading the certificates is the costly part of a client.
    return httpx2.create_ssl_context()


def complete_chat(
    *, model: str, messages: list[dict], tools: list[dict], max_tokens: int
) -> ModelReply:
    """Ask the model for its next message; raise ModelUnavailable when a retry may help."""
    started = time.monotonic()
    outcome, reply = "error", None
    try:
        completion = _client().chat.completions.create(
            model=model,
            messages=messages,
            max_tokens=max_tokens,
            # No tools offered: the body carries no tools key (some servers refuse an empty list).
            tools=tools or openai.omit,
        )
        reply = _reply(completion)
    except json.JSONDecodeError as exc:
        # A 200 declared JSON that is not (a proxy's error page, a cut body).
        raise _not_a_completion(exc) from exc
    except openai.APITimeoutError as exc:
        outcome = "timeout"
        raise ModelUnavailable(f"model endpoint unreachable: {type(exc).__name__}") from exc
    except openai.APIConnectionError as exc:
        outcome = "unreachable"
        raise ModelUnavailable(f"model endpoint unreachable: {type(exc).__name__}") from exc
    except openai.APIStatusError as exc:
        # 429 on its own: rate limiting by the provider is a capacity signal, not a fault.
        outcome = "429" if exc.status_code == 429 else f"{exc.status_code // 100}xx"
        if exc.status_code == 429 or exc.status_code >= 500:
            raise ModelUnavailable(f"model endpoint answered {exc.status_code}") from exc
        raise ModelRequestFailed(
            f"model endpoint refused the request ({exc.status_code}): {_error_text(exc)}",
            status=exc.status_code,
        ) from exc
    else:
        outcome = "ok"
    finally:
        usage = reply.usage if reply else {}
        metrics.record(
            metrics.counted("ai_model_requests", outcome=outcome),
            metrics.observed("ai_model_request_duration_seconds", time.monotonic() - started),
            metrics.counted("ai_model_tokens", usage.get("prompt_tokens", 0), kind="prompt"),
            metrics.counted(
                "ai_model_tokens", usage.get("completion_tokens", 0), kind="completion"
            ),
        )
    return reply


USAGE_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _reply(completion: object) -> ModelReply:
    """The reply in a chat completion; ModelUnavailable when the answer is not one (a proxy's
    error page, a cut body): a later attempt may well get a proper answer."""
    try:
        # The SDK builds its models without validating them (a compatible server may leave out
        # what OpenAI always sends), so a field may be missing or of another type: read each
        # defensively, and anything unreadable means "not a chat completion".
        if not isinstance(completion, ChatCompletion):
            raise TypeError(f"a {type(completion).__name__}, not a chat completion")
        choice = completion.choices[0]
        message = choice.message
        usage = getattr(completion, "usage", None)
        calls = [
            ProposedCall(
                id=_storable(call.id),
                tool_name=_storable(call.function.name),
                arguments=_storable(_arguments(call.function.arguments)),
            )
            for call in message.tool_calls or []
            if getattr(call, "type", None) == "function"
        ]
        return ModelReply(
            text=_storable(message.content or ""),
            tool_calls=calls,
            finish_reason=getattr(choice, "finish_reason", None) or "",
            usage={name: int(getattr(usage, name, None) or 0) for name in USAGE_FIELDS},
        )
    except (LookupError, TypeError, AttributeError) as exc:
        raise _not_a_completion(exc) from exc


def _not_a_completion(exc: Exception) -> ModelUnavailable:
    # Retryable: a later attempt may well get a proper answer.
    return ModelUnavailable(
        f"the model endpoint's answer is not a chat completion ({type(exc).__name__})"
    )


# What PostgreSQL cannot store (text and jsonb refuse NUL; a lone surrogate is not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(text: object) -> str:
    """The model's text with each unstorable character written as its JSON escape.

    Escaped, not dropped: the stored reply still says what the model wrote, and arguments
    text stays JSON that decodes to the same (refused) characters (actions.arguments).
    """
    if not isinstance(text, str):
        raise TypeError(f"expected text, the model sent {type(text).__name__}")
    return _UNSTORABLE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def _arguments(value: object) -> str:
    # OpenAI sends a JSON string; some compatible servers send the object itself.
    return value if isinstance(value, str) else json.dumps(value)


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:500]
