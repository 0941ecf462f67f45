"""Specification of the OpenAI-compatible model simulator, exercised through the real SDK.

The simulator runs as a real subprocess (as it does in development and benchmarks); these tests
need neither Django nor a database.
"""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest

from orchestrator.simulator import make_server

REPO_ROOT = Path(__file__).resolve().parents[2]

GMAIL_SEND_TOOL = {
    "type": "function",
    "function": {
        "name": "gmail_send",
        "description": "Send an email.",
        "parameters": {
            "type": "object",
            "properties": {"to": {"type": "string"}, "subject": {"type": "string"}},
            "required": ["to"],
        },
    },
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, dict]:
    """Send one raw HTTP request and return (status, decoded JSON body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def _start_simulator(*extra_args: str) -> tuple[subprocess.Popen[str], int]:
    """Start `python -m orchestrator.simulator` on a free port and wait until /health answers."""
    port = _free_port()
    command = [sys.executable, "-m", "orchestrator.simulator", "--port", str(port), *extra_args]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"simulator exited early with code {process.returncode}")
        try:
            if _request(port, "GET", "/health") == (200, {"ok": True}):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    pytest.fail("simulator did not answer /health within 15 s")


def _stop(process: subprocess.Popen[str]) -> int:
    process.terminate()
    try:
        return process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@pytest.fixture(scope="module")
def simulator_port() -> Iterator[int]:
    process, port = _start_simulator()
    yield port
    _stop(process)


@pytest.fixture(scope="module")
def slow_simulator_port() -> Iterator[int]:
    process, port = _start_simulator("--latency-ms", "200")
    yield port
    _stop(process)


def _client(port: int, **options: object) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, **options
    )


@pytest.fixture(scope="module")
def client(simulator_port: int) -> Iterator[openai.OpenAI]:
    with _client(simulator_port) as sdk_client:
        yield sdk_client


def _ask(client: openai.OpenAI, content: str, **options: object):
    return client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **options
    )


def test_plain_message_gets_a_text_answer_with_usage(client: openai.OpenAI) -> None:
    completion = _ask(client, "Summarise the quarterly plan")

    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.tool_calls is None
    assert choice.message.content.startswith("Simulated answer ")
    assert choice.message.content.endswith(": Summarise the quarterly plan")
    assert completion.model == "gpt-4o-mini"
    assert completion.id.startswith("chatcmpl-")
    assert completion.usage.prompt_tokens == 1 + len("Summarise the quarterly plan") // 4
    assert completion.usage.completion_tokens == 1 + len(choice.message.content) // 4
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_answer_quotes_only_ordinary_lines_cut_to_80_chars(client: openai.OpenAI) -> None:
    long_line = "word " * 40
    completion = _ask(client, f"  First line  \nSLEEP 1\n{long_line}")

    quoted = completion.choices[0].message.content.split(": ", 1)[1]
    assert quoted == f"First line {long_line.strip()}"[:80]
    assert "SLEEP" not in completion.choices[0].message.content


def test_call_line_for_offered_action_returns_tool_call(client: openai.OpenAI) -> None:
    content = 'Mail the report\nCALL gmail.send {"to": "ann@example.com", "subject": "Report"}'
    completion = _ask(client, content, tools=[GMAIL_SEND_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == "gmail_send"
    assert json.loads(call.function.arguments) == {"to": "ann@example.com", "subject": "Report"}
    assert call.function.arguments == '{"to":"ann@example.com","subject":"Report"}'


def test_only_offered_calls_with_valid_json_are_proposed_in_order(client: openai.OpenAI) -> None:
    calendar_tool = {"type": "function", "function": {"name": "calendar_create"}}
    content = "\n".join(
        [
            "Do several things",
            'CALL calendar.create {"title": "Sync"}',
            'CALL slack.post {"text": "not offered"}',
            "CALL gmail.send {not json",
            'CALL gmail.send ["not", "an", "object"]',
            'CALL gmail.send {"to": "bob@example.com"}',
        ]
    )
    completion = _ask(client, content, tools=[GMAIL_SEND_TOOL, calendar_tool])

    calls = completion.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["calendar_create", "gmail_send"]
    assert [json.loads(call.function.arguments) for call in calls] == [
        {"title": "Sync"},
        {"to": "bob@example.com"},
    ]
    assert calls[0].id != calls[1].id


def test_call_line_for_action_not_offered_gives_text(client: openai.OpenAI) -> None:
    content = 'Post the update\nCALL slack.post {"channel": "#general"}'
    completion = _ask(client, content, tools=[GMAIL_SEND_TOOL])

    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content.endswith(": Post the update")


def test_raw_line_proposes_any_tool_with_its_arguments_verbatim(client: openai.OpenAI) -> None:
    # A real model can call a tool it was not offered and write arguments that are not JSON.
    hostile = '{"to": ["a@b.example"], "subject": "x\\u2028y"} trailing'
    content = "\n".join(
        ["Do it", f"RAW shell_exec {json.dumps(hostile)}", 'RAW gmail_send "not json"', "RAW x {"]
    )
    completion = _ask(client, content, tools=[GMAIL_SEND_TOOL])

    calls = completion.choices[0].message.tool_calls
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("shell_exec", hostile),
        ("gmail_send", "not json"),
    ]


def test_after_tool_result_the_answer_quotes_the_tool_result(client: openai.OpenAI) -> None:
    user = {"role": "user", "content": 'Mail Carol\nCALL gmail.send {"to": "carol@example.com"}'}
    first = client.chat.completions.create(
        model="gpt-4o-mini", messages=[user], tools=[GMAIL_SEND_TOOL]
    )
    [call] = first.choices[0].message.tool_calls

    second = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            user,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sent, message id 42"},
        ],
        tools=[GMAIL_SEND_TOOL],
    )

    choice = second.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    assert choice.message.content.startswith("Simulated answer ")
    assert choice.message.content.endswith(" after tools: sent, message id 42")


def test_answer_after_several_tool_results_joins_them_cut_to_120_chars(
    client: openai.OpenAI,
) -> None:
    arguments = ['{"to":"eve@example.com"}', '{"title":"Review"}']
    calls = [
        {
            "id": "call_0",
            "type": "function",
            "function": {"name": "gmail_send", "arguments": arguments[0]},
        },
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "calendar_create", "arguments": arguments[1]},
        },
    ]
    messages = [
        {"role": "user", "content": "Two tools please"},
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "call_0", "content": "first result"},
        {"role": "tool", "tool_call_id": "call_1", "content": "x" * 300},
    ]
    completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)

    content = completion.choices[0].message.content
    assert content.endswith(f" after tools: first result | {'x' * 120}")
    prompt_chars = len("Two tools please") + sum(map(len, arguments)) + len("first result") + 300
    assert completion.usage.prompt_tokens == 1 + prompt_chars // 4


def test_fail_503_fails_exactly_n_times_then_succeeds(client: openai.OpenAI) -> None:
    content = "Flaky upstream please\nFAIL 503 2"
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as failure:
            _ask(client, content)
        assert failure.value.status_code == 503
        assert failure.value.body["type"] == "server_error"

    completion = _ask(client, content)

    assert completion.choices[0].message.content.endswith(": Flaky upstream please")


def test_fail_429_raises_rate_limit_error_with_retry_after(client: openai.OpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as failure:
        _ask(client, "Too many requests\nFAIL 429 1")

    assert failure.value.status_code == 429
    assert failure.value.response.headers["retry-after"] == "0"
    assert failure.value.body["type"] == "rate_limit_exceeded"


def test_fail_with_4xx_status_is_an_invalid_request_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as failure:
        _ask(client, "Bad request once\nFAIL 400 1")

    assert failure.value.body["type"] == "invalid_request_error"


def test_sleep_delays_the_answer(client: openai.OpenAI) -> None:
    started = time.monotonic()
    _ask(client, "Take your time\nSLEEP 300")

    assert time.monotonic() - started >= 0.3


def test_max_tokens_cuts_the_answer_with_finish_reason_length(client: openai.OpenAI) -> None:
    completion = _ask(client, "A long answer would not fit", max_tokens=3)

    choice = completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content == "Simulated an"
    assert completion.usage.completion_tokens == 1 + len("Simulated an") // 4


def test_same_request_gets_the_same_answer(client: openai.OpenAI) -> None:
    text_first = _ask(client, "Deterministic text")
    text_second = _ask(client, "Deterministic text")
    content = 'Deterministic call\nCALL gmail.send {"to": "dan@example.com"}'
    call_first = _ask(client, content, tools=[GMAIL_SEND_TOOL])
    call_second = _ask(client, content, tools=[GMAIL_SEND_TOOL])

    assert text_first.choices[0].message.content == text_second.choices[0].message.content
    assert text_first.id == text_second.id
    first_ids = [call.id for call in call_first.choices[0].message.tool_calls]
    second_ids = [call.id for call in call_second.choices[0].message.tool_calls]
    assert first_ids == second_ids
    assert _ask(client, "Different text").choices[0].message.content != (
        text_first.choices[0].message.content
    )


def test_models_endpoint_lists_gpt_4o_mini(client: openai.OpenAI) -> None:
    models = client.models.list()

    assert [model.id for model in models.data] == ["gpt-4o-mini"]
    assert models.data[0].owned_by == "simulator"


def test_stats_count_requests_per_conversation_and_reset_zeroes_them(
    client: openai.OpenAI, simulator_port: int
) -> None:
    assert _request(simulator_port, "POST", "/_simulator/reset") == (200, {"ok": True})
    user = {"role": "user", "content": "Count my rounds"}
    first = client.chat.completions.create(model="gpt-4o-mini", messages=[user])
    follow_up = [
        user,
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "And another round"},
    ]
    client.chat.completions.create(model="gpt-4o-mini", messages=follow_up)
    _ask(client, "A separate conversation")

    status, stats = _request(simulator_port, "GET", "/_simulator/stats")
    assert status == 200
    assert stats["requests"] == 3
    assert sorted(stats["conversations"].values()) == [1, 2]

    _request(simulator_port, "POST", "/_simulator/reset")
    assert _request(simulator_port, "GET", "/_simulator/stats") == (
        200,
        {"requests": 0, "conversations": {}},
    )


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"model": "gpt-4o-mini"}', b'{"messages": []}', b"[1, 2]", b""],
    ids=["malformed-json", "missing-messages", "empty-messages", "not-an-object", "empty"],
)
def test_malformed_request_gets_400_in_openai_error_shape(simulator_port: int, body: bytes) -> None:
    status, payload = _request(simulator_port, "POST", "/v1/chat/completions", body)

    assert status == 400
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["error"]["param"] is None
    assert payload["error"]["code"] is None
    assert payload["error"]["message"]


def test_connection_is_kept_alive_between_requests(simulator_port: int) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", simulator_port, timeout=10)
    try:
        for _ in range(3):
            connection.request("GET", "/health")
            response = connection.getresponse()
            assert response.status == 200
            assert json.loads(response.read()) == {"ok": True}
        connection.request("POST", "/v1/chat/completions", body=b"{broken")
        assert connection.getresponse().read()
        connection.request("GET", "/health")
        assert connection.getresponse().status == 200
    finally:
        connection.close()


def test_200_concurrent_requests_all_succeed(slow_simulator_port: int) -> None:
    with _client(slow_simulator_port, timeout=60) as client:

        def ask(index: int) -> str:
            return _ask(client, f"Concurrent request {index}").choices[0].message.content

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=200) as pool:
            answers = list(pool.map(ask, range(200)))
        elapsed = time.monotonic() - started

    assert all(answer.endswith(f": Concurrent request {i}") for i, answer in enumerate(answers))
    assert elapsed >= 0.2  # every request waited for the 200 ms latency ...
    assert elapsed < 20  # ... but concurrently: one after another would take 40 s


def test_make_server_on_port_0_serves_in_process() -> None:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        assert port != 0
        assert _request(port, "GET", "/health") == (200, {"ok": True})
    finally:
        server.shutdown()
        server.server_close()


def test_sigterm_stops_the_simulator_cleanly() -> None:
    process, port = _start_simulator("--latency-ms", "7")
    banner = process.stdout.readline().strip()

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 0
    assert banner == f"model simulator listening on http://127.0.0.1:{port}/v1 (latency 7 ms)"
