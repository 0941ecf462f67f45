"""The suite leaves the temporary folder as it found it.

Everything a test writes through `tempfile` (process logs, redis and PostgreSQL directories,
beat schedules, browser downloads) and everything its child processes write under $TMPDIR goes
into a directory of that test's own inside one folder for the run (pytest's `tmp_path` too).
After the test, any process still using that directory is stopped, and the directory is removed,
unless the test failed: then it is kept and its path printed in the summary. Fixtures wider than
a test write into the run's `session` directory. At the end the run's folder is removed when
nothing failed.
"""

import contextlib
import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import pytest

ORIGINAL_TMPDIR = os.environ.get("TMPDIR")
_state: dict = {"root": None, "failed": [], "leaks": [], "any_failed": False, "count": 0}


def _use(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    # Readable and traversable by all: as root, a private PostgreSQL runs as `postgres` and
    # must reach its data directory inside.
    directory.chmod(0o755)
    tempfile.tempdir = str(directory)
    os.environ["TMPDIR"] = str(directory)
    return directory


def _root() -> Path:
    return _state["root"]


def _test_dir() -> Path:
    # A number, not the test's name: a Unix socket's path (a PostgreSQL's, inside its data
    # directory) must stay under 108 bytes. The summary maps failed tests to their directory.
    _state["count"] += 1
    return _root() / f"t{_state['count']:04d}"


def processes_using(path: Path) -> list[int]:
    """Pids (not ours) whose command line, working directory or output is under `path`."""
    inside = str(path) + os.sep

    def under(name: str) -> bool:
        return name == str(path) or name.startswith(inside)

    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            uses = any(
                str(path) in argument and under(argument.split("=")[-1]) for argument in arguments
            )
            uses = uses or under(os.readlink(entry / "cwd"))
            # Standard output and error: a Process's log file. (All descriptors would cost ~0.1 s.)
            for fd in ("1", "2"):
                with contextlib.suppress(OSError):
                    uses = uses or under(os.readlink(entry / "fd" / fd))
        except OSError:
            continue
        if uses:
            found.append(int(entry.name))
    return found


def stop_processes_using(path: Path, owner: str) -> None:
    pids = processes_using(path)
    for pid in pids:
        try:
            command = (Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")).decode()
        except OSError:
            continue
        _state["leaks"].append(f"{owner}: pid {pid} ({command.strip()[:100]}) was still running")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists() and not _zombie(pid)]
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    root = Path(tempfile.mkdtemp(prefix="orch-tests-"))
    root.chmod(0o755)  # see _use
    _state["root"] = root
    _use(root / "session")
    if config.option.basetemp is None:
        # pytest's tmp_path under the run's folder too (not a pytest-of-<user> kept across runs).
        config.option.basetemp = str(root / "pytest")


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    if fixturedef.scope == "function":
        yield
        return
    current = tempfile.tempdir
    _use(_root() / "session")
    try:
        yield
    finally:
        tempfile.tempdir = current
        if current is not None:
            os.environ["TMPDIR"] = current


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    test_dir = _use(_test_dir())
    yield
    _use(_root() / "session")
    dirs = [test_dir]
    tmp_path = item.stash.get(_TMP_PATH, None)
    if tmp_path is not None:
        dirs.append(tmp_path)
    for directory in dirs:
        if directory.exists() and any(directory.iterdir()):
            stop_processes_using(directory, item.nodeid)
    if item.stash.get(_FAILED, False):
        kept = [str(d) for d in dirs if d.exists() and any(d.iterdir())]
        if kept:
            _state["failed"].append(f"{item.nodeid}: {' '.join(kept)}")
        return
    for directory in dirs:
        shutil.rmtree(directory, ignore_errors=True)


_FAILED = pytest.StashKey[bool]()
_TMP_PATH = pytest.StashKey[Path]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        item.stash[_FAILED] = True
        _state["any_failed"] = True


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item: pytest.Item) -> None:
    # Read before teardown: pytest drops the test's fixture values once it is over.
    funcargs = getattr(item, "funcargs", None) or {}
    if isinstance(funcargs.get("tmp_path"), Path):
        item.stash[_TMP_PATH] = funcargs["tmp_path"]


def pytest_terminal_summary(terminalreporter) -> None:
    if _state["leaks"]:
        terminalreporter.section("processes left running by tests (stopped)")
        for line in _state["leaks"]:
            terminalreporter.write_line(line)
    if _state["failed"]:
        terminalreporter.section("kept for failed tests: their logs and directories")
        for line in _state["failed"]:
            terminalreporter.write_line(line)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    # Before the summary is printed, so what was left running is reported there.
    if _state["root"] is not None:
        stop_processes_using(_state["root"], "the session")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    root = _state["root"]
    if root is None:
        return
    tempfile.tempdir = None
    if ORIGINAL_TMPDIR is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = ORIGINAL_TMPDIR
    # With a failure, the whole folder stays: the failed tests' directories (passed tests'
    # are gone already) and the session's logs (the simulator's, the fake providers').
    if _state["any_failed"]:
        print(f"\ntest files kept for inspection: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
