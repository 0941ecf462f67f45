"""Keep a set of processes running in the foreground, as `make run` does.

A process that exits is started again after a backoff (1 s, doubling to 30 s; back to 1 s once it
has run a minute), with a line saying how it ended. Everything stops on Ctrl-C, SIGTERM or a
closed terminal (SIGHUP). Each child is tied to the supervisor's life: if the supervisor is killed
outright, the kernel sends the child SIGTERM (PR_SET_PDEATHSIG), so no worker goes on consuming
jobs with nobody watching it.

Standard library only. Run as `python supervisor.py --guard PID -- COMMAND...` it is the launcher
that sets that signal and then becomes COMMAND.
"""

import collections
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


@dataclass
class Child:
    name: str
    command: list[str]
    popen: subprocess.Popen[str] | None = None
    started_at: float = 0.0
    failures: int = 0  # consecutive short-lived runs: the backoff exponent
    restarts: int = 0
    next_start: float = 0.0
    last_lines: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=3))


class Supervisor:
    """Start `commands` (name -> argv), restart whichever exits, stop all on a signal."""

    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        out: IO[str] = sys.stdout,
        backoff_initial: float = 1.0,
        backoff_max: float = 30.0,
        stable_after: float = 60.0,
        stop_timeout: float = 20.0,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.children = {name: Child(name, command) for name, command in commands.items()}
        self.out = out
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.stable_after = stable_after
        self.stop_timeout = stop_timeout
        self.on_tick = on_tick
        self.stopping = threading.Event()
        self._width = max(len(name) for name in commands)
        # Reentrant: the signal handler writes too, and may interrupt a write of the main thread.
        self._write_lock = threading.RLock()

    def say(self, line: str) -> None:
        self._write(f"{'run':<{self._width}} | {line}\n")

    def _write(self, text: str) -> None:
        # A closed terminal must not stop the supervisor (nor block a child on a full pipe).
        with self._write_lock:
            try:
                self.out.write(text)
                self.out.flush()
            except (OSError, ValueError):
                pass

    def run(self) -> int:
        """Supervise until a stop signal; returns 0 after an orderly stop."""
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self._on_signal)
        for child in self.children.values():
            self._start(child)
        while not self.stopping.is_set():
            now = time.monotonic()
            for child in self.children.values():
                if child.popen is not None and child.popen.poll() is not None:
                    self._schedule_restart(child, now)
                elif child.popen is None and now >= child.next_start:
                    self._start(child)
            if self.on_tick is not None:
                self.on_tick()
            self.stopping.wait(0.25)
        self.stop_all()
        return 0

    def _on_signal(self, signum: int, _frame: object) -> None:
        if not self.stopping.is_set():
            self.say(f"{signal.Signals(signum).name}: stopping every process")
        self.stopping.set()

    def _start(self, child: Child) -> None:
        child.popen = subprocess.Popen(
            guarded(child.command),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            # Its own session: Ctrl-C reaches the supervisor alone, which stops the children in
            # order; the process group lets a last SIGKILL reach grandchildren (gunicorn's).
            start_new_session=True,
        )
        child.started_at = time.monotonic()
        threading.Thread(target=self._pump, args=(child, child.popen), daemon=True).start()
        if child.restarts:
            self.say(
                f"{child.name} started again (pid {child.popen.pid}, restart {child.restarts})"
            )
        else:
            self.say(f"{child.name} started (pid {child.popen.pid})")

    def _pump(self, child: Child, popen: subprocess.Popen[str]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            child.last_lines.append(line.rstrip())
            self._write(f"{child.name:<{self._width}} | {line}")

    def _schedule_restart(self, child: Child, now: float) -> None:
        assert child.popen is not None
        code = child.popen.returncode
        ran_for = now - child.started_at
        if ran_for >= self.stable_after:
            child.failures = 0
        delay = min(self.backoff_max, self.backoff_initial * 2**child.failures)
        child.failures += 1
        child.restarts += 1
        child.popen = None
        child.next_start = now + delay
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        # A process that exits on its own usually said why in its last line; a signal is the why.
        last = ""
        if code > 0 and child.last_lines:
            last = f"; its last line: {child.last_lines[-1][:200]}"
        self.say(
            f"{child.name} {how} after {ran_for:.0f}s{last}; restarting in {delay:.0f}s "
            f"(restart {child.restarts})"
        )

    def stop_all(self) -> None:
        """SIGTERM every child, wait for all (stop_timeout), then SIGKILL what is left."""
        running = [c.popen for c in self.children.values() if c.popen and c.popen.poll() is None]
        for popen in running:
            popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(popen.pid, signal.SIGKILL)
                popen.wait()
        self.say("all processes stopped")


def guarded(command: list[str]) -> list[str]:
    """`command` started through the launcher that ties it to this process's life."""
    return [sys.executable, "-I", "-S", str(Path(__file__).resolve()), "--guard", str(os.getpid()),
            "--", *command]  # fmt: skip


def _exec_guarded(parent: int, command: list[str]) -> None:
    """Ask the kernel for SIGTERM when the parent dies, then become `command`."""
    # In the launcher rather than a preexec_fn: calling into libc between fork and exec is unsafe
    # in a process that has threads, as the supervisor does (one per child's output).
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the parent died before the signal was armed
        sys.exit(f"supervisor {parent} is gone; not starting {command[0]}")
    os.execvp(command[0], command)  # noqa: S606 - an argv from our own code, never a shell


if __name__ == "__main__":
    if len(sys.argv) > 4 and sys.argv[1] == "--guard" and sys.argv[3] == "--":
        _exec_guarded(int(sys.argv[2]), sys.argv[4:])
    sys.exit("usage: supervisor.py --guard PARENT_PID -- COMMAND [ARG...]")
