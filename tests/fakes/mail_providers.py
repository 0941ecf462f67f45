"""A local fake of the Gmail API, Microsoft Graph sendMail and their OAuth token endpoints.

A real HTTP server (a thread of the test process) that behaves like the services where the
platform depends on them: it checks the bearer token, decodes Gmail's base64url RFC 5322 message
and checks its headers, checks Graph's message JSON, answers the token endpoints' refresh grant,
counts deliveries, and injects faults (an error status, a delay after accepting a message, a
connection dropped after accepting one).
"""

import base64
import itertools
import json
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

GMAIL_SEND_PATH = "/gmail/v1/users/me/messages/send"
GRAPH_SEND_PATH = "/v1.0/me/sendMail"
TOKEN_PATHS = {"/google/token": "google", "/microsoft/token": "microsoft"}
CLIENT = {"google": ("google-client", "google-secret"), "microsoft": ("ms-client", "ms-secret")}


@dataclass
class Delivery:
    """What the provider received, as it reads it: every recipient (Bcc included), every header
    in order (`header_list`, repeats kept; for Graph `headers` holds the message's fields but
    the body), and the raw request (the MIME bytes for Gmail, the JSON body for Graph), so a
    test can compare it with what was approved."""

    provider: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    subject: str
    message_id: str
    body: str
    headers: dict = field(default_factory=dict)
    header_list: list[tuple[str, str]] = field(default_factory=list)
    reply_to: list[str] = field(default_factory=list)
    raw: bytes = b""


@dataclass
class Fault:
    """Answer `status` (with `headers`) instead of sending; or accept, then wait `hang` seconds;
    with `drop`, accept (after the hang), then close the connection without answering."""

    status: int = 0
    headers: dict = field(default_factory=dict)
    message: str = "injected fault"
    hang: float = 0.0
    drop: bool = False


class FakeMailProviders:
    """Start with `FakeMailProviders()`, point the *_BASE_URL / *_TOKEN_URL settings at it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self) -> None:
        with self.lock:
            self.access_tokens: dict[str, set[str]] = {"google": set(), "microsoft": set()}
            self.refresh_tokens: dict[str, set[str]] = {"google": set(), "microsoft": set()}
            self.deliveries: list[Delivery] = []
            self.send_attempts: list[tuple[str, float, int]] = []  # (provider, time, status)
            self.token_requests: list[str] = []
            self.faults: dict[str, deque[Fault]] = {"google": deque(), "microsoft": deque()}
            self._ids = itertools.count(1)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- what tests set up and read --------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The worker settings that route every provider call here."""
        return {
            "GMAIL_API_BASE_URL": self.url,
            "GRAPH_API_BASE_URL": self.url,
            "GOOGLE_TOKEN_URL": f"{self.url}/google/token",
            "MICROSOFT_TOKEN_URL": f"{self.url}/microsoft/token",
            "GOOGLE_CLIENT_ID": CLIENT["google"][0],
            "GOOGLE_CLIENT_SECRET": CLIENT["google"][1],
            "MICROSOFT_CLIENT_ID": CLIENT["microsoft"][0],
            "MICROSOFT_CLIENT_SECRET": CLIENT["microsoft"][1],
        }

    def grant(self, provider: str, access_token: str, refresh_token: str = "") -> None:
        with self.lock:
            self.access_tokens[provider].add(access_token)
            if refresh_token:
                self.refresh_tokens[provider].add(refresh_token)

    def inject(self, provider: str, *faults: Fault) -> None:
        with self.lock:
            self.faults[provider].extend(faults)

    def delivered(self, provider: str | None = None) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if provider in (None, d.provider)]

    def deliveries_per_message_id(self) -> Counter[str]:
        """How many times each Message-ID was delivered: above 1 is a duplicate e-mail."""
        with self.lock:
            return Counter(d.message_id for d in self.deliveries)

    # --- serving ---------------------------------------------------------------------------

    def _authorized(self, provider: str, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        with self.lock:
            return scheme == "Bearer" and token in self.access_tokens[provider]

    def _next_fault(self, provider: str) -> Fault | None:
        with self.lock:
            return self.faults[provider].popleft() if self.faults[provider] else None

    def _record(self, delivery: Delivery) -> int:
        with self.lock:
            self.deliveries.append(delivery)
            return next(self._ids)

    def _refresh(self, provider: str, form: dict) -> tuple[int, dict]:
        with self.lock:
            self.token_requests.append(provider)
            client_id, secret = CLIENT[provider]
            if form.get("grant_type") != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if (form.get("client_id"), form.get("client_secret")) != (client_id, secret):
                return 401, {"error": "invalid_client"}
            if form.get("refresh_token") not in self.refresh_tokens[provider]:
                return 400, {"error": "invalid_grant", "error_description": "Token revoked."}
            token = f"{provider}-access-{len(self.token_requests)}"
            self.access_tokens[provider].add(token)
            return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}


def _decode_gmail(body: dict) -> tuple[Delivery | None, str]:
    """The delivery in a Gmail send request, or None and why it would be refused."""
    raw = body.get("raw")
    if not isinstance(raw, str):
        return None, "raw is required"
    try:
        data = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except ValueError:
        return None, "raw is not base64url"
    message = BytesParser(policy=policy.default).parsebytes(data)
    for name, value in message.items():
        if "\r" in str(value) or "\n" in str(value):
            return None, f"header {name} contains a line break"
    if not message["To"] or not message["Message-ID"]:
        return None, "To and Message-ID headers are required"

    def addresses(name: str) -> list[str]:
        # Every header of that name: a second To or Bcc delivers too.
        headers = message.get_all(name) or []
        return [a.addr_spec for header in headers for a in header.addresses]

    text = message.get_body(preferencelist=("plain",))
    return (
        Delivery(
            provider="google",
            to=addresses("To"),
            cc=addresses("Cc"),
            bcc=addresses("Bcc"),
            subject=str(message["Subject"]),
            message_id=str(message["Message-ID"]),
            body=text.get_content() if text else "",
            headers={name: str(value) for name, value in message.items()},
            header_list=[(name, str(value)) for name, value in message.items()],
            reply_to=addresses("Reply-To"),
            raw=data,
        ),
        "",
    )


def _decode_graph(body: dict, raw: bytes = b"") -> tuple[Delivery | None, str]:
    message = body.get("message")
    if not isinstance(message, dict) or not message.get("toRecipients"):
        return None, "message.toRecipients is required"

    def addresses(name: str) -> list[str]:
        return [r["emailAddress"]["address"] for r in message.get(name) or []]

    content = message.get("body") or {}
    if content.get("contentType") not in ("Text", "HTML"):
        return None, "body.contentType must be Text or HTML"
    return (
        Delivery(
            provider="microsoft",
            to=addresses("toRecipients"),
            cc=addresses("ccRecipients"),
            bcc=addresses("bccRecipients"),
            subject=message.get("subject", ""),
            message_id=message.get("internetMessageId", ""),
            body=content.get("content", ""),
            headers={key: value for key, value in message.items() if key != "body"},
            reply_to=addresses("replyTo"),
            raw=raw,
        ),
        "",
    )


def _handler(fake: FakeMailProviders):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if self.path in TOKEN_PATHS:
                form = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                status, body = fake._refresh(TOKEN_PATHS[self.path], form)
                return self._answer(status, body)
            provider = {GMAIL_SEND_PATH: "google", GRAPH_SEND_PATH: "microsoft"}.get(self.path)
            if provider is None:
                return self._answer(404, {"error": {"code": 404, "message": "Not Found"}})
            attempt = (provider, time.monotonic())
            if not fake._authorized(provider, self.headers.get("Authorization", "")):
                fake.send_attempts.append((*attempt, 401))
                message = "Request had invalid authentication credentials."
                return self._answer(401, {"error": {"code": 401, "message": message}})
            fault = fake._next_fault(provider)
            if fault and fault.status:
                fake.send_attempts.append((*attempt, fault.status))
                body = {"error": {"code": fault.status, "message": fault.message}}
                return self._answer(fault.status, body, fault.headers)
            try:
                payload = json.loads(raw)
            except ValueError:
                return self._answer(400, {"error": {"code": 400, "message": "Invalid JSON"}})
            if provider == "google":
                delivery, problem = _decode_gmail(payload)
            else:
                delivery, problem = _decode_graph(payload, raw)
            if delivery is None:
                fake.send_attempts.append((*attempt, 400))
                return self._answer(400, {"error": {"code": 400, "message": problem}})
            number = fake._record(delivery)
            fake.send_attempts.append((*attempt, 200))
            if fault and fault.hang:
                time.sleep(fault.hang)  # accepted and delivered; the answer comes late
            if fault and fault.drop:
                self.close_connection = True  # accepted and delivered; no answer at all
                return None
            if provider == "microsoft":
                return self._answer(202, None)
            return self._answer(
                200, {"id": f"msg-{number}", "threadId": f"thread-{number}", "labelIds": ["SENT"]}
            )

        def _answer(self, status: int, body, headers: dict | None = None) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client (a killed worker) is gone

    return Handler
