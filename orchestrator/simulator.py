"""OpenAI-compatible model simulator for tests and local runs (standard library only).

Run it with ``python -m orchestrator.simulator --port 8001 [--host H] [--latency-ms N]``.
The last user message may carry directives, one per line (other lines are ordinary text):

    FAIL <status> <n>     the first n requests of this conversation fail with that HTTP status
    SLEEP <ms>            delay this answer by that many milliseconds
    CALL <action> <json>  propose a tool call if a tool named <action> (dots as "_") is offered
    RAW <name> <string>   propose a call of tool <name> whether offered or not, its arguments
                          the JSON string literal <string> decoded, sent verbatim (a real model
                          can write both: tests of hostile model output use it)

Apart from ``created``, the same request always gets the same answer.
"""

import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_MODEL = "gpt-4o-mini"
MODELS = {
    "object": "list",
    "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 0, "owned_by": "simulator"}],
}

Json = dict[str, Any]


class SimulatorError(Exception):
    """An error answered with OpenAI's error JSON."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}

    def payload(self) -> Json:
        """Return the body in OpenAI's error shape."""
        kind = "server_error" if self.status >= 500 else "invalid_request_error"
        kind = "rate_limit_exceeded" if self.status == 429 else kind
        return {"error": {"message": str(self), "type": kind, "param": None, "code": None}}


@dataclass
class Directives:
    """What the last user message asks of the simulator."""

    fail: tuple[int, int] | None = None  # (HTTP status, number of requests to fail)
    sleep_ms: int = 0
    calls: list[tuple[str, Json]] = field(default_factory=list)
    raw_calls: list[tuple[str, str]] = field(default_factory=list)  # (tool name, arguments text)
    text: list[str] = field(default_factory=list)


def _digest(value: Any) -> str:
    # Canonical JSON, so equal requests hash equally whatever their key order.
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _get(obj: Any, key: str) -> Any:
    # Request bodies are untrusted JSON: a missing or mistyped field reads as None.
    return obj.get(key) if isinstance(obj, dict) else None


def _text(content: Any) -> str:
    """Return the text of a message content: a string, a list of text parts, or null."""
    if isinstance(content, list):
        parts = [_get(part, "text") for part in content]
        return "".join(part for part in parts if isinstance(part, str))
    return content if isinstance(content, str) else ""


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _ints(text: str, count: int) -> list[int] | None:
    try:
        numbers = [int(word) for word in text.split()]
    except ValueError:
        return None
    return numbers if len(numbers) == count else None


def parse_directives(content: str) -> Directives:
    """Split a user message into directives and ordinary text lines."""
    directives = Directives()
    for line in (raw.strip() for raw in content.splitlines()):
        keyword, _, rest = line.partition(" ")
        # Malformed directive lines are dropped, like well-formed ones, rather than echoed.
        if keyword == "FAIL":
            numbers = _ints(rest, 2)
            if directives.fail is None and numbers and 400 <= numbers[0] <= 599:
                directives.fail = (numbers[0], numbers[1])
        elif keyword == "SLEEP":
            numbers = _ints(rest, 1)
            directives.sleep_ms += max(numbers[0], 0) if numbers else 0
        elif keyword == "CALL":
            action, _, arguments = rest.strip().partition(" ")
            try:
                parsed = json.loads(arguments)
            except ValueError:
                continue
            if isinstance(parsed, dict):
                directives.calls.append((action, parsed))
        elif keyword == "RAW":
            name, _, literal = rest.strip().partition(" ")
            try:
                arguments = json.loads(literal)
            except ValueError:
                continue
            if name and isinstance(arguments, str):
                directives.raw_calls.append((name, arguments))
        elif line:
            directives.text.append(line)
    return directives


def conversation_key(messages: list[Json]) -> str:
    """Short digest of the messages up to the first user one, shared by all rounds."""
    end = next((i + 1 for i, m in enumerate(messages) if m.get("role") == "user"), len(messages))
    return _digest(messages[:end])[:16]


def _last_user_index(messages: list[Json]) -> int:
    return max((i for i, m in enumerate(messages) if m.get("role") == "user"), default=-1)


def _tool_calls(directives: Directives, tools: Any, digest: str) -> list[Json]:
    names = [_get(_get(tool, "function"), "name") for tool in _list(tools)]
    offered = {name for name in names if isinstance(name, str)}
    wanted: list[tuple[str, str]] = []
    for action, arguments in directives.calls:
        # OpenAI tool names cannot contain dots, so `gmail.send` is offered as `gmail_send`.
        name = action if action in offered else action.replace(".", "_")
        if name in offered:
            wanted.append((name, json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)))
    wanted.extend(directives.raw_calls)
    result = []
    for name, arguments in wanted:
        seed = f"{digest}:{len(result)}:{name}:{arguments}".encode(errors="surrogatepass")
        call_id = "call_" + hashlib.sha256(seed).hexdigest()[:24]
        function = {"name": name, "arguments": arguments}
        result.append({"id": call_id, "type": "function", "function": function})
    return result


def _prompt_chars(messages: list[Json]) -> int:
    total = 0
    for message in messages:
        total += len(_text(message.get("content")))
        for call in _list(message.get("tool_calls")):
            arguments = _get(_get(call, "function"), "arguments")
            total += len(arguments) if isinstance(arguments, str) else 0
    return total


def build_completion(body: Json, directives: Directives) -> Json:
    """Build the chat completion answering a validated request body."""
    messages: list[Json] = body["messages"]
    digest = _digest(messages)
    last_user = _last_user_index(messages)
    at_user_turn = last_user == len(messages) - 1  # no assistant or tool message after it
    tool_calls = _tool_calls(directives, body.get("tools"), digest) if at_user_turn else []
    if tool_calls:
        content = None
        finish_reason = "tool_calls"
        completion_chars = sum(len(c["function"]["arguments"]) for c in tool_calls)
    else:
        after = messages[last_user + 1 :]
        results = [_text(m.get("content"))[:120] for m in after if m.get("role") == "tool"]
        if results:
            content = f"Simulated answer {digest[:8]} after tools: " + " | ".join(results)
        else:
            content = f"Simulated answer {digest[:8]}: " + " ".join(directives.text)[:80]
        finish_reason = "stop"
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and limit > 0 and len(content) > limit * 4:
            content = content[: limit * 4]
            finish_reason = "length"
        completion_chars = len(content)
    message: Json = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    prompt, completion = 1 + _prompt_chars(messages) // 4, 1 + completion_chars // 4
    model = body.get("model")
    return {
        "id": "chatcmpl-" + _digest(body)[:24],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model if isinstance(model, str) and model else DEFAULT_MODEL,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


class SimulatorServer(ThreadingHTTPServer):
    """Threaded HTTP server holding the simulator's latency and request counters."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], latency_ms: int = 0) -> None:
        super().__init__(address, SimulatorHandler)
        self.latency_ms = latency_ms
        self.verbose = False
        self._lock = threading.Lock()
        self._requests = 0
        self._conversations: dict[str, int] = {}

    def count(self, key: str | None) -> int:
        """Count one chat completion request; return how many its conversation has had."""
        with self._lock:
            self._requests += 1
            if key is None:
                return 0
            self._conversations[key] = self._conversations.get(key, 0) + 1
            return self._conversations[key]

    def stats(self) -> Json:
        """Return the request counters."""
        with self._lock:
            return {"requests": self._requests, "conversations": dict(self._conversations)}

    def reset(self) -> None:
        """Zero the request counters."""
        with self._lock:
            self._requests = 0
            self._conversations.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (e.g. a timeout) is routine, not worth a traceback.
        if self.verbose or not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SimulatorHandler(BaseHTTPRequestHandler):
    """Routes the simulator's endpoints; HTTP/1.1 so clients can keep connections alive."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes; with Nagle on, a keep-alive client waits for a
    # delayed ACK (~40 ms) on every answer, which would swamp the configured latency.
    disable_nagle_algorithm = True
    server: SimulatorServer

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/v1/models":
            self._send_json(200, MODELS)
        elif path == "/health":
            self._send_json(200, {"ok": True})
        elif path == "/_simulator/stats":
            self._send_json(200, self.server.stats())
        else:
            self._send_error(SimulatorError(404, f"Unknown request URL: GET {path}"))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        raw = self._read_body()  # always drained, so the kept-alive connection stays in sync
        if path == "/v1/chat/completions":
            try:
                self._send_json(200, self._complete(raw))
            except SimulatorError as error:
                self._send_error(error)
        elif path == "/_simulator/reset":
            self.server.reset()
            self._send_json(200, {"ok": True})
        else:
            self._send_error(SimulatorError(404, f"Unknown request URL: POST {path}"))

    def _complete(self, raw: bytes) -> Json:
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        messages = body.get("messages") if isinstance(body, dict) else None
        if not (
            messages and isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
        ):
            self.server.count(None)
            raise SimulatorError(400, "The body must be JSON with a non-empty 'messages' array.")
        attempt = self.server.count(conversation_key(messages))
        last_user = _last_user_index(messages)
        content = _text(messages[last_user].get("content")) if last_user >= 0 else ""
        directives = parse_directives(content)
        delay_ms = self.server.latency_ms + directives.sleep_ms
        if delay_ms:
            time.sleep(delay_ms / 1000)
        if directives.fail and attempt <= directives.fail[1]:
            status, times = directives.fail
            headers = {"Retry-After": "0"} if status == 429 else None
            raise SimulatorError(status, f"Simulated failure {attempt} of {times}.", headers)
        return build_completion(body, directives)

    def _read_body(self) -> bytes:
        length = self.headers.get("Content-Length", "0").strip()
        if not length.isdecimal() or "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            # Where the body ends is unknown, so this connection cannot carry another request.
            self.close_connection = True
            return b""
        return self.rfile.read(int(length))

    def _send_error(self, error: SimulatorError) -> None:
        self._send_json(error.status, error.payload(), error.headers)

    def _send_json(self, status: int, payload: Json, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


def make_server(host: str, port: int, latency_ms: int = 0) -> SimulatorServer:
    """Create (but do not start) a simulator bound to host:port; port 0 picks a free port."""
    return SimulatorServer((host, port), latency_ms)


def main(argv: list[str] | None = None) -> None:
    """Run the simulator until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description="OpenAI-compatible model simulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--latency-ms", type=int, default=0, help="delay of every completion")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    if args.latency_ms < 0:
        parser.error("--latency-ms must be >= 0")
    server = make_server(args.host, args.port, args.latency_ms)
    server.verbose = args.verbose
    if threading.current_thread() is threading.main_thread():
        # shutdown() waits for serve_forever() to return, so it cannot run in this very thread.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: threading.Thread(target=server.shutdown).start())
    host, port = server.server_address[:2]
    url = f"http://{host}:{port}/v1"
    print(f"model simulator listening on {url} (latency {args.latency_ms} ms)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
