"""A PostgreSQL cluster of a test module's own, migrated, with a workspace and an API key: a
database the test may stop, kill and restart while real web and worker processes use it."""

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from scripts.local_stores import LocalPostgres, free_port
from tests.processes import ROOT, process_env

DATABASE = "orchestrator"


@dataclass
class PrivatePostgres:
    server: LocalPostgres
    api_key: str

    @property
    def url(self) -> str:
        return self.server.url(DATABASE)

    def execute(self, sql: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            cursor = conn.execute(sql, params)
            return cursor.fetchall() if cursor.description else []


def start_private_postgres() -> PrivatePostgres:
    """Start a new cluster, migrate its database and issue a demo workspace key (jobs scopes)."""
    parent = Path(tempfile.mkdtemp(prefix="outage-pg-"))
    # As root the cluster runs as `postgres`, who must enter it (the run's folders above let it).
    parent.chmod(0o755)
    # fsync off: a stopped or killed server loses nothing the OS holds; only a host crash would.
    server = LocalPostgres(parent / "data", free_port(), settings={"fsync": "off"})
    server.start()
    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DATABASE}")
    env = process_env(DATABASE_URL=server.url(DATABASE))
    for command in (["migrate", "--no-input", "-v", "0"],
                    ["ensure_demo_workspace", "--key-file", str(parent / "key")]):  # fmt: skip
        done = subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            server.stop()
            raise RuntimeError(f"manage.py {command[0]} failed:\n{done.stderr[-3000:]}")
    return PrivatePostgres(server, (parent / "key").read_text().strip())
