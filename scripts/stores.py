"""Which PostgreSQL and Redis `make run` and `make test` use, and the project-local ones they start.

An explicit URL always wins; a URL that is set but refused stops start-up with what to set.
With no URL, the system's store on the default address is used when it answers and lets us in;
otherwise a project-local one is started under the run directory (`.run/postgres`, `.run/redis`),
on the default port when it is free, else on a free loopback port. Local stores keep their data
between runs and are stopped by whoever started them.

    python scripts/stores.py --for-tests -- COMMAND...

runs COMMAND (the test suite) with DATABASE_URL and REDIS_URL chosen the same way from
TEST_DATABASE_URL or DATABASE_URL and TEST_REDIS_URL (default database 15, never 0).
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit, urlunsplit

import psycopg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # also run as a script

from scripts import system_deps
from scripts.local_stores import LocalPostgres, LocalRedis, free_port, pg_bin_dir

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orchestrator"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
TEST_REDIS_DB = 15
PROBE_TIMEOUT_SECONDS = 3


class StoreError(Exception):
    """A store that cannot be used, with the message that says what to do."""


def redact(url: str) -> str:
    """`url` with its password replaced, fit for a message."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def postgres_refusal(url: str) -> str | None:
    """Why PostgreSQL at `url` does not let us in, or None when it does.

    A database that does not exist yet is fine: `make run` creates it, pytest creates its own."""
    try:
        with psycopg.connect(url, connect_timeout=PROBE_TIMEOUT_SECONDS):
            return None
    except psycopg.OperationalError as error:
        message = " ".join(str(error).split()) or type(error).__name__
        if "database" in message and "does not exist" in message:
            return None
        return message


def redis_refusal(url: str) -> str | None:
    """Why Redis at `url` does not answer PING, or None when it does."""
    client = redis.Redis.from_url(
        url, socket_connect_timeout=PROBE_TIMEOUT_SECONDS, socket_timeout=PROBE_TIMEOUT_SECONDS
    )
    try:
        client.ping()
        return None
    except redis.RedisError as error:
        return str(error) or type(error).__name__
    finally:
        client.close()


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _pick_port(default: int) -> int:
    return default if port_is_free(default) else free_port()


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@dataclass
class Stores:
    """The URLs chosen, where they came from, and the local servers this process must stop."""

    database_url: str
    redis_url: str
    database_origin: str
    redis_origin: str
    owned: list[tuple[LocalPostgres | LocalRedis, Path]] = field(default_factory=list)
    revive_after: float = 0.0  # monotonic time of the next attempt after a failed restart

    def stop(self) -> None:
        for server, owner_file in reversed(self.owned):
            server.stop()
            owner_file.unlink(missing_ok=True)
        self.owned.clear()

    def revive(self, out: TextIO = sys.stdout) -> None:
        """Start again each local server of ours that exited (killed, crashed), on its data and
        port: `make run` supervises its stores like its processes. PostgreSQL recovers from its
        WAL, Redis from its AOF. A start that fails (a killed postmaster's backends still
        leaving) is tried again 5 s later."""
        if time.monotonic() < self.revive_after:
            return
        for server, _owner_file in self.owned:
            if server.running:
                continue
            kind = "PostgreSQL" if isinstance(server, LocalPostgres) else "Redis"
            print(f"stores: the project-local {kind} exited; starting it again", file=out)
            try:
                server.start()
            except (OSError, RuntimeError, TimeoutError) as exc:
                print(f"stores: {kind} did not start yet ({exc}); trying again in 5 s", file=out)
                self.revive_after = time.monotonic() + 5
            else:
                print(f"stores: {kind} is back on port {server.port}", file=out)


class _Local:
    """A project-local store under the run directory, shared by concurrent `make run`/`make test`.

    An owner file (`<name>.owner`: pid and port) says who started it: a live owner's server is
    reused and left to its owner; a dead owner's server (a `make run` killed outright) is stopped
    and started again under ours."""

    def __init__(self, run_dir: Path, name: str, default_port: int) -> None:
        self.data_dir = run_dir / name
        self.owner_file = run_dir / f"{name}.owner"
        self.default_port = default_port
        self.name = name

    def running_owner(self) -> tuple[int, int] | None:
        """(owner pid, port) of a server whose owner is still alive."""
        try:
            pid, port = (int(word) for word in self.owner_file.read_text().split())
        except (OSError, ValueError):
            return None
        return (pid, port) if _alive(pid) else None

    def orphan_pid(self) -> int | None:
        raise NotImplementedError

    def stop_orphan(self, out: TextIO) -> None:
        pid = self.orphan_pid()
        if pid is None or not _alive(pid):
            return
        print(f"stores: stopping the {self.name} a killed run left behind (pid {pid})", file=out)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGINT if self.name == "postgres" else signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)

    def claim(self, port: int) -> None:
        self.owner_file.write_text(f"{os.getpid()} {port}\n")


class _LocalPostgres(_Local):
    def orphan_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


class _LocalRedis(_Local):
    @property
    def pid_file(self) -> Path:
        return self.data_dir / "redis-server.pid"

    def orphan_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None


def _ensure_binaries(name: str, out: TextIO) -> None:
    if not system_deps.ensure([name], out=out):
        raise StoreError(
            f"the project-local {name} needs its server binaries: install them (the line above "
            f"says how) or set {'DATABASE_URL' if name == 'postgres' else 'REDIS_URL'}"
        )


def start_local_postgres(local: _LocalPostgres, dbname: str, stores: Stores, out: TextIO) -> str:
    if pg_bin_dir() is None:
        _ensure_binaries("postgres", out)
    port = _pick_port(local.default_port)
    local.data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = LocalPostgres(local.data_dir, port)
    fresh = not server.initialized
    server.start()
    local.claim(port)
    stores.owned.append((server, local.owner_file))
    made = "created and started" if fresh else "started"
    print(f"stores: PostgreSQL: project-local, {made} in {local.data_dir} on port {port}", file=out)
    return server.url(dbname)


def start_local_redis(local: _LocalRedis, db: int, stores: Stores, out: TextIO) -> str:
    if not system_deps.REQUIREMENTS["redis"].present():
        _ensure_binaries("redis", out)
    port = _pick_port(local.default_port)
    local.data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = LocalRedis(local.data_dir, port, extra_args=["--pidfile", str(local.pid_file)])
    server.start()
    local.claim(port)
    stores.owned.append((server, local.owner_file))
    print(f"stores: Redis: project-local, started in {local.data_dir} on port {port}", file=out)
    return server.url(db)


def select_stores(
    *,
    database_url: str | None,
    redis_url: str | None,
    run_dir: Path,
    database_variable: str = "DATABASE_URL",
    redis_variable: str = "REDIS_URL",
    default_database_url: str = DEFAULT_DATABASE_URL,
    default_redis_url: str = DEFAULT_REDIS_URL,
    out: TextIO = sys.stdout,
) -> Stores:
    """Decide the two URLs (explicit, system default, or project-local) and start local stores.

    Raises StoreError, naming the variable to set, when an explicit URL is refused."""
    stores = Stores("", "", "", "")
    try:
        stores.database_url, stores.database_origin = _choose_database(
            database_url, database_variable, default_database_url, run_dir, stores, out
        )
        stores.redis_url, stores.redis_origin = _choose_redis(
            redis_url, redis_variable, default_redis_url, run_dir, stores, out
        )
    except BaseException:
        stores.stop()
        raise
    return stores


def _choose_database(
    url: str | None, variable: str, default: str, run_dir: Path, stores: Stores, out: TextIO
) -> tuple[str, str]:
    if url:
        refusal = postgres_refusal(url)
        if refusal is not None:
            raise StoreError(
                f"{variable}={redact(url)} is set but PostgreSQL refused it: {refusal}\n"
                f"Set {variable} to a URL that works, with the password if the server asks for "
                f"one (postgres://USER:PASSWORD@HOST:PORT/DBNAME), or unset it to use a "
                f"project-local PostgreSQL under {run_dir}."
            )
        print(f"stores: PostgreSQL: {redact(url)} (from {variable})", file=out)
        return url, variable
    address = urlsplit(default)
    dbname = address.path.lstrip("/") or "orchestrator"
    local = _LocalPostgres(run_dir, "postgres", address.port or 5432)
    # Ours before anyone's: a local store another `make run`/`make test` is using is shared (it
    # may sit on the default port); one a killed run left behind is stopped first.
    shared = local.running_owner()
    if shared is not None:
        print(
            f"stores: PostgreSQL: project-local, pid {shared[0]}'s, on port {shared[1]}", file=out
        )
        return f"postgres://postgres@127.0.0.1:{shared[1]}/{dbname}", "project-local"
    local.stop_orphan(out)
    refusal = postgres_refusal(default)
    if refusal is None:
        print(f"stores: PostgreSQL: the system's, {redact(default)} (no {variable} set)", file=out)
        return default, "system"
    print(
        f"stores: PostgreSQL: nothing usable on {address.hostname}:{address.port} ({refusal}); "
        f"using a project-local one (set {variable} to use another)",
        file=out,
    )
    return start_local_postgres(local, dbname, stores, out), "project-local"


def _choose_redis(
    url: str | None, variable: str, default: str, run_dir: Path, stores: Stores, out: TextIO
) -> tuple[str, str]:
    if url:
        refusal = redis_refusal(url)
        if refusal is not None:
            raise StoreError(
                f"{variable}={redact(url)} is set but Redis refused it: {refusal}\n"
                f"Set {variable} to a Redis that answers (redis://:PASSWORD@HOST:PORT/DB), or "
                f"unset it to use a project-local Redis under {run_dir}."
            )
        print(f"stores: Redis: {redact(url)} (from {variable})", file=out)
        return url, variable
    address = urlsplit(default)
    db = int(address.path.lstrip("/") or 0)
    local = _LocalRedis(run_dir, "redis", address.port or 6379)
    shared = local.running_owner()
    if shared is not None:
        print(f"stores: Redis: project-local, pid {shared[0]}'s, on port {shared[1]}", file=out)
        return f"redis://127.0.0.1:{shared[1]}/{db}", "project-local"
    local.stop_orphan(out)
    refusal = redis_refusal(default)
    if refusal is None:
        print(f"stores: Redis: the system's, {redact(default)} (no {variable} set)", file=out)
        return default, "system"
    print(
        f"stores: Redis: nothing usable on {address.hostname}:{address.port} ({refusal}); "
        f"using a project-local one (set {variable} to use another)",
        file=out,
    )
    return start_local_redis(local, db, stores, out), "project-local"


def run_with_test_stores(command: list[str], env: Mapping[str, str], run_dir: Path) -> int:
    """Run `command` (the suite) with the test stores in its environment; stop what we started."""
    redis_db_url = urlsplit(DEFAULT_REDIS_URL)._replace(path=f"/{TEST_REDIS_DB}").geturl()
    try:
        stores = select_stores(
            database_url=env.get("TEST_DATABASE_URL") or env.get("DATABASE_URL"),
            redis_url=env.get("TEST_REDIS_URL"),
            run_dir=run_dir,
            database_variable="TEST_DATABASE_URL"
            if env.get("TEST_DATABASE_URL")
            else "DATABASE_URL",
            redis_variable="TEST_REDIS_URL",
            default_redis_url=redis_db_url,
        )
    except StoreError as error:
        print(f"stores: {error}", file=sys.stderr)
        return 2
    child_env = {**env, "DATABASE_URL": stores.database_url, "REDIS_URL": stores.redis_url}
    # Ctrl-C reaches the suite (same process group); we only wait, then stop the stores.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return subprocess.run(command, env=child_env, check=False).returncode
    finally:
        signal.signal(signal.SIGINT, previous)
        stores.stop()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[0] != "--for-tests" or argv[1] != "--":
        print("usage: stores.py --for-tests -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    run_dir = Path(os.environ.get("RUN_DIR") or Path(__file__).resolve().parent.parent / ".run")
    return run_with_test_stores(argv[2:], os.environ, run_dir.resolve())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
