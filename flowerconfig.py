"""Flower's configuration: `celery -A config flower --conf=/abs/path/to/flowerconfig.py`.

Flower reads this file wherever it is started: config/celery.py points FLOWER_CONF (an option
Flower reads from the environment) here unless it is set, so Flower started from another
directory without --conf still runs these checks. Flower never runs without authentication:
FLOWER_BASIC_AUTH (user:password[,user2:password2], every user and password non-empty) comes
from the environment, not the command line, so no password shows in `ps`. It listens on
FLOWER_ADDRESS, 127.0.0.1 unless set (Flower's own default is every interface); --address on
the command line wins. Flower's own /metrics and /healthcheck stay unauthenticated whatever this
says: keep :5555 private. Module-level names that match Flower's options are its settings.
"""

import os
import sys
from pathlib import Path


def _checked_credentials(raw: str) -> list[str]:
    entries = raw.split(",")
    for entry in entries:
        user, colon, password = entry.partition(":")
        # Flower would accept ":" or "admin:" as a credential: an empty password lets anyone in.
        if not colon or not user.strip() or not password.strip():
            sys.exit(
                "FLOWER_BASIC_AUTH must be user:password (comma-separated for several users), "
                "each user and password non-empty: Flower refuses to start without it"
            )
    return entries


def _option_name(arg: str) -> str:
    return arg.lstrip("-").partition("=")[0].replace("_", "-")


# Flower applies its command line after this file: credentials there would replace the checked ones.
if any(
    arg.startswith("-") and _option_name(arg) in {"basic-auth", "auth", "auth-provider"}
    for arg in sys.argv[1:]
):
    sys.exit("give Flower's credentials in FLOWER_BASIC_AUTH, not on the command line")
# Set here, this beats whatever Flower read from the environment on its own.
basic_auth = _checked_credentials(os.environ.get("FLOWER_BASIC_AUTH", ""))
address = os.environ.get("FLOWER_ADDRESS", "").strip() or "127.0.0.1"

# Tasks and workers survive a restart of Flower; FLOWER_DB moves the file (e.g. to a volume).
persistent = True
# The default is beside this file, not in whatever directory Flower was started from.
db = os.environ.get("FLOWER_DB", "").strip() or str(
    Path(__file__).resolve().parent / ".run/flower.db"
)
Path(db).parent.mkdir(parents=True, exist_ok=True)
