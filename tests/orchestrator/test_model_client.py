"""complete_chat against real HTTP endpoints: the simulator, and a scripted server answering what
no well-behaved model does."""

import json
import threading

import pytest

from actions.registry import tools_for
from orchestrator import model_client
from orchestrator.exceptions import ModelRequestFailed, ModelUnavailable
from tests.fakes.webhook_receiver import WebhookReceiver
from tests.helpers import metric, scrape

# /metrics reads the approvals waiting from PostgreSQL at every scrape.
pytestmark = pytest.mark.django_db

CHAT = {"model": "gpt-4o-mini", "max_tokens": 100, "tools": []}


@pytest.fixture
def model_at(settings):
    """Point the model client at a base URL for the test, then back."""

    def point(base_url: str) -> None:
        settings.OPENAI_BASE_URL = base_url  # the client is built again when it changes

    return point


@pytest.fixture
def scripted_model(model_at):
    """A local HTTP server answering each request as the test scripts it."""
    server = WebhookReceiver()
    model_at(f"{server.url}/v1")
    yield server
    server.stop()


def ask(content: str, **chat) -> model_client.ModelReply:
    return model_client.complete_chat(
        messages=[{"role": "user", "content": content}], **{**CHAT, **chat}
    )


def test_a_text_answer_comes_with_its_usage_and_is_counted(model_at, simulator):
    model_at(simulator.base_url)

    reply = ask("Summarise the quarterly plan")

    assert reply.text.endswith(": Summarise the quarterly plan")
    assert reply.tool_calls == []
    assert reply.finish_reason == "stop"
    assert (
        reply.usage["total_tokens"]
        == (reply.usage["prompt_tokens"] + reply.usage["completion_tokens"])
        > 0
    )
    text = scrape()
    assert metric(text, "ai_model_requests_total", outcome="ok") == 1
    assert metric(text, "ai_model_tokens_total", kind="prompt") == reply.usage["prompt_tokens"]


def test_an_offered_tool_can_be_called(model_at, simulator):
    model_at(simulator.base_url)

    reply = ask('CALL task.create {"title": "Call Bob"}', tools=tools_for(["task.create"]))

    [call] = reply.tool_calls
    assert call.tool_name == "task_create"
    assert json.loads(call.arguments) == {"title": "Call Bob"}
    assert call.id


@pytest.mark.parametrize(
    ("status", "error"),
    [(429, ModelUnavailable), (503, ModelUnavailable), (400, ModelRequestFailed)],
)
def test_an_error_status_is_retryable_only_when_a_retry_may_help(
    model_at, simulator, status, error
):
    model_at(simulator.base_url)

    with pytest.raises(error):
        ask(f"FAIL {status} 1\nHello")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<html>Bad gateway</html>", "application/json"),
        (b"<html>Bad gateway</html>", "text/html"),
        (b"{}", "application/json"),
        (b'{"choices": []}', "application/json"),
        (b'{"choices": [{"message": 7}]}', "application/json"),
        (b'{"choices": [{"message": {"tool_calls": [{"type": "function"}]}}]}', "application/json"),
    ],
    ids=[
        "html-said-json",
        "html-page",
        "empty-object",
        "no-choice",
        "message-not-an-object",
        "tool-call-without-function",
    ],
)
def test_an_ok_answer_that_is_not_a_chat_completion_may_be_retried(
    scripted_model, body, content_type
):
    scripted_model.answer(200, body, {"Content-Type": content_type})

    with pytest.raises(ModelUnavailable, match="not a chat completion"):
        ask("Hello")

    assert metric(scrape(), "ai_model_requests_total", outcome="error") == 1


def test_tool_arguments_sent_as_an_object_are_kept_as_json_text(scripted_model):
    arguments = {"title": "Call Bob"}
    call = {
        "id": "c1",
        "type": "function",
        "function": {"name": "task_create", "arguments": arguments},
    }
    completion = {
        "choices": [
            {"message": {"role": "assistant", "tool_calls": [call]}, "finish_reason": "tool_calls"}
        ]
    }
    scripted_model.answer(
        200, json.dumps(completion).encode(), {"Content-Type": "application/json"}
    )

    [proposed] = ask("Plan my day").tool_calls

    assert json.loads(proposed.arguments) == {"title": "Call Bob"}
    # No tools offered: the body carries none.
    sent = json.loads(scripted_model.received[0].body)
    assert sent == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "Plan my day"}],
        "max_tokens": 100,
    }


def test_each_worker_thread_keeps_its_own_connection_to_the_model(model_at):
    server = WebhookReceiver(keep_alive=True)
    model_at(f"{server.url}/v1")
    completion = {"choices": [{"message": {"role": "assistant", "content": "Hi"}}]}
    server.answer(200, json.dumps(completion).encode(), {"Content-Type": "application/json"}, 4)
    try:
        ask("first thread")
        ask("first thread")
        other = threading.Thread(target=lambda: (ask("second thread"), ask("second thread")))
        other.start()
        other.join()
    finally:
        server.stop()

    # One after the other, so a pool shared by the threads would have used one connection.
    first = {request.client_port for request in server.received[:2]}
    second = {request.client_port for request in server.received[2:]}
    assert len(first) == 1
    assert len(second) == 1
    assert first != second
