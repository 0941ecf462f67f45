"""scripts/supervisor.py, as `make run` uses it: a process that exits is started again and says
why; SIGTERM stops everything; a supervisor killed outright takes its children with it."""

import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.processes import ROOT, Process, wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]
FAILING = [
    sys.executable,
    "-c",
    "import time; time.sleep(0.5); print('cannot go on: boom'); exit(3)",
]


def start_supervisor(commands: dict[str, list[str]]) -> Process:
    driver = (
        "import sys; sys.path.insert(0, sys.argv[1]); from scripts.supervisor import Supervisor; "
        f"sys.exit(Supervisor({commands!r}, backoff_initial=0.2, backoff_max=1).run())"
    )
    process = Process("supervisor", [sys.executable, "-c", driver, str(ROOT)], env={})
    for name in commands:
        process.wait_for_log(f"{name} started (pid", timeout=15)
    return process


def pid_of(process: Process, name: str, *, restart: int = 0) -> int:
    pattern = (
        rf"{name} started again \(pid (\d+), restart {restart}\)"
        if restart
        else rf"{name} started \(pid (\d+)\)"
    )
    match = re.search(pattern, process.log())
    assert match, process.log()[-2000:]
    return int(match.group(1))


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def supervisor():
    started: list[Process] = []

    def start(commands: dict[str, list[str]]) -> Process:
        started.append(start_supervisor(commands))
        return started[-1]

    yield start
    for process in started:
        process.stop()


def test_a_killed_child_is_started_again_and_the_others_keep_running(supervisor):
    process = supervisor({"worker": SLEEPER, "web": SLEEPER})
    worker, web = pid_of(process, "worker"), pid_of(process, "web")

    os.kill(worker, signal.SIGKILL)

    process.wait_for_log("worker started again (pid", timeout=15)
    assert "worker was killed by SIGKILL" in process.log()
    assert alive(pid_of(process, "worker", restart=1))
    assert alive(web)
    assert process.popen.poll() is None  # the stack did not stop


def test_a_child_that_keeps_failing_is_restarted_with_its_exit_code_and_last_line(supervisor):
    process = supervisor({"flaky": FAILING})

    process.wait_for_log("flaky started again (pid", timeout=15)
    process.wait_for_log("restart 2)", timeout=15)

    assert "flaky exited with 3" in process.log()
    assert "its last line: cannot go on: boom" in process.log()
    assert re.search(r"restarting in \d+s \(restart 2\)", process.log())


# Ctrl-C, a stop request, a closed terminal.
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_stops_every_child_and_the_supervisor_exits_0(supervisor, sig):
    process = supervisor({"worker": SLEEPER, "beat": SLEEPER})
    children = [pid_of(process, "worker"), pid_of(process, "beat")]

    process.popen.send_signal(sig)

    assert process.popen.wait(timeout=30) == 0
    assert "all processes stopped" in process.log()
    assert not any(alive(pid) for pid in children)


def test_a_supervisor_killed_outright_takes_its_children_with_it(supervisor):
    process = supervisor({"worker": SLEEPER, "flower": SLEEPER})
    children = [pid_of(process, "worker"), pid_of(process, "flower")]

    process.popen.kill()  # SIGKILL: no handler runs, only the kernel's parent-death signal
    process.popen.wait()

    started = time.monotonic()
    wait_until(lambda: not any(alive(pid) for pid in children), timeout=10)
    assert time.monotonic() - started < 10
