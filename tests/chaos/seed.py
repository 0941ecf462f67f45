"""Prepare the chaos suite's template database: run as a process of its own against it.

`python -m tests.chaos.seed` migrates the database DATABASE_URL names, creates the chaos
workspace (mail to example.com needs no approval) with Google and Microsoft connections the
fake providers accept, and prints a new API key of that workspace. Every scenario's cluster
is a copy of this one.
"""

import os
import sys

import django

WORKSPACE = "ws-chaos"
GOOGLE_TOKEN = "ya29.chaos-google-token"
MS_TOKEN = "eyJ0.chaos-graph-token"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command

    from actions.connections import set_connection
    from orchestrator.api_keys import issue_api_key
    from orchestrator.models import Workspace

    call_command("migrate", "--no-input", verbosity=0)
    workspace = Workspace.objects.create(
        id=WORKSPACE, name="Chaos", recipient_domains=["example.com"]
    )
    for provider, token in (("google", GOOGLE_TOKEN), ("microsoft", MS_TOKEN)):
        set_connection(
            workspace_id=workspace.id,
            provider=provider,
            access_token=token,
            refresh_token=f"{provider}-refresh",
            expires_in_seconds=86400,
        )
    key = issue_api_key(workspace=workspace, scopes=["jobs:read", "jobs:write"], name="chaos")
    sys.stdout.write(key.plaintext + "\n")


if __name__ == "__main__":
    main()
