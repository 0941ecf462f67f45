"""Project-local PostgreSQL and Redis servers: a cluster and a redis-server of our own, in a
directory of our choosing, on a port of our choosing.

`make run` uses them when no store is configured and nothing listens on the default ports;
the tests use them wherever a store must be stopped, killed or reconfigured without touching
anyone else's. Plain Python (no Django), Linux only.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self

# PostgreSQL refuses to run as root: as root we run it as this (Debian's) system user.
POSTGRES_USER = "postgres"


def pg_bin_dir() -> Path | None:
    """The directory of the system PostgreSQL binaries (initdb, pg_ctl, postgres), newest first."""
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        versions = [p for p in debian.iterdir() if (p / "bin" / "initdb").is_file()]
        if versions:
            newest = max(versions, key=lambda p: _version_key(p.name))
            return newest / "bin"
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        ).stdout.strip()
        if bindir and (Path(bindir) / "initdb").is_file():
            return Path(bindir)
    return None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in name.split("."))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_exit(popen: subprocess.Popen[bytes], timeout: float) -> None:
    try:
        popen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def _tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def _children_of(pid: int) -> list[int]:
    """Pids whose parent is `pid` (from /proc)."""
    children = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            children.append(int(entry.name))
    return children


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited already


class _Server:
    """A server process of ours, its output in `log_path`."""

    log_path: Path
    _popen: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self.running and self._popen else None

    def _spawn(
        self, command: list[str], *, user: str | None = None, cwd: Path | None = None
    ) -> None:
        if self.running:
            raise RuntimeError(f"{command[0]} is already running (pid {self.pid})")
        self._log = self.log_path.open("ab")
        self._popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            user=user,
            group=user,
            extra_groups=[] if user else None,
        )

    def _wait_ready(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._popen is None or self._popen.poll() is not None:
                self._reap()
                raise RuntimeError(f"{what} exited at start-up:\n{_tail(self.log_path)}")
            if ready():
                return
            time.sleep(0.05)
        self.kill()
        raise TimeoutError(f"{what} not ready within {timeout}s:\n{_tail(self.log_path)}")

    def _signal_and_wait(self, sig: int, timeout: float) -> None:
        if self._popen is not None:
            if self._popen.poll() is None:
                self._popen.send_signal(sig)
            _wait_exit(self._popen, timeout)
        self._reap()

    def _reap(self) -> None:
        if self._popen is not None:
            self._popen.poll()
        self._popen = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def kill(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class LocalPostgres(_Server):
    """A PostgreSQL cluster in `data_dir`, listening on 127.0.0.1:`port` only.

    `settings` are extra server settings (`-c name=value`), e.g. {"fsync": "off"} for a
    throwaway cluster: a killed server still loses nothing the OS has been handed, only a
    crash of the machine would."""

    def __init__(
        self, data_dir: Path, port: int, *, settings: dict[str, str] | None = None
    ) -> None:
        bin_dir = pg_bin_dir()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL server binaries (initdb, postgres) are not installed")
        self.bin_dir = bin_dir
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.settings = dict(settings or {})
        self.log_path = self.data_dir / "postgres.log"

    @property
    def _owner(self) -> str | None:
        """The user the cluster runs as when we are root (None: as ourselves)."""
        return POSTGRES_USER if os.geteuid() == 0 else None

    def _run_as_owner(self, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        owner = self._owner
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd,
            user=owner,
            group=owner,
            extra_groups=[] if owner else None,
        )

    def _check_reachable(self) -> None:
        if os.geteuid() != 0:
            return
        probe = self._run_as_owner(["test", "-x", str(self.data_dir)], cwd=Path("/"))
        if probe.returncode != 0:
            raise RuntimeError(
                f"the {POSTGRES_USER} user cannot reach {self.data_dir}: as root, give a data "
                "directory whose parents every user may traverse (tempfile.mkdtemp() itself is)"
            )

    @property
    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").is_file()

    def ensure_initialized(self) -> None:
        """Create the cluster (trust authentication, superuser `postgres`, UTF8) unless present."""
        if self.initialized:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        if os.geteuid() == 0:
            shutil.chown(self.data_dir, POSTGRES_USER, POSTGRES_USER)
        self._check_reachable()
        result = self._run_as_owner(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                # initdb's own fsyncs only: the server's durability settings are untouched.
                "--no-sync",
            ],
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 30) -> None:
        """Start the postmaster and wait until it accepts connections."""
        self.ensure_initialized()
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            # The socket inside the cluster: no clash with the system's /var/run/postgresql.
            "unix_socket_directories": str(self.data_dir),
            **self.settings,
        }
        command = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir)]
        for name, value in options.items():
            command += ["-c", f"{name}={value}"]
        self._spawn(command, user=self._owner, cwd=self.data_dir)
        self._wait_ready(self._accepts, timeout, f"PostgreSQL on port {self.port}")

    def _accepts(self) -> bool:
        probe = subprocess.run(
            [
                str(self.bin_dir / "pg_isready"),
                "-q",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-t",
                "1",
            ],
            check=False,
        )
        return probe.returncode == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are ended, the data is checkpointed) and wait."""
        self._signal_and_wait(signal.SIGINT, timeout=30)

    def kill(self) -> None:
        """SIGKILL the postmaster and every server process it started, as a crash would."""
        if self._popen is None:
            return
        pid = self._popen.pid
        children = _children_of(pid)
        self._signal_and_wait(signal.SIGKILL, timeout=10)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        # A restart refuses the shared memory while an old backend still holds it.
        deadline = time.monotonic() + 10
        while any(_alive(child) for child in children) and time.monotonic() < deadline:
            time.sleep(0.02)

    def url(self, dbname: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"


class LocalRedis(_Server):
    """A redis-server in `data_dir` on 127.0.0.1:`port`: AOF (everysec) unless told otherwise,
    never evicting (it is a broker). `extra_args` are more redis-server options, which win."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        appendonly: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.appendonly = appendonly
        self.extra_args = list(extra_args)
        self.log_path = self.data_dir / "redis.log"

    def start(self, timeout: float = 10) -> None:
        """Start redis-server and wait until it answers PING (after loading its AOF)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--appendfsync",
            "everysec",
            # No RDB snapshots: the AOF is the persistence, and a fork per snapshot costs.
            "--save",
            "",
            "--maxmemory-policy",
            "noeviction",
            "--daemonize",
            "no",
            *self.extra_args,
        ]
        self._spawn(command)
        self._wait_ready(self._pong, timeout, f"redis-server on port {self.port}")

    def _pong(self) -> bool:
        # While it loads the AOF, Redis answers -LOADING: not ready yet.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM: Redis flushes and fsyncs its AOF, then exits; wait for it."""
        self._signal_and_wait(signal.SIGTERM, timeout=30)

    def kill(self) -> None:
        self._signal_and_wait(signal.SIGKILL, timeout=10)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"
