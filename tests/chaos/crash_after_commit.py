"""A web process that dies between the commit of its jobs and their publish.

`python -m tests.chaos.crash_after_commit KEY CRID...` posts one job per client_request_id to
POST /ai/jobs through the real API stack (Django's test client, in this process), all inside
one transaction, then commits and is SIGKILLed by the first on-commit callback, registered
before the API's own: every job is stored, none is published.
"""

import os
import signal
import sys

import django

from tests.chaos.jobs import job_body


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.db import transaction
    from django.test import Client

    api_key, *request_ids = sys.argv[1:]
    client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {api_key}")
    with transaction.atomic():
        # Runs first of the on-commit callbacks: after the commit, before any publish.
        transaction.on_commit(lambda: os.kill(os.getpid(), signal.SIGKILL))
        for request_id in request_ids:
            response = client.post(
                "/ai/jobs", job_body(request_id), content_type="application/json"
            )
            if response.status_code != 202:
                sys.exit(f"{request_id}: {response.status_code} {response.content[:300]!r}")
    sys.exit("still alive after the commit")


if __name__ == "__main__":
    main()
