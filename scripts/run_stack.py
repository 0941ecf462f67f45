"""`make run`: prepare the database, then run every process of the platform in the foreground.

Web (gunicorn, :8000), a Celery worker, beat, Flower (:5555) and, when no OPENAI_API_KEY is
set, the model simulator (:8001). Output is prefixed with the process name; Ctrl-C, or any
process dying, stops them all.
"""

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
RUN_DIR = ROOT / ".run"
BIN = Path(sys.executable).parent
WEB_PORT = int(os.environ.get("WEB_PORT", "8000"))
SIMULATOR_PORT = 8001
# Two threads-pool worker processes per core: a process's threads share one GIL, and with one
# process per core the cores sat 15% idle while threads queued for it (make bench: 2 x 128
# threads ~270 jobs/s, 4 x 128 ~310 on 2 cores).
WORKER_PROCESSES = int(os.environ.get("WORKER_PROCESSES") or 2 * (os.cpu_count() or 1))


def main() -> int:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))  # run as a script, the project root is not on the path
    RUN_DIR.mkdir(exist_ok=True)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()  # reads .env (variables already set win) and validates the settings
    from django.conf import settings

    ensure_database(settings.DATABASES["default"])
    manage("migrate", "--no-input", "-v", "0")
    api_key = manage("ensure_demo_workspace", "--key-file", str(RUN_DIR / "demo-api-key"))
    # flowerconfig.py reads the credentials from the environment (never the command line),
    # refuses to start without them and keeps Flower's state in .run/flower.db.
    flower_auth = os.environ.get("FLOWER_BASIC_AUTH") or ensure_flower_auth()
    os.environ["FLOWER_BASIC_AUTH"] = flower_auth

    processes = {
        "web": [
            str(BIN / "gunicorn"),
            "-c",
            "config/gunicorn.py",
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{WEB_PORT}",
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
        "flower": flower_command(),
    }
    if not settings.OPENAI_API_KEY:
        latency = os.environ.get("SIMULATOR_LATENCY_MS", "300")
        processes["simulator"] = [
            sys.executable,
            "-m",
            "orchestrator.simulator",
            "--port",
            str(SIMULATOR_PORT),
            "--latency-ms",
            latency,
        ]
    return supervise(processes, api_key, flower_auth.split(":", 1)[0])


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
    params = {
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


def supervise(commands: dict[str, list[str]], api_key: str, flower_user: str) -> int:
    children: dict[str, subprocess.Popen] = {}
    width = max(len(name) for name in commands)
    stopping = threading.Event()

    def pump(name: str, child: subprocess.Popen) -> None:
        for line in child.stdout:
            sys.stdout.write(f"{name:<{width}} | {line}")
            sys.stdout.flush()

    def stop(*_):
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    for name, command in commands.items():
        child = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # Ctrl-C reaches us alone; we stop the children in order
        )
        children[name] = child
        threading.Thread(target=pump, args=(name, child), daemon=True).start()

    announced = False
    exit_code = 0
    while not stopping.is_set():
        for name, child in children.items():
            if child.poll() is not None:
                print(f"{name} exited with {child.returncode}; stopping everything", flush=True)
                exit_code = 1
                stopping.set()
        if not announced and not stopping.is_set() and web_is_ready():
            announce(api_key, flower_user)
            announced = True
        stopping.wait(0.5)

    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    print("all processes stopped", flush=True)
    return exit_code


def web_is_ready() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{WEB_PORT}/ready", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def announce(api_key: str, flower_user: str) -> None:
    base = f"http://127.0.0.1:{WEB_PORT}"
    print(
        f"""
================================================================================
AI Orchestrator is up: API {base}, Flower http://127.0.0.1:5555 (user {flower_user},
password in .run/flower-password). Demo workspace ws-demo, key in .run/demo-api-key.
Submit a job:

curl -s -X POST {base}/ai/jobs \\
  -H "Authorization: Bearer {api_key}" -H "Content-Type: application/json" \\
  -d "{{\\"client_request_id\\": \\"demo-$(date +%s)\\", \\"prompt\\": \\"Say hello\\"}}"

Then read it with the Location it returns:
curl -s {base}/ai/jobs/<job id> -H "Authorization: Bearer {api_key}"
================================================================================
""",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
