"""Names of the actions the platform knows, importable before Django is configured."""

GMAIL_SEND = "gmail.send"
OUTLOOK_SEND = "outlook.send"
TASK_CREATE = "task.create"

ACTION_NAMES: tuple[str, ...] = (GMAIL_SEND, OUTLOOK_SEND, TASK_CREATE)
