"""Fixtures of the chaos suite: the template cluster, one private stack per scenario, and the
report (one line per scenario) printed at the end of the run."""

import shutil
from collections.abc import Iterator

import pytest
from django.conf import settings

from scripts.local_stores import pg_bin_dir
from tests.chaos import seed
from tests.chaos.harness import RESULTS, Books, Clients, PgTemplate, Stack, build_template

# Without PostgreSQL's server binaries or redis-server (make test's system-deps and .ci/run
# install both) there is nothing to run.
if pg_bin_dir() is None or shutil.which("redis-server") is None:
    collect_ignore_glob = ["test_*.py"]


def encryption_env() -> dict[str, str]:
    return {"CONNECTION_ENCRYPTION_KEYS": ",".join(settings.CONNECTION_ENCRYPTION_KEYS)}


@pytest.fixture(scope="session")
def chaos_template(providers) -> Iterator[PgTemplate]:
    template = build_template({**encryption_env(), **providers.env()})
    yield template
    shutil.rmtree(template.data_dir.parent, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"chaos_{report.when}", report)


@pytest.fixture
def make_stack(request, tmp_path, chaos_template, simulator, providers):
    """Start a scenario's stack: `make_stack(workers=1, worker_include=(), **env)`."""
    stacks: list[Stack] = []
    clients: list[Clients] = []

    def make(*, workers: int = 1, worker_include=(), **env: str) -> tuple[Stack, Clients]:
        providers.reset()
        providers.grant("google", seed.GOOGLE_TOKEN, "google-refresh")
        providers.grant("microsoft", seed.MS_TOKEN, "microsoft-refresh")
        name = request.node.name.removeprefix("test_")
        stack = Stack(
            name, tmp_path, chaos_template, simulator, providers, {**encryption_env(), **env}
        )
        stacks.append(stack)
        stack.start(workers=workers, worker_include=worker_include)
        client = Clients(stack.base_url, stack.api_key)
        clients.append(client)
        return stack, client

    yield make
    for client in clients:
        client.close()
    failed = any(
        getattr(getattr(request.node, f"chaos_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    for stack in stacks:
        stack.stop()
        if failed and not any(books.scenario == stack.name for books in RESULTS):
            # It failed before balancing its books: the report says where.
            report = getattr(request.node, "chaos_call", None) or request.node.chaos_setup
            reason = str(getattr(report.longrepr, "reprcrash", None) or "failed")
            RESULTS.append(Books(stack.name, problems=[reason.splitlines()[0][-300:]]))
        if failed:
            request.node.add_report_section("teardown", "chaos logs", stack.describe_logs())
            print(f"\n{stack.name}: {stack.describe_logs()}")
        else:
            stack.remove_cluster()


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    terminalreporter.section("chaos scenarios")
    for books in RESULTS:
        terminalreporter.write_line(books.line())
        for problem in books.problems:
            terminalreporter.write_line(f"       {problem}")
