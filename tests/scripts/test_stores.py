"""Which stores `make run` and `make test` use (scripts/stores.py), and how start-up fails fast.

An explicit URL always wins; a set URL that is refused stops start-up with what to set; with no
URL, a default address that lets nobody in means a project-local store; a taken port names its
variable."""

import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from scripts.local_stores import LocalPostgres, free_port, pg_bin_dir
from scripts.stores import StoreError, select_stores
from tests import processes
from tests.housekeeping import processes_using
from tests.processes import ROOT

needs_postgres = pytest.mark.skipif(pg_bin_dir() is None, reason="no PostgreSQL server binaries")


@pytest.fixture
def run_dir() -> Iterator[Path]:
    # Traversable by all: as root the local cluster runs as `postgres`.
    path = Path(tempfile.mkdtemp(prefix="run-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def password_postgres() -> Iterator[LocalPostgres]:
    """A PostgreSQL that wants a password over TCP, as Debian's pg_createcluster sets it up."""
    data_dir = Path(tempfile.mkdtemp(prefix="pg-"))
    server = LocalPostgres(data_dir, free_port())
    server.start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute("ALTER ROLE postgres PASSWORD 'right-password'")
            hba = conn.execute("SHOW hba_file").fetchone()[0]
            Path(hba).write_text("local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n")
            conn.execute("SELECT pg_reload_conf()")
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


def closed_port_url(scheme: str, path: str) -> str:
    return f"{scheme}://127.0.0.1:{free_port()}/{path}"


def run_stack(env: dict[str, str], run_dir: Path) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL", "TEST_DATABASE_URL", "TEST_REDIS_URL"}
    }
    ports = {name: str(free_port()) for name in ("WEB_PORT", "SIMULATOR_PORT", "FLOWER_PORT")}
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "run_stack.py")],
        env={**base, **ports, "ENV_FILE": "", "OPENAI_API_KEY": "", "RUN_DIR": str(run_dir), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@needs_postgres
@pytest.mark.parametrize(
    ("credentials", "refusal"),
    [
        ("postgres", "no password supplied"),
        ("postgres:wrong-password", "password authentication failed"),
    ],
)
def test_a_database_url_refused_for_its_password_stops_make_run_with_what_to_set(
    password_postgres, run_dir, credentials, refusal
):
    url = f"postgres://{credentials}@127.0.0.1:{password_postgres.port}/orchestrator"
    started = time.monotonic()

    result = run_stack({"DATABASE_URL": url, "REDIS_URL": "redis://127.0.0.1:6379/5"}, run_dir)

    assert result.returncode == 2, result.stdout + result.stderr
    assert time.monotonic() - started < 20
    assert refusal in result.stderr, result.stderr
    assert "Set DATABASE_URL to a URL that works" in result.stderr
    assert "postgres://USER:PASSWORD@HOST:PORT/DBNAME" in result.stderr
    assert "wrong-password" not in result.stderr
    assert not (run_dir / "postgres").exists()  # no local store started behind the user's back


def test_a_redis_url_that_does_not_answer_stops_start_up_naming_the_variable(run_dir):
    url = closed_port_url("redis", "0")

    with pytest.raises(StoreError) as refused:
        select_stores(database_url=processes.test_database_url(), redis_url=url, run_dir=run_dir)

    assert f"REDIS_URL={url} is set but Redis refused it" in str(refused.value)
    assert "Connection refused" in str(refused.value)
    assert not (run_dir / "redis").exists()


def test_a_password_in_a_refused_url_is_not_repeated(run_dir):
    url = f"postgres://postgres:s3cret@127.0.0.1:{free_port()}/orchestrator"
    with pytest.raises(StoreError) as refused:
        select_stores(database_url=url, redis_url=None, run_dir=run_dir)

    assert "s3cret" not in str(refused.value)
    assert "postgres://postgres:***@127.0.0.1:" in str(refused.value)


def test_explicit_urls_win_and_nothing_local_starts(run_dir):
    stores = select_stores(
        database_url=processes.test_database_url(),
        redis_url="redis://127.0.0.1:6379/5",
        run_dir=run_dir,
    )

    assert stores.database_url == processes.test_database_url()
    assert stores.redis_url == "redis://127.0.0.1:6379/5"
    assert (stores.database_origin, stores.redis_origin) == ("DATABASE_URL", "REDIS_URL")
    assert stores.owned == []
    assert list(run_dir.iterdir()) == []


@needs_postgres
def test_with_no_url_a_default_that_refuses_us_means_project_local_stores(
    password_postgres, run_dir
):
    stores = select_stores(
        database_url=None,
        redis_url=None,
        run_dir=run_dir,
        # The default addresses: a PostgreSQL that wants a password, no Redis at all.
        default_database_url=f"postgres://postgres@127.0.0.1:{password_postgres.port}/orchestrator",
        default_redis_url=closed_port_url("redis", "0"),
    )
    try:
        assert (stores.database_origin, stores.redis_origin) == ("project-local", "project-local")
        assert f":{password_postgres.port}/" not in stores.database_url
        with psycopg.connect(stores.database_url.replace("/orchestrator", "/postgres")) as conn:
            assert conn.execute("SHOW data_directory").fetchone()[0] == str(run_dir / "postgres")
        client = redis.Redis.from_url(stores.redis_url)
        assert client.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert client.config_get("appendonly") == {"appendonly": "yes"}
        assert client.config_get("appendfsync") == {"appendfsync": "everysec"}
        client.close()
    finally:
        stores.stop()

    assert processes_using(run_dir) == []
    assert (run_dir / "postgres" / "PG_VERSION").is_file()  # the data stays for the next run
    assert not list(run_dir.glob("*.owner"))


def test_a_taken_port_stops_make_run_naming_the_variable_to_set(run_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run_stack({"SIMULATOR_PORT": str(port)}, run_dir)

    assert result.returncode == 2
    assert f"port {port} (SIMULATOR_PORT) is taken by another program" in result.stderr
    assert "set SIMULATOR_PORT to a free port, e.g. SIMULATOR_PORT=" in result.stderr


@needs_postgres
def test_a_project_local_store_that_dies_is_started_again_with_its_data(password_postgres, run_dir):
    stores = select_stores(
        database_url=None,
        redis_url=None,
        run_dir=run_dir,
        default_database_url=f"postgres://postgres@127.0.0.1:{password_postgres.port}/orchestrator",
        default_redis_url=closed_port_url("redis", "0"),
    )
    postgres_url = stores.database_url.replace("/orchestrator", "/postgres")
    try:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        client = redis.Redis.from_url(stores.redis_url)
        client.set("kept", "yes")
        time.sleep(1.2)  # appendfsync everysec
        for server, _owner in stores.owned:
            server.kill()  # as a crash or an OOM kill would
        out = io.StringIO()

        deadline = time.monotonic() + 60
        while not all(server.running for server, _owner in stores.owned):
            assert time.monotonic() < deadline, out.getvalue()
            stores.revive(out)  # what make run's supervisor loop calls every tick
            time.sleep(0.25)

        with psycopg.connect(postgres_url) as conn:
            assert conn.execute("SELECT n FROM kept").fetchone() == (42,)
        assert client.get("kept") == b"yes"
        client.close()
        assert "the project-local PostgreSQL exited; starting it again" in out.getvalue()
        assert "the project-local Redis exited; starting it again" in out.getvalue()
    finally:
        stores.stop()
    assert processes_using(run_dir) == []
