"""A real local HTTP server that receives webhooks and answers as a test scripts it."""

import ssl
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic()
    client_port: int  # which of the client's connections carried it


class WebhookReceiver:
    """Records every POST; answers each with the next scripted (status, body, headers)."""

    def __init__(self, tls_cert=None, *, keep_alive: bool = False) -> None:
        """With `tls_cert` (a trustme LeafCert), an https receiver that records the SNI names;
        with `keep_alive`, HTTP/1.1 connections that carry more than one request."""
        self.received: list[Received] = []
        self.server_names: list[str | None] = []
        self.script: list[tuple[int, bytes, dict[str, str]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            self.path,
                            dict(self.headers),
                            body,
                            time.monotonic(),
                            self.client_address[1],
                        )
                    )
                    status, reply, headers = (
                        receiver.script.pop(0) if receiver.script else (200, b"ok", {})
                    )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        if tls_cert is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            tls_cert.configure_cert(context)
            context.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.url = f"https://localhost:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, status: int, body: bytes = b"", headers: dict | None = None, times: int = 1):
        """Script the next `times` answers."""
        self.script += [(status, body, headers or {})] * times

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(self.received)} of {count} webhooks")
            time.sleep(0.05)
        return list(self.received)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
