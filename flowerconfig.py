"""Flower's configuration, read by `celery -A config flower` from the working directory.

Flower never runs without authentication: FLOWER_BASIC_AUTH (user:password[,user2:password2])
comes from the environment, not the command line, so no password shows in `ps`. Flower's own
/metrics and /healthcheck stay unauthenticated whatever this says: keep :5555 private.
"""

import os
import sys
from pathlib import Path

if not os.environ.get("FLOWER_BASIC_AUTH", "").strip():
    sys.exit("FLOWER_BASIC_AUTH (user:password) is required: Flower refuses to start without it")
if any(arg.startswith("--basic-auth") or arg.startswith("--auth") for arg in sys.argv):
    sys.exit("give Flower's credentials in FLOWER_BASIC_AUTH, not on the command line")

# Tasks and workers survive a restart of Flower; FLOWER_DB moves the file (e.g. to a volume).
persistent = True
db = os.environ.get("FLOWER_DB", ".run/flower.db")
Path(db).parent.mkdir(parents=True, exist_ok=True)
