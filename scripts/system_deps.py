"""The Debian packages `make run` and `make test` need: checked, and installed with apt-get as root.

    python3 scripts/system_deps.py venv curl promtool chromium postgres redis

One line per requirement: present, or being installed (and why). Without root, the one command
that installs what is missing is printed and the exit status is 1. Standard library only: this
runs before the virtualenv exists.
"""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APT_LOG = ROOT / ".run" / "apt-get.log"


def _has_commands(*names: str) -> Callable[[], bool]:
    return lambda: all(shutil.which(name) for name in names)


def _has_venv() -> bool:
    # Debian splits venv's pip bootstrap (ensurepip) into python3-venv.
    probe = subprocess.run(
        [sys.executable, "-c", "import venv, ensurepip"], capture_output=True, check=False
    )
    return probe.returncode == 0


def _has_postgres() -> bool:
    # The same lookup scripts/local_stores.py makes (Debian keeps the server out of PATH).
    return any(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or bool(shutil.which("initdb"))


@dataclass(frozen=True)
class Requirement:
    packages: tuple[str, ...]
    why: str
    present: Callable[[], bool]
    recommends: bool = False  # Chromium draws its fonts from recommended packages


REQUIREMENTS = {
    "venv": Requirement(("python3-venv",), "creates .venv", _has_venv),
    "curl": Requirement(
        ("curl",), "the banner's and the runbook's commands", _has_commands("curl")
    ),
    "promtool": Requirement(
        ("prometheus",), "promtool checks the alert rules; a real scrape", _has_commands("promtool")
    ),
    "chromium": Requirement(
        ("chromium", "chromium-driver"),
        "the admin's browser tests",
        _has_commands("chromium", "chromedriver"),
        recommends=True,
    ),
    "postgres": Requirement(
        ("postgresql",), "initdb/postgres for project-local and test clusters", _has_postgres
    ),
    "redis": Requirement(
        ("redis-server",),
        "redis-server for project-local and test instances",
        _has_commands("redis-server"),
    ),
}


def ensure(names: list[str], *, out=sys.stdout) -> bool:
    """Check each requirement, install the missing ones as root; False when some stay missing."""
    missing: list[tuple[str, Requirement]] = []
    for name in names:
        requirement = REQUIREMENTS[name]
        if requirement.present():
            print(f"system: {' '.join(requirement.packages)} present ({requirement.why})", file=out)
        else:
            missing.append((name, requirement))
    if not missing:
        return True
    packages = [package for _, requirement in missing for package in requirement.packages]
    if os.geteuid() != 0:
        for _, requirement in missing:
            print(f"system: {' '.join(requirement.packages)} MISSING ({requirement.why})", file=out)
        print(f"system: run  sudo apt-get install -y {' '.join(packages)}  then retry", file=out)
        return False
    APT_LOG.parent.mkdir(exist_ok=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    with APT_LOG.open("a") as log:
        subprocess.run(["apt-get", "update", "-qq"], stdout=log, stderr=log, env=env, check=False)
        for _, requirement in missing:
            print(
                f"system: installing {' '.join(requirement.packages)} with apt-get, as root "
                f"({requirement.why})",
                file=out,
                flush=True,
            )
            options = [] if requirement.recommends else ["--no-install-recommends"]
            command = ["apt-get", "install", "-y", "-qq", *options, *requirement.packages]
            subprocess.run(command, stdout=log, stderr=log, env=env, check=False)
    still_missing = [name for name, requirement in missing if not requirement.present()]
    if still_missing:
        failed = [p for name in still_missing for p in REQUIREMENTS[name].packages]
        print(f"system: apt-get install {' '.join(failed)} failed; see {APT_LOG}", file=out)
        return False
    return True


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in REQUIREMENTS]
    if unknown or not argv:
        print(f"usage: system_deps.py {{{','.join(REQUIREMENTS)}}}...", file=sys.stderr)
        return 2
    return 0 if ensure(argv) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
