"""Real processes for the tests: the model simulator, Celery workers, gunicorn, redis-server."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from scripts.local_stores import LocalRedis
from scripts.run_stack import worker_command

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(message or f"condition not met within {timeout}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def test_database_url() -> str:
    """The URL of the database pytest-django created, for processes we start."""
    db = settings.DATABASES["default"]
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Process:
    """A child process whose output goes to a log file the test can read on failure.

    The log is made with `tempfile`, so it lives in the test's own directory
    (tests/housekeeping.py): removed after the test, kept when the test failed."""

    def __init__(
        self, name: str, command: list[str], env: dict[str, str], cwd: Path = ROOT
    ) -> None:
        self.name = name
        self.log_path = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self._log = self.log_path.open("w")
        self.popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        def seen() -> bool:
            if self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited early (log: {self.log_path}):\n{self.log()[-3000:]}"
                )
            return text in self.log()

        message = f"{self.name} never logged {text!r} (log: {self.log_path})"
        wait_until(seen, timeout=timeout, message=message)


def process_env(**overrides: str) -> dict[str, str]:
    """The environment of a platform process under test: test database, test Redis."""
    env = {
        **os.environ,
        "ENV_FILE": "",
        "DATABASE_URL": test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "SECRET_KEY": settings.SECRET_KEY,
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "LOG_FILE": "",  # stdout only: the process log file the test reads
    }
    env.update(overrides)
    return env


class Simulator(Process):
    def __init__(self, latency_ms: int = 0) -> None:
        self.port = free_port()
        self.latency_ms = latency_ms
        super().__init__(
            "simulator",
            [
                sys.executable,
                "-m",
                "orchestrator.simulator",
                "--port",
                str(self.port),
                "--latency-ms",
                str(latency_ms),
            ],
            {**os.environ},
        )
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        wait_until(lambda: http_ok(f"http://127.0.0.1:{self.port}/health"), timeout=15)

    def stats(self) -> dict:
        import json

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/_simulator/stats") as resp:
            return json.load(resp)

    def requests(self) -> int:
        """Chat completion requests received since the last reset."""
        return self.stats()["requests"]

    def reset(self) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/_simulator/reset", method="POST", data=b""
        )
        urllib.request.urlopen(request).close()


def start_worker(simulator: Simulator, *, beat: bool = False, **env: str) -> Process:
    """The shipped Celery worker (threads pool, 8 threads here) on the test database and Redis.

    With `beat`, the worker also runs the beat schedule (the stale-job sweeper)."""
    beat_args = ["-B", "-s", f"{tempfile.mkdtemp(prefix='beat-')}/schedule"] if beat else []
    worker = Process(
        "worker",
        [*worker_command(f"test-{uuid.uuid4().hex[:8]}@%h"), "--concurrency", "8", *beat_args],
        process_env(OPENAI_BASE_URL=simulator.base_url, OPENAI_API_KEY="test-key", **env),
    )
    worker.wait_for_log("ready.")
    return worker


def start_web(*, workers: int = 2, **env: str) -> tuple[Process, str]:
    """gunicorn as shipped (config/gunicorn.py) serving the app on a free port with `workers`
    processes; returns the process and its base URL."""
    port = free_port()
    web = Process(
        "web",
        [
            str(BIN / "gunicorn"),
            "-c",
            "config/gunicorn.py",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
        ],
        process_env(**env),
    )
    base_url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{base_url}/health"), timeout=30, message=web.log()[-2000:])
    return web, base_url


@contextmanager
def redis_server(port: int):
    """A throwaway redis-server of our own, to stop and start at will."""
    server = RedisServer(port)
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    """A throwaway redis-server (no persistence) in a temporary directory, started at once.

    A thin use of scripts/local_stores.LocalRedis, the one way the project runs a redis-server."""

    def __init__(self, port: int, *args: str) -> None:
        self.port = port
        # Extra redis-server options, e.g. "--maxmemory-policy", "allkeys-lru".
        self.server = LocalRedis(
            Path(tempfile.mkdtemp(prefix="redis-")), port, appendonly=False, extra_args=args
        )
        self.start()

    @property
    def url(self) -> str:
        return self.server.url(0)

    @property
    def log_path(self) -> Path:
        return self.server.log_path

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()
