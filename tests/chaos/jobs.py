"""What the chaos clients submit: a job whose model sends one e-mail, its subject naming the
job's client_request_id, so every delivery the fake providers count is traced to its job."""

import json

SEND = {"google": "gmail.send", "microsoft": "outlook.send"}


def subject(client_request_id: str) -> str:
    return f"chaos {client_request_id}"


def job_body(
    client_request_id: str,
    *,
    provider: str = "google",
    sleep_ms: int = 100,
    send: bool = True,
    metadata: dict | None = None,
) -> dict:
    """POST /ai/jobs body: the simulated model waits `sleep_ms` on each of its two answers
    and, with `send`, proposes one e-mail through `provider`'s connector."""
    action = SEND[provider]
    mail = {"to": ["someone@example.com"], "subject": subject(client_request_id), "body": "Hi"}
    lines = [f"SLEEP {sleep_ms}"]
    if send:
        lines.append(f"CALL {action} {json.dumps(mail)}")
    body: dict = {
        "client_request_id": client_request_id,
        "prompt": "\n".join(lines),
        "actions": [action] if send else [],
    }
    if metadata:
        body["metadata"] = metadata
    return body
