"""The chaos harness: a scenario's private stores and real processes, the clients' load, and the
books every scenario must balance (accepted = final, lost = 0, duplicate deliveries = 0,
5xx = 0).

Each scenario runs its own redis-server (AOF on) and its own PostgreSQL cluster (a copy of a
template cluster migrated once per session), so killing either disturbs nothing else. Worker
and beat processes are supervised the way make run, systemd or Kubernetes would: restarted when
they exit unless the scenario retired them; every exit is counted, and one the scenario did not
cause is a failure.
"""

import itertools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from scripts.local_stores import LocalPostgres, LocalRedis, free_port
from scripts.run_stack import worker_command
from tests.chaos.jobs import subject
from tests.fakes.mail_providers import FakeMailProviders
from tests.processes import BIN, ROOT, Process, Simulator, process_env, start_web, wait_until

DATABASE = "orchestrator"
FINAL = ("succeeded", "failed", "cancelled")

# Short leases and timeouts so that every recovery path (sweeper, visibility timeout, action
# lease) plays out within seconds; they keep the invariants config/settings.py enforces:
# job lease (6) > (AI_MAX_TOOL_ROUNDS + 1) x AI_REQUEST_TIMEOUT_SECONDS (5) and > the longest
# connector call (SEND_MAX_RETRIES + 2) x (0.5 + 1.5 + 0.5) = 5, visibility timeout > lease.
CHAOS_SETTINGS = {
    "AI_REQUEST_TIMEOUT_SECONDS": "2.5",
    "AI_MAX_TOOL_ROUNDS": "1",
    "JOB_LEASE_SECONDS": "6",
    "BROKER_VISIBILITY_TIMEOUT_SECONDS": "8",
    "JOB_REQUEUE_AFTER_SECONDS": "3",
    "SWEEP_INTERVAL_SECONDS": "1",
    "JOB_MAX_ATTEMPTS": "3",
    "ACTIONS_BACKEND": "live",
    "SEND_MAX_RETRIES": "0",
    "OUTBOUND_CONNECT_TIMEOUT_SECONDS": "0.5",
    "OUTBOUND_READ_TIMEOUT_SECONDS": "1.5",
    "SEND_RETRY_MAX_WAIT_SECONDS": "0.5",
    "ACTION_LEASE_SECONDS": "6",
    "RATE_LIMIT_PER_MINUTE": "0",
}
WORKER_THREADS = "8"

RESULTS: list["Books"] = []


# --- Stores -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PgTemplate:
    """A stopped, migrated and seeded cluster that each scenario copies."""

    data_dir: Path
    api_key: str

    def clone(self) -> LocalPostgres:
        parent = cluster_parent("chaos-pg-")
        subprocess.run(["cp", "-a", str(self.data_dir), str(parent / "data")], check=True)
        # fsync off: a killed server loses nothing the OS holds; only a host crash would.
        return LocalPostgres(parent / "data", free_port(), settings={"fsync": "off"})


def cluster_parent(prefix: str) -> Path:
    """A new directory for a cluster, which its owner can reach (as root the cluster runs as
    `postgres`, who must traverse every parent): in the temporary folder when it allows that,
    else directly in /tmp."""
    parent = Path(tempfile.mkdtemp(prefix=prefix))
    if os.geteuid() == 0 and not all(p.stat().st_mode & 0o001 for p in parent.parents):
        shutil.rmtree(parent)
        parent = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    parent.chmod(0o755)
    return parent


def build_template(env: dict[str, str]) -> PgTemplate:
    parent = cluster_parent("chaos-pg-template-")
    server = LocalPostgres(parent / "data", free_port(), settings={"fsync": "off"})
    server.start()
    try:
        with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        seeded = subprocess.run(
            [sys.executable, "-m", "tests.chaos.seed"],
            cwd=ROOT,
            env=process_env(DATABASE_URL=server.url(DATABASE), **env),
            capture_output=True,
            text=True,
            check=False,
        )
        if seeded.returncode != 0:
            raise RuntimeError(f"seeding the chaos template failed:\n{seeded.stderr[-3000:]}")
    finally:
        server.stop()
    return PgTemplate(server.data_dir, seeded.stdout.strip().splitlines()[-1])


# --- Supervised processes ---------------------------------------------------------------------


def keep_log_in(process: Process, path: Path) -> None:
    """Move a process's log next to the scenario's other files; the child writes on through its
    open descriptor (a rename on the same file system)."""
    try:
        os.replace(process.log_path, path)
    except OSError:
        return  # another file system: the log stays where it is, still listed
    process.log_path = path


class Supervised:
    """A process kept running: restarted after it exits, unless retired. Every exit is recorded
    with whether the scenario caused it."""

    def __init__(self, name: str, spawn: Callable[[], Process], log_dir: Path) -> None:
        self.name = name
        self.spawn = spawn
        self.log_dir = log_dir
        self.logs: list[Path] = []
        self.exits: list[tuple[int, bool]] = []  # (return code, caused by the scenario)
        self.retired = False
        self._expected = False
        self._recorded: set[int] = set()
        self._lock = threading.Lock()
        self.process = self._start()

    def _start(self) -> Process:
        process = self.spawn()
        keep_log_in(process, self.log_dir / f"{self.name}-{len(self.logs) + 1}.log")
        self.logs.append(process.log_path)
        return process

    @property
    def running(self) -> bool:
        return self.process.popen.poll() is None

    @property
    def unexpected_exits(self) -> list[int]:
        return [code for code, expected in self.exits if not expected]

    def send(self, sig: int) -> None:
        """Signal the process as the scenario's own act (its exit is expected)."""
        with self._lock:
            self._expected = True
            self.process.popen.send_signal(sig)

    def kill(self) -> None:
        self.send(signal.SIGKILL)

    def retire(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        """Stop for good (a rolling deploy's old release); returns the exit code."""
        with self._lock:
            self.retired = True
            self._expected = True
        self.process.stop(sig, timeout=timeout)
        self.check()
        return self.process.popen.returncode

    def check(self) -> None:
        with self._lock:
            code = self.process.popen.poll()
            if code is None or self.process.popen.pid in self._recorded:
                return
            self._recorded.add(self.process.popen.pid)
            self.exits.append((code, self._expected))
            self._expected = False
            if self.retired:
                return
            time.sleep(0.3)  # a supervisor's back-off
            self.process = self._start()

    def stop(self) -> None:
        with self._lock:
            self.retired = True
        self.process.stop()

    def wait_ready(self, text: str, timeout: float = 40) -> None:
        self.process.wait_for_log(text, timeout=timeout)


class Supervisor(threading.Thread):
    def __init__(self, processes: list[Supervised]) -> None:
        super().__init__(daemon=True, name="chaos-supervisor")
        self.processes = processes
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.2):
            for process in list(self.processes):
                process.check()


# --- The stack --------------------------------------------------------------------------------


class Stack:
    """One scenario's Redis, PostgreSQL, web, workers and beat, on free ports."""

    def __init__(
        self,
        name: str,
        workdir: Path,
        template: PgTemplate,
        simulator: Simulator,
        providers: FakeMailProviders,
        env: dict[str, str],
    ) -> None:
        self.name = name
        self.dir = workdir
        self.api_key = template.api_key
        self.simulator = simulator
        self.providers = providers
        self.redis = LocalRedis(workdir / "redis", free_port())
        self.pg = template.clone()
        self.env = {
            **CHAOS_SETTINGS,
            **providers.env(),
            "DATABASE_URL": self.pg.url(DATABASE),
            "REDIS_URL": self.redis.url(0),
            "OPENAI_BASE_URL": simulator.base_url,
            "OPENAI_API_KEY": "test-key",
            **env,
        }
        self.workers: list[Supervised] = []
        self._numbers = itertools.count(1)
        self.beat: Supervised | None = None
        self.web: Process | None = None
        self.base_url = ""
        self._supervised: list[Supervised] = []
        self.supervisor = Supervisor(self._supervised)
        self.started = time.time()
        self.boot_seconds = 0.0

    # starting and stopping

    def start(self, *, workers: int = 1, worker_include: Iterable[str] = ()) -> None:
        self.redis.start()
        self.pg.start()
        include = list(worker_include)
        with ThreadPoolExecutor(max_workers=4) as pool:
            web = pool.submit(start_web, **self.env)
            started = [pool.submit(self.add_worker, include=include) for _ in range(workers)]
            beat = pool.submit(self._start_beat)
            self.web, self.base_url = web.result()
            for future in started:
                future.result()
            beat.result()
        keep_log_in(self.web, self.dir / "web.log")
        self.supervisor.start()
        self.boot_seconds = time.time() - self.started
        self.started = time.time()

    def add_worker(self, *, include: Iterable[str] = ()) -> Supervised:
        """Start one more worker process (supervised) and wait until it consumes."""
        include = list(include)
        number = next(self._numbers)

        def spawn() -> Process:
            command = [
                *worker_command(f"chaos{number}-{uuid.uuid4().hex[:6]}@%h"),
                "--concurrency",
                WORKER_THREADS,
            ]
            if include:
                command += ["--include", ",".join(include)]
            return Process("worker", command, process_env(**self.env))

        worker = Supervised(f"worker{number}", spawn, self.dir)
        self.workers.append(worker)
        self._supervised.append(worker)
        worker.wait_ready("ready.")
        return worker

    def _start_beat(self) -> None:
        schedule = self.dir / "beat-schedule"

        def spawn() -> Process:
            command = [str(BIN / "celery"), "-A", "config", "beat", "-l", "info"]
            return Process("beat", [*command, "-s", str(schedule)], process_env(**self.env))

        self.beat = Supervised("beat", spawn, self.dir)
        self._supervised.append(self.beat)
        self.beat.wait_ready("beat: Starting")

    def stop(self) -> None:
        self.supervisor.stopping.set()
        if self.supervisor.is_alive():
            self.supervisor.join(timeout=5)
        stops = [process.stop for process in self._supervised]
        if self.web is not None:
            stops.append(self.web.stop)
        with ThreadPoolExecutor(max_workers=len(stops) or 1) as pool:
            for future in [pool.submit(stop) for stop in stops]:
                future.result()
        self.redis.stop()
        self.pg.stop()

    def remove_cluster(self) -> None:
        shutil.rmtree(self.pg.data_dir.parent, ignore_errors=True)

    # what the scenario reads

    def logs(self) -> list[Path]:
        paths = [self.dir / "web.log", self.redis.log_path, self.pg.log_path]
        for process in self._supervised:
            paths += process.logs
        return paths

    def describe_logs(self) -> str:
        return "logs:\n" + "\n".join(f"  {path}" for path in self.logs())

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.pg.url(DATABASE), connect_timeout=2, autocommit=True)

    def jobs(self) -> dict[str, dict]:
        """Every job of the chaos workspace, by client_request_id."""
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT client_request_id, id::text, status, attempts, error_code, created_at,"
                " enqueued_at, finished_at FROM orchestrator_job"
            ).fetchall()
        names = ("id", "status", "attempts", "error_code", "created_at", "enqueued_at", "finished")
        return {row[0]: dict(zip(names, row[1:], strict=True)) for row in rows}

    def actions(self) -> list[tuple[str, str, str]]:
        """(client_request_id, status, reason) of every action row."""
        with self.connect() as conn:
            return conn.execute(
                "SELECT j.client_request_id, a.status, a.reason FROM action_audit a"
                " JOIN orchestrator_job j ON j.id = a.job_id"
            ).fetchall()

    def exits(self) -> tuple[int, int]:
        """(exits the scenario caused, exits it did not) over workers and beat."""
        expected = sum(1 for p in self._supervised for _, ok in p.exits if ok)
        return expected, sum(len(p.unexpected_exits) for p in self._supervised)


# --- Clients ----------------------------------------------------------------------------------


@dataclass
class Submission:
    body: dict
    statuses: list[int | str] = field(default_factory=list)
    job_ids: set[str] = field(default_factory=set)

    @property
    def accepted(self) -> bool:
        return bool(self.job_ids)


class Clients:
    """API clients that submit jobs and, as the API asks, retry 503s (and unanswered requests)
    with the same client_request_id until answered; every answer is counted."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 5.0) -> None:
        self.http = httpx.Client(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key}"},
            timeout=timeout,
            limits=httpx.Limits(max_connections=32),
        )
        self.submissions: list[Submission] = []
        self.bad_answers: list[str] = []  # 5xx other than a JSON 503, and refusals (4xx)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def close(self) -> None:
        self.http.close()

    def submit(self, body: dict, *, give_up_after: float = 60) -> Submission:
        submission = Submission(body)
        with self._lock:
            self.submissions.append(submission)
        deadline = time.monotonic() + give_up_after
        while time.monotonic() < deadline:
            try:
                response = self.http.post("/ai/jobs", json=body)
            except httpx.TransportError as exc:
                submission.statuses.append(type(exc).__name__)
                time.sleep(0.2)
                continue
            submission.statuses.append(response.status_code)
            if response.status_code < 300:
                submission.job_ids.add(response.json()["id"])
                return submission
            if response.status_code == 503 and _is_json_503(response):
                time.sleep(min(float(response.headers.get("Retry-After") or 1), 1.0))
                continue
            with self._lock:
                self.bad_answers.append(f"{response.status_code} {response.text[:200]!r}")
            if response.status_code < 500:
                return submission  # refused: retrying the same body cannot help
            time.sleep(0.2)
        return submission

    def submit_all(self, bodies: Iterable[dict], *, concurrency: int = 8) -> None:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            list(pool.map(self.submit, bodies))

    def submit_paced(self, bodies: Iterable[dict], *, interval: float) -> None:
        """Start one submission every `interval` seconds in the background (join() waits)."""

        def run() -> None:
            with ThreadPoolExecutor(max_workers=16) as pool:
                for body in bodies:
                    pool.submit(self.submit, body)
                    time.sleep(interval)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self._threads.append(thread)

    def join(self, timeout: float = 90) -> None:
        for thread in self._threads:
            thread.join(timeout)

    def accepted(self) -> dict[str, set[str]]:
        """client_request_id -> the job ids the API answered 2xx with."""
        ids: dict[str, set[str]] = {}
        for submission in self.submissions:
            if submission.accepted:
                ids.setdefault(submission.body["client_request_id"], set()).update(
                    submission.job_ids
                )
        return ids

    def count(self, predicate: Callable[[int | str], bool]) -> int:
        return sum(1 for s in self.submissions for status in s.statuses if predicate(status))


def _is_json_503(response: httpx.Response) -> bool:
    try:
        return response.json()["error"]["code"] == "service_unavailable"
    except (ValueError, KeyError, TypeError):
        return False


# --- The books --------------------------------------------------------------------------------


@dataclass
class Books:
    scenario: str
    submitted: int = 0
    accepted: int = 0
    final: int = 0
    lost: int = 0
    duplicates: int = 0
    bad_5xx: int = 0
    answered_503: int = 0
    unanswered: int = 0
    refused: int = 0
    deliveries: int = 0
    unknown_actions: int = 0
    expected_exits: int = 0
    unexpected_exits: int = 0
    recovery: float | None = None
    wall: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)

    def line(self) -> str:
        recovery = "never" if self.recovery is None else f"{self.recovery:.1f}s"
        extra = "".join(f" {name}={value}" for name, value in self.extra.items())
        verdict = "ok  " if not self.problems else "FAIL"
        return (
            f"{verdict} {self.scenario:<26} accepted={self.accepted}/{self.submitted}"
            f" final={self.final} lost={self.lost} dup={self.duplicates} 5xx={self.bad_5xx}"
            f" 503={self.answered_503} unanswered={self.unanswered}"
            f" deliveries={self.deliveries} unknown={self.unknown_actions}"
            f" kills={self.expected_exits} crashes={self.unexpected_exits}"
            f" recovery={recovery} run={self.wall:.0f}s{extra}"
        )


def settle(
    stack: Stack,
    clients: Clients,
    *,
    since: float,
    timeout: float = 45,
    expect_failed: Iterable[str] = (),
    unexpected_exits_allowed: bool = False,
) -> Books:
    """Wait until every accepted job is final (or `timeout`), then balance the books.

    `since` (time.time()) is when the fault ended: recovery is how long after it the last
    accepted job became final. The books are recorded for the suite's report, then checked:
    `books.problems` lists every invariant broken.
    """
    clients.join()
    accepted = clients.accepted()
    deadline = time.monotonic() + timeout
    jobs: dict[str, dict] = {}
    while time.monotonic() < deadline:
        try:
            jobs = stack.jobs()
        except psycopg.OperationalError:
            time.sleep(0.5)
            continue
        if all(crid in jobs and jobs[crid]["status"] in FINAL for crid in accepted):
            break
        time.sleep(0.25)

    books = Books(
        stack.name, submitted=len({s.body["client_request_id"] for s in clients.submissions})
    )
    books.accepted = len(accepted)
    final = {c for c in accepted if c in jobs and jobs[c]["status"] in FINAL}
    books.final = len(final)
    books.lost = books.accepted - books.final
    books.statuses = Counter(jobs[c]["status"] for c in accepted if c in jobs)
    finished = [jobs[c]["finished"] for c in final if jobs[c]["finished"] is not None]
    if len(final) == len(accepted) and finished:
        books.recovery = max(0.0, max(f.timestamp() for f in finished) - since)
    books.wall = time.time() - stack.started
    books.extra["boot"] = f"{stack.boot_seconds:.0f}s"
    books.answered_503 = clients.count(lambda s: s == 503)
    books.bad_5xx = clients.count(lambda s: isinstance(s, int) and s >= 500 and s != 503)
    books.bad_5xx += sum(1 for answer in clients.bad_answers if answer.startswith("503"))
    books.unanswered = clients.count(lambda s: isinstance(s, str))
    books.refused = clients.count(lambda s: isinstance(s, int) and 400 <= s < 500)
    books.expected_exits, books.unexpected_exits = stack.exits()

    # Deliveries: one per e-mail (Message-ID) and one per job (its subject names it).
    per_message = stack.providers.deliveries_per_message_id()
    per_subject = Counter(d.subject for d in stack.providers.delivered())
    books.deliveries = sum(per_message.values())
    books.duplicates = max(
        sum(n - 1 for n in per_message.values()), sum(n - 1 for n in per_subject.values())
    )
    try:
        actions = stack.actions()
    except psycopg.OperationalError as exc:
        actions = []
        books.problems.append(f"action rows unreadable: {exc}")
    books.unknown_actions = sum(1 for _, status, _ in actions if status == "unknown")

    failed = set(expect_failed)
    _check(books, clients, accepted, jobs, actions, per_subject, failed, unexpected_exits_allowed)
    RESULTS.append(books)
    return books


def _check(
    books, clients, accepted, jobs, actions, per_subject, failed, unexpected_exits_allowed
) -> None:
    problems = books.problems
    bad_answers = clients.bad_answers
    unanswered = Counter(
        status for s in clients.submissions for status in s.statuses if isinstance(status, str)
    )
    if books.accepted != books.submitted:
        problems.append(f"{books.submitted - books.accepted} submissions never accepted")
    if books.lost:
        stuck = sorted(
            f"{c}:{jobs[c]['status'] if c in jobs else 'missing'}"
            for c in accepted
            if c not in jobs or jobs[c]["status"] not in FINAL
        )
        problems.append(f"lost (not final): {stuck[:10]}")
    for crid, ids in accepted.items():
        if crid in jobs and ids != {jobs[crid]["id"]}:
            problems.append(f"{crid}: the API answered job ids {ids}, stored {jobs[crid]['id']}")
    wrong = sorted(
        f"{c}:{jobs[c]['status']}/{jobs[c]['error_code']}"
        for c in accepted
        if c in jobs
        and jobs[c]["status"] in FINAL
        and jobs[c]["status"] != ("failed" if c in failed else "succeeded")
    )
    if wrong:
        problems.append(f"jobs ended otherwise than expected: {wrong[:10]}")
    if books.duplicates:
        twice = [s for s, n in per_subject.items() if n > 1]
        problems.append(f"{books.duplicates} duplicate deliveries: {twice[:10]}")
    if books.bad_5xx or books.refused:
        problems.append(
            f"bad answers ({books.bad_5xx} 5xx, {books.refused} 4xx), first: {bad_answers[:3]}"
        )
    if books.unanswered:
        problems.append(
            f"{books.unanswered} requests unanswered (timeout or connection lost): "
            f"{dict(unanswered)}"
        )
    if books.unexpected_exits and not unexpected_exits_allowed:
        problems.append(f"{books.unexpected_exits} process exits the scenario did not cause")
    for crid, status, reason in actions:
        delivered = per_subject.get(subject(crid), 0)
        if status == "executed" and delivered != 1:
            problems.append(f"{crid}: action executed, delivered {delivered} times")
        elif status not in ("executed", "unknown"):
            problems.append(f"{crid}: action ended {status} ({reason})")


def wait_for(predicate: Callable[[], bool], *, timeout: float, message: str) -> None:
    wait_until(predicate, timeout=timeout, interval=0.05, message=message)
