"""Chat completions against any OpenAI-compatible endpoint, through the official SDK."""

import logging
import time
from dataclasses import dataclass, field
from functools import cache

import openai
from django.conf import settings

from orchestrator import metrics
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


@cache
def _client() -> openai.OpenAI:
    # One client per process: its HTTP pool keeps connections to the model alive across jobs
    # and is safe to share between worker threads. Retries belong to the Celery task, which
    # hands the job back and backs off, so the SDK's own are off.
    return openai.OpenAI(
        api_key=settings.OPENAI_API_KEY or "simulator",
        base_url=settings.OPENAI_BASE_URL,
        timeout=settings.AI_REQUEST_TIMEOUT_SECONDS,
        max_retries=0,
    )


def complete_chat(
    *, model: str, messages: list[dict], tools: list[dict], max_tokens: int
) -> ModelReply:
    """Ask the model for its next message; raise ModelUnavailable when a retry may help."""
    # The tool definitions are our own static, well-formed schemas: sent as they are through
    # extra_body, they skip the SDK's per-call transform of every nested schema (~1 ms a call).
    kwargs = {"extra_body": {"tools": tools}} if tools else {}
    started = time.monotonic()
    outcome, usage = "error", None
    try:
        response = _client().chat.completions.create(
            model=model, messages=messages, max_tokens=max_tokens, **kwargs
        )
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
        outcome, usage = "ok", response.usage
    finally:
        metrics.record(
            metrics.counted("ai_model_requests", outcome=outcome),
            metrics.observed("ai_model_request_duration_seconds", time.monotonic() - started),
            metrics.counted("ai_model_tokens", usage.prompt_tokens if usage else 0, kind="prompt"),
            metrics.counted(
                "ai_model_tokens", usage.completion_tokens if usage else 0, kind="completion"
            ),
        )

    choice = response.choices[0]
    calls = [
        ProposedCall(id=call.id, tool_name=call.function.name, arguments=call.function.arguments)
        for call in choice.message.tool_calls or []
        if call.type == "function"
    ]
    return ModelReply(
        text=choice.message.content or "",
        tool_calls=calls,
        finish_reason=choice.finish_reason or "",
        usage={
            "prompt_tokens": usage.prompt_tokens if usage else 0,
            "completion_tokens": usage.completion_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
        },
    )


def _error_text(exc: openai.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return str(body.get("message") or exc.message)[:500]
