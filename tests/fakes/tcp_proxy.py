"""A real TCP port in front of a local server that a test opens and closes at will, and that can
drop the server's answers: connection failures as a client meets them, on loopback only."""

import contextlib
import socket
import threading

from tests.processes import free_port


class TcpProxy:
    """Forwards 127.0.0.1:`port` to 127.0.0.1:`upstream_port`.

    Closed (the initial state), connecting is refused. `drop_answers(n)` makes the next n
    connections deliver their request upstream, wait for the first byte of the answer (the
    server has acted by then) and hang up instead of passing it on.
    """

    def __init__(self, upstream_port: int) -> None:
        self.port = free_port()
        self.upstream_port = upstream_port
        self.connections = 0
        self._to_drop = 0
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def drop_answers(self, count: int) -> None:
        with self._lock:
            self._to_drop = count

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                downstream, _ = listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.connections += 1
                drop = self._to_drop > 0
                self._to_drop -= drop
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            threading.Thread(target=_pump, args=(downstream, upstream), daemon=True).start()
            target = _drop_answer if drop else _pump
            threading.Thread(target=target, args=(upstream, downstream), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    finally:
        _hang_up(source, sink)


def _drop_answer(upstream: socket.socket, downstream: socket.socket) -> None:
    with contextlib.suppress(OSError):
        upstream.recv(1)
    _hang_up(upstream, downstream)


def _hang_up(*sockets: socket.socket) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
