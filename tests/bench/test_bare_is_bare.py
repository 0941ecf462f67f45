"""The bench's bare project is the baseline only while it carries nothing of the project."""

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BARE = ROOT / "bench" / "bare"
PROJECT_PACKAGES = {
    "core",
    "orchestrator",
    "actions",
    "audit",
    "config",
    "orchestrator_client",
    "scripts",
    "tests",
}


def _sources() -> list[Path]:
    return sorted(BARE.rglob("*.py"))


def _modules_named(tree: ast.AST) -> list[str]:
    """Every module a file imports, and every dotted name it spells in a string (settings name
    middleware, apps and transports as strings)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names += [word for word in node.value.replace(":", " ").split() if "." in word]
    return names


def _project_names(path: Path) -> list[str]:
    found = []
    for name in _modules_named(ast.parse(path.read_text(), filename=str(path))):
        top = name.split(".")[0]
        # bench.bare may import itself; no other part of the bench (it imports the project).
        outside_bare = name.startswith("bench.") and not name.startswith("bench.bare")
        climbs = name.startswith("..")
        if top in PROJECT_PACKAGES or outside_bare or climbs:
            found.append(name)
    return found


def test_bare_project_has_settings_urls_views_tasks_and_celery_app():
    names = {path.name for path in _sources()}
    assert {"settings.py", "urls.py", "views.py", "tasks.py", "celery_app.py", "wsgi.py"} <= names


def test_bare_project_imports_and_names_nothing_of_the_project():
    offenders = {
        str(path.relative_to(ROOT)): names for path in _sources() if (names := _project_names(path))
    }
    assert offenders == {}


def test_project_import_in_a_bare_file_is_caught():
    tree = "from core.redis_client import get_redis\nMIDDLEWARE = ['core.middleware.X']\n"
    names = [n for n in _modules_named(ast.parse(tree)) if n.split(".")[0] in PROJECT_PACKAGES]
    assert names == ["core.redis_client", "core.middleware.X"]


def test_bare_endpoints_task_is_published_to_the_bare_redis_broker(redis_db):
    # The web process never imports celery_app by name: it is the package's import that makes
    # the bare app current, as "First steps with Django" does. Without it, `shared_task`
    # publishes through Celery's default app, to amqp://localhost, and the bare endpoint
    # measures a different broker from ours.
    url = redis_db.connection_pool.connection_kwargs
    broker = f"redis://{url['host']}:{url['port']}/{url['db']}"
    script = (
        "import django; django.setup()\n"
        "from bench.bare.tasks import complete\n"
        "complete.apply_async(args=[1, 'hello'])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.bare.settings",
        "BARE_REDIS_URL": broker,
        "OPENAI_API_KEY": "unused",
    }
    subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=60)
    assert redis_db.llen("celery") == 1
