"""scripts/local_stores.py: a private PostgreSQL cluster and redis-server keep their data across
a crash (SIGKILL) and a restart, and leave no process behind."""

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from scripts.local_stores import LocalPostgres, LocalRedis, free_port, pg_bin_dir


def server_pids(data_dir: Path) -> list[int]:
    """Every process whose command line names `data_dir` (a postmaster, a redis-server)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        zombie = stat.rsplit(")", 1)[1].split()[0] == "Z"
        if str(data_dir).encode() in cmdline and not zombie:
            pids.append(int(entry.name))
    return pids


def alive(pid: int) -> bool:
    """A process that runs (an exited one awaiting its parent's wait() does not)."""
    try:
        return (Path(f"/proc/{pid}/stat")).read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def postgres_backends(postmaster: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster and fields[0] != "Z":
                children.append(int(entry.name))
    return children


@pytest.fixture
def data_dir() -> Iterator[Path]:
    # mkdtemp, not tmp_path: as root the cluster runs as `postgres`, who cannot traverse
    # pytest's private /tmp/pytest-of-root.
    path = Path(tempfile.mkdtemp(prefix="local-store-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.skipif(pg_bin_dir() is None, reason="PostgreSQL server binaries not installed")
def test_postgres_keeps_committed_rows_across_a_kill_and_leaves_nothing_running(data_dir):
    server = LocalPostgres(data_dir, free_port())
    try:
        server.start()
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE store_check")
        with psycopg.connect(server.url("store_check"), autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('before the crash')")
            postmaster = server.pid
            assert postmaster is not None
            backends = postgres_backends(postmaster)
            assert backends, "a running cluster has server processes"

            server.kill()

            assert not server.running
            assert not [pid for pid in backends if alive(pid)]
            assert server_pids(data_dir) == []
            with pytest.raises(psycopg.OperationalError):
                conn.execute("SELECT 1")

        server.ensure_initialized()  # an existing cluster is kept, not re-created
        server.start()
        with psycopg.connect(server.url("store_check")) as conn:
            rows = conn.execute("SELECT value FROM kept").fetchall()
        assert rows == [("before the crash",)]
        assert server.url("x") == f"postgres://postgres@127.0.0.1:{server.port}/x"
    finally:
        server.stop()

    assert not server.running
    assert server_pids(data_dir) == []


def test_redis_replays_its_aof_after_a_kill_and_leaves_nothing_running(data_dir):
    server = LocalRedis(data_dir, free_port())
    try:
        server.start()
        client = redis.Redis.from_url(server.url(3))
        client.set("kept", "before the crash")
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        # appendfsync everysec: a write may wait up to a second for the AOF file.
        time.sleep(1.2)

        server.kill()

        assert not server.running
        assert server_pids(data_dir) == []
        with pytest.raises(redis.ConnectionError):
            client.get("kept")

        server.start()
        assert redis.Redis.from_url(server.url(3)).get("kept") == b"before the crash"
    finally:
        server.stop()

    assert not server.running
    assert server_pids(data_dir) == []


def test_redis_without_aof_starts_empty_after_a_restart(data_dir):
    """The control: without the AOF the same kill loses the key, so the test above means it."""
    server = LocalRedis(data_dir, free_port(), appendonly=False)
    try:
        server.start()
        redis.Redis.from_url(server.url()).set("kept", "before the crash")
        server.kill()
        server.start()
        assert redis.Redis.from_url(server.url()).get("kept") is None
    finally:
        server.stop()
    assert server_pids(data_dir) == []
