"""The bare project (bench/bare/) as the bench runs it, beside ours on the same servers.

Its own database on the same PostgreSQL (created before the run and dropped after it), its own
Redis database on the same server, its own gunicorn and Celery workers. The bench process never
imports the bare project (it would need the bare settings): it starts it as processes, writes
its table with psycopg and sends its tasks by name through a Celery app of its own.
"""

import os
import sys
from datetime import datetime

import psycopg
import redis
from celery import Celery
from django.conf import settings
from psycopg import sql

from tests.processes import BIN, Process

BARE_REDIS_URL = os.environ.get("BENCH_BARE_REDIS_URL", "redis://127.0.0.1:6379/7")
QUEUE = "celery"  # kombu's default queue: the bare project keeps Celery's defaults
TASK = "bench.bare.tasks.complete"
TABLE = "bare_request"


class BareProject:
    name = "bare"
    queue = QUEUE

    def __init__(self) -> None:
        ours = settings.DATABASES["default"]
        self.params = {
            "host": ours["HOST"] or "127.0.0.1",
            "port": ours["PORT"] or 5432,
            "user": ours["USER"] or "postgres",
            "password": ours["PASSWORD"] or None,
        }
        self.database = f"{ours['NAME']}_bare"
        self.redis = redis.Redis.from_url(BARE_REDIS_URL)

    def env(self, **overrides: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.bare.settings",
            "BARE_DB_NAME": self.database,
            "BARE_DB_HOST": str(self.params["host"]),
            "BARE_DB_PORT": str(self.params["port"]),
            "BARE_DB_USER": self.params["user"],
            "BARE_DB_PASSWORD": self.params["password"] or "",
            "BARE_REDIS_URL": BARE_REDIS_URL,
            "OPENAI_API_KEY": "bench",
            "PYTHONUNBUFFERED": "1",
        }
        env.update(overrides)
        return env

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(dbname="postgres", autocommit=True, **self.params)

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(dbname=self.database, autocommit=True, **self.params)

    def create(self) -> None:
        """A fresh database, migrated by the bare project's own migration."""
        self.drop()
        with self._admin() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.database)))
        migrate = Process("bare-migrate", [sys.executable, "-m", "django", "migrate"], self.env())
        code = migrate.popen.wait(timeout=120)
        migrate.stop()
        if code != 0:
            raise RuntimeError(f"bare migrate failed:\n{migrate.log()[-3000:]}")
        self.redis.flushdb()

    def drop(self) -> None:
        with self._admin() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(self.database)
                )
            )
        self.redis.flushdb()

    def web(self, port: int, workers: str) -> Process:
        """gunicorn with its defaults (sync workers), as many processes as ours."""
        command = [str(BIN / "gunicorn"), "bench.bare.wsgi", "--bind", f"127.0.0.1:{port}"]
        return Process("bench-bare-web", [*command, "--workers", workers], self.env())

    def worker(self, *, base_url: str, threads: int, index: int, suffix: str) -> Process:
        """Celery's stock worker (gossip, mingle, no task events) in our shape: threads pool."""
        command = [
            str(BIN / "celery"),
            "-A",
            "bench.bare.celery_app",
            "worker",
            "-l",
            "info",
            "--pool",
            "threads",
            "--concurrency",
            str(threads),
            "-n",
            f"bare-{index}-{suffix}@%h",
        ]
        return Process(f"bench-bare-worker-{index}", command, self.env(OPENAI_BASE_URL=base_url))

    def reset(self) -> None:
        with self.connect() as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(TABLE)))
            conn.execute(sql.SQL("VACUUM ANALYZE {}").format(sql.Identifier(TABLE)))
        self.redis.flushdb()

    def enqueue(self, jobs: int, run: str) -> None:
        with self.connect() as conn:
            ids = conn.execute(
                sql.SQL(
                    "INSERT INTO {} (client_request_id, prompt, status, output, created_at) "
                    "SELECT %s || n, 'benchmark job ' || n, 'queued', '', now() "
                    "FROM generate_series(1, %s) AS n RETURNING id"
                ).format(sql.Identifier(TABLE)),
                [f"bare-{run}-", jobs],
            ).fetchall()
        # A Celery app of our own, not made current: our own tasks keep publishing through ours.
        sender = Celery("bench-bare-sender", broker=BARE_REDIS_URL, set_as_current=False)
        try:
            with sender.producer_or_acquire() as producer:
                for (row_id,) in ids:
                    sender.send_task(
                        TASK, args=[row_id, f"benchmark job {row_id}"], producer=producer
                    )
        finally:
            sender.close()

    def unfinished(self) -> int:
        with self.connect() as conn:
            query = sql.SQL("SELECT count(*) FROM {} WHERE finished_at IS NULL")
            return conn.execute(query.format(sql.Identifier(TABLE))).fetchone()[0]

    def outcome(self) -> tuple[datetime, datetime, int]:
        """First start, last finish, rows done."""
        with self.connect() as conn:
            query = sql.SQL(
                "SELECT min(started_at), max(finished_at), count(*) FILTER (WHERE status = 'done') "
                "FROM {}"
            )
            return conn.execute(query.format(sql.Identifier(TABLE))).fetchone()
