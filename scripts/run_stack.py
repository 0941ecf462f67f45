"""`make run`: choose the stores, prepare the database, then supervise the platform's processes.

Web (gunicorn, WEB_PORT 8000), Celery workers, beat, Flower (FLOWER_PORT 5555) and, when no
OPENAI_API_KEY is set, the model simulator (SIMULATOR_PORT 8001). With no DATABASE_URL/REDIS_URL
and nothing usable on the default addresses, project-local PostgreSQL and Redis run under
.run/ (scripts/stores.py). Output is prefixed with the process name; a process that exits is
restarted (scripts/supervisor.py); Ctrl-C stops everything, the local stores last.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path

from scripts.stores import (  # noqa: E402
    StoreError,
    Stores,
    free_port,
    port_is_free,
    redact,
    select_stores,
)
from scripts.supervisor import Supervisor  # noqa: E402

BIN = Path(sys.executable).parent
# The run directory: generated secrets, Flower's and beat's state, the local stores' data.
RUN_DIR = Path(os.environ.get("RUN_DIR") or ROOT / ".run").resolve()
# Two threads-pool worker processes per core: a process's threads share one GIL, and with one
# process per core the cores sat 15% idle while threads queued for it (make bench: 2 x 128
# threads ~270 jobs/s, 4 x 128 ~310 on 2 cores).
WORKER_PROCESSES = int(os.environ.get("WORKER_PROCESSES") or 2 * (os.cpu_count() or 1))
PORT_DEFAULTS = {"WEB_PORT": 8000, "SIMULATOR_PORT": 8001, "FLOWER_PORT": 5555}


class StartupError(Exception):
    """Start-up cannot go on; the message says which variable to set."""


def main() -> int:
    os.chdir(ROOT)
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    # Until the supervisor takes over, a stop request unwinds start-up, so the local stores
    # started so far are stopped too.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    load_dotenv()
    try:
        ports = check_ports(uses_simulator=not os.environ.get("OPENAI_API_KEY"))
        stores = select_stores(
            database_url=os.environ.get("DATABASE_URL"),
            redis_url=os.environ.get("REDIS_URL"),
            run_dir=RUN_DIR,
        )
    except (StartupError, StoreError) as error:
        print(f"make run: {error}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    try:
        return run(stores, ports)
    except KeyboardInterrupt:
        return 130
    finally:
        stores.stop()


def load_dotenv() -> None:
    """Read .env as the settings will (variables already set win), to see which URLs are set."""
    import environ

    env_file = os.environ.get("ENV_FILE", str(ROOT / ".env"))
    if env_file and Path(env_file).is_file():
        environ.Env.read_env(env_file, overwrite=False)


def port_setting(variable: str) -> int:
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return PORT_DEFAULTS[variable]
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise StartupError(f"{variable}={raw!r} is not a TCP port (1-65535)")
    return int(raw)


def check_ports(*, uses_simulator: bool) -> dict[str, int]:
    """The ports make run listens on, each free; a taken one names the variable that moves it."""
    ports = {name: port_setting(name) for name in PORT_DEFAULTS}
    if not uses_simulator:
        del ports["SIMULATOR_PORT"]
    flower_host = os.environ.get("FLOWER_ADDRESS", "").strip() or "127.0.0.1"
    for variable, port in ports.items():
        host = flower_host if variable == "FLOWER_PORT" else "127.0.0.1"
        if not port_is_free(port, host):
            raise StartupError(
                f"port {port} ({variable}) is taken by another program: set {variable} to a "
                f"free port, e.g. {variable}={free_port()} make run"
            )
    if len(set(ports.values())) != len(ports):
        raise StartupError(f"two of {', '.join(ports)} name the same port: {ports}")
    return ports


def run(stores: Stores, ports: dict[str, int]) -> int:
    os.environ["DATABASE_URL"] = stores.database_url
    os.environ["REDIS_URL"] = stores.redis_url
    uses_simulator = "SIMULATOR_PORT" in ports
    if uses_simulator and not os.environ.get("OPENAI_BASE_URL"):
        os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{ports['SIMULATOR_PORT']}/v1"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()  # reads .env (variables already set win) and validates the settings
    from django.conf import settings

    ensure_database(settings.DATABASES["default"])
    manage("migrate", "--no-input", "-v", "0")
    api_key = manage("ensure_demo_workspace", "--key-file", str(RUN_DIR / "demo-api-key"))
    # flowerconfig.py reads the credentials from the environment (never the command line),
    # refuses to start without them and keeps Flower's state in .run/flower.db.
    flower_generated = not os.environ.get("FLOWER_BASIC_AUTH")
    flower_auth = os.environ.get("FLOWER_BASIC_AUTH") or ensure_flower_auth()
    os.environ["FLOWER_BASIC_AUTH"] = flower_auth
    os.environ.setdefault("FLOWER_DB", str(RUN_DIR / "flower.db"))

    processes = {
        "web": [
            str(BIN / "gunicorn"),
            "-c",
            "config/gunicorn.py",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{ports['WEB_PORT']}",
            "--workers",
            os.environ.get("WEB_CONCURRENCY", "4"),
        ],
        # WORKER_PROCESSES threads-pool worker processes, two per core by default.
        **{f"worker{n}": worker_command(f"worker{n}@%h") for n in range(1, WORKER_PROCESSES + 1)},
        "beat": [
            str(BIN / "celery"),
            "-A",
            "config",
            "beat",
            "-l",
            "info",
            "-s",
            str(RUN_DIR / "celerybeat-schedule"),
        ],
        "flower": flower_command(ports["FLOWER_PORT"]),
    }
    if uses_simulator:
        latency = os.environ.get("SIMULATOR_LATENCY_MS", "300")
        processes["simulator"] = [
            sys.executable,
            "-m",
            "orchestrator.simulator",
            "--port",
            str(ports["SIMULATOR_PORT"]),
            "--latency-ms",
            latency,
        ]
    banner = Banner(
        ports=ports,
        api_key=api_key,
        flower_user=flower_auth.split(":", 1)[0],
        flower_generated=flower_generated,
        stores=stores,
    )

    def tick() -> None:
        stores.revive()  # a project-local store that died comes back like any process
        banner.tick()

    return Supervisor(processes, on_tick=tick).run()


def worker_command(name: str) -> list[str]:
    """The Celery worker as shipped (make run, docker-compose.yml and make bench run this)."""
    # Pool and concurrency come from the settings (threads, WORKER_CONCURRENCY). No gossip: it
    # makes every worker consume every other worker's task events, a cost that grows with the
    # square of the fleet, for features this platform does not use; no mingle, its start-up
    # sync of revoked tasks (cancellation lives in PostgreSQL).
    return [
        str(BIN / "celery"),
        "-A",
        "config",
        "worker",
        "-l",
        "info",
        "--without-gossip",
        "--without-mingle",
        "-n",
        name,
    ]


def flower_command(port: int = 5555) -> list[str]:
    """Flower as shipped: this project's flowerconfig.py, on FLOWER_ADDRESS (127.0.0.1)."""
    # The config by absolute path, so Flower's checks run whatever the working directory.
    address = os.environ.get("FLOWER_ADDRESS", "").strip() or "127.0.0.1"
    return [
        str(BIN / "celery"),
        "-A",
        "config",
        "flower",
        f"--conf={ROOT / 'flowerconfig.py'}",
        f"--address={address}",
        f"--port={port}",
    ]


def ensure_database(db: dict) -> None:
    """Create the configured database if it does not exist yet."""
    params: dict[str, Any] = {
        "host": db["HOST"] or None,
        "port": db["PORT"] or None,
        "user": db["USER"] or None,
        "password": db["PASSWORD"] or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]])
        if exists.fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
            print(f"created database {db['NAME']}", flush=True)


def manage(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], check=True, stdout=subprocess.PIPE, text=True
    )
    return result.stdout.strip()


def ensure_flower_auth() -> str:
    path = RUN_DIR / "flower-password"
    if not path.is_file():
        path.write_text(secrets.token_urlsafe(12) + "\n")
        path.chmod(0o600)
    return f"admin:{path.read_text().strip()}"


class Banner:
    """Printed once, when /ready first answers 200: where everything is and a first request."""

    def __init__(
        self,
        *,
        ports: dict[str, int],
        api_key: str,
        flower_user: str,
        flower_generated: bool,
        stores: Stores,
    ) -> None:
        self.ports = ports
        self.api_key = api_key
        self.flower_user = flower_user
        self.flower_generated = flower_generated
        self.stores = stores
        self.shown = False
        self.next_check = 0.0

    def tick(self) -> None:
        # Every 2 s, not every tick: each 503 from /ready is a logged error line.
        if self.shown or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + 2
        if url_ok(f"http://127.0.0.1:{self.ports['WEB_PORT']}/ready"):
            self.shown = True
            print(self.text(), flush=True)

    def text(self) -> str:
        base = f"http://127.0.0.1:{self.ports['WEB_PORT']}"
        flower_address = os.environ.get("FLOWER_ADDRESS", "").strip() or "127.0.0.1"
        flower = f"http://{flower_address}:{self.ports['FLOWER_PORT']}"
        password = (
            f"password in {display(RUN_DIR / 'flower-password')}"
            if self.flower_generated
            else "password from FLOWER_BASIC_AUTH"
        )
        grafana_url = os.environ.get("GRAFANA_URL", "http://127.0.0.1:3000").rstrip("/")
        grafana = (
            f"\n  Grafana     {grafana_url}/   user admin, password GRAFANA_ADMIN_PASSWORD (.env)"
            if url_ok(f"{grafana_url}/api/health")
            else ""
        )
        model = (
            f"the simulator on :{self.ports['SIMULATOR_PORT']}"
            if "SIMULATOR_PORT" in self.ports
            else os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
        )
        key_file = display(RUN_DIR / "demo-api-key")
        return f"""
================================================================================
AI Orchestrator is up. Ctrl-C stops everything.
  API         {base}/ai/jobs   (model: {model})
  API docs    {base}/api/docs/
  Admin       {base}/admin/    create a user: .venv/bin/python manage.py createsuperuser
  Flower      {flower}/   user {self.flower_user}, {password}{grafana}
  PostgreSQL  {redact(self.stores.database_url)} ({self.stores.database_origin})
  Redis       {redact(self.stores.redis_url)} ({self.stores.redis_origin})
Demo workspace ws-demo, API key in {key_file}. Submit a job:

curl -s -X POST {base}/ai/jobs \\
  -H "Authorization: Bearer {self.api_key}" -H "Content-Type: application/json" \\
  -d "{{\\"client_request_id\\": \\"demo-$(date +%s)\\", \\"prompt\\": \\"Say hello\\"}}"

Then read it with the Location it returns:
curl -s {base}/ai/jobs/<job id> -H "Authorization: Bearer {self.api_key}"
================================================================================
"""


def display(path: Path) -> str:
    """`path` relative to the project when inside it (as a user would type it)."""
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def url_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
