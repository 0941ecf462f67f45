"""Every action the model can be offered: its description, argument schema and connector."""

from collections.abc import Callable
from dataclasses import dataclass

from actions import mail_safety
from actions.connectors.backend import MailBackend
from actions.connectors.base import Connector
from actions.connectors.gmail import GmailConnector
from actions.connectors.outlook import OutlookConnector
from actions.connectors.sandbox import SandboxMailConnector
from actions.connectors.tasks import TaskConnector
from core.action_names import GMAIL_SEND, OUTLOOK_SEND, TASK_CREATE

# The "email" format is checked strictly (actions.policy): one bare local@domain.
_EMAIL = {"type": "string", "format": "email", "maxLength": 254}
_ADDRESSES = {"type": "array", "items": _EMAIL, "maxItems": 50}
# RFC 5322 caps a header line at 998 characters. Line breaks and the rest, raw or RFC 2047
# encoded, are refused by mail_safety.text_errors: a pattern cannot see through the encoding.
_SUBJECT = {"type": "string", "maxLength": 998}

_MAIL_SCHEMA = {
    "type": "object",
    "properties": {
        "to": {**_ADDRESSES, "minItems": 1},
        "cc": _ADDRESSES,
        "bcc": _ADDRESSES,
        "reply_to": _EMAIL,
        "subject": _SUBJECT,
        "body": {"type": "string", "maxLength": 100_000},
        "html": {"type": "string", "maxLength": 200_000},
    },
    "required": ["to", "subject", "body"],
    "additionalProperties": False,
}

_TASK_SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 10_000},
        "due": {"type": "string", "format": "date"},
        "assignee": _EMAIL,
        "priority": {"type": "string", "enum": ["low", "normal", "high"]},
    },
    "required": ["title"],
    "additionalProperties": False,
}


@dataclass(frozen=True)
class ActionSpec:
    name: str
    description: str
    schema: dict
    connector: Connector
    # What the schema cannot say: "field: problem" for each refused value.
    check_arguments: Callable[[dict], list[str]] | None = None

    @property
    def tool_name(self) -> str:
        """OpenAI tool names allow no dots, so `gmail.send` is offered as `gmail_send`."""
        return self.name.replace(".", "_")

    def as_tool(self) -> dict:
        """The chat-completions tool definition offered to the model."""
        return {
            "type": "function",
            "function": {
                "name": self.tool_name,
                "description": self.description,
                "parameters": self.schema,
            },
        }


REGISTRY: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in (
        ActionSpec(
            name=GMAIL_SEND,
            description="Send an e-mail from the workspace's Gmail account.",
            schema=_MAIL_SCHEMA,
            connector=MailBackend(
                sandbox=SandboxMailConnector(provider="gmail"), live=GmailConnector()
            ),
            check_arguments=mail_safety.text_errors,
        ),
        ActionSpec(
            name=OUTLOOK_SEND,
            description="Send an e-mail from the workspace's Outlook account.",
            schema=_MAIL_SCHEMA,
            connector=MailBackend(
                sandbox=SandboxMailConnector(provider="outlook"), live=OutlookConnector()
            ),
            check_arguments=mail_safety.text_errors,
        ),
        ActionSpec(
            name=TASK_CREATE,
            description="Create a task in the workspace's task list.",
            schema=_TASK_SCHEMA,
            connector=TaskConnector(),
        ),
    )
}
_BY_TOOL_NAME = {spec.tool_name: spec for spec in REGISTRY.values()}


def action_for_tool(tool_name: str) -> ActionSpec | None:
    """The action a tool name stands for (either spelling), or None for a name we never offer."""
    return REGISTRY.get(tool_name) or _BY_TOOL_NAME.get(tool_name)


def tools_for(action_names: list[str]) -> list[dict]:
    """Tool definitions for the given actions, in registry order."""
    return [spec.as_tool() for name, spec in REGISTRY.items() if name in action_names]
