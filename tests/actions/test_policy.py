"""Specification of the action policy (kill switch, then unknown action, then allow-lists, then
argument validation) and of the action registry's tool names and tool definitions."""

import pytest
from django.test import override_settings

from actions.policy import (
    EXECUTE,
    PENDING_APPROVAL,
    WorkspacePolicy,
    arguments_hash,
    decide,
    recipients_outside,
    validate_arguments,
)
from actions.registry import REGISTRY, action_for_tool, tools_for
from core.action_names import ACTION_NAMES, GMAIL_SEND, OUTLOOK_SEND, TASK_CREATE

MAIL_ACTIONS = [GMAIL_SEND, OUTLOOK_SEND]
ALL = list(ACTION_NAMES)
DELETE = object()
# "allowed.example" in full-width letters and full stop, which IDNA folds to ASCII.
FULL_WIDTH_ALLOWED = "\uff41\uff4c\uff4c\uff4f\uff57\uff45\uff44\uff0eexample"

VALID = {
    GMAIL_SEND: {"to": ["ann@example.com"], "subject": "Hello", "body": "Hi Ann"},
    OUTLOOK_SEND: {"to": ["ann@example.com"], "subject": "Hello", "body": "Hi Ann"},
    TASK_CREATE: {"title": "Call Ann"},
}
INVALID = {
    GMAIL_SEND: {"to": "ann", "subject": "x\nBcc: eve@example.com"},
    TASK_CREATE: {"title": ""},
}


def arguments(action: str, **changes) -> dict:
    """The valid arguments of `action` with some fields changed (or removed with DELETE)."""
    args = dict(VALID[action])
    for name, value in changes.items():
        if value is DELETE:
            args.pop(name, None)
        else:
            args[name] = value
    return args


def addresses(count: int) -> list[str]:
    return [f"user{i}@example.com" for i in range(count)]


@pytest.fixture(autouse=True)
def actions_enabled():
    with override_settings(ACTIONS_ENABLED=True):
        yield


# --- decide: the order of the rules -----------------------------------------------------------


@pytest.mark.parametrize(
    ("enabled", "action", "args", "job_actions", "workspace_actions", "status", "reason"),
    [
        pytest.param(
            True, GMAIL_SEND, VALID[GMAIL_SEND], ALL, ALL, EXECUTE, "", id="valid-executes"
        ),
        pytest.param(
            True, TASK_CREATE, VALID[TASK_CREATE], [TASK_CREATE], [TASK_CREATE], EXECUTE, "",
            id="valid-executes-when-only-it-is-allowed",
        ),
        pytest.param(
            False, GMAIL_SEND, VALID[GMAIL_SEND], ALL, ALL, "skipped", "actions_disabled",
            id="kill-switch",
        ),
        pytest.param(
            False, "sms.send", None, [], [], "skipped", "actions_disabled",
            id="kill-switch-comes-before-everything",
        ),
        pytest.param(
            True, "sms.send", VALID[GMAIL_SEND], ALL, ALL, "denied", "unknown_action",
            id="unknown-action",
        ),
        pytest.param(
            True, "sms.send", None, [], [], "denied", "unknown_action",
            id="unknown-action-comes-before-allow-lists",
        ),
        pytest.param(
            True, GMAIL_SEND, VALID[GMAIL_SEND], [TASK_CREATE], ALL, "denied",
            "action_not_allowed", id="not-in-job-actions",
        ),
        pytest.param(
            True, GMAIL_SEND, VALID[GMAIL_SEND], ALL, [TASK_CREATE], "denied",
            "action_not_allowed", id="not-in-workspace-actions",
        ),
        pytest.param(
            True, GMAIL_SEND, INVALID[GMAIL_SEND], [], [], "denied", "action_not_allowed",
            id="allow-lists-come-before-arguments",
        ),
        pytest.param(
            True, GMAIL_SEND, INVALID[GMAIL_SEND], ALL, ALL, "rejected", "invalid_arguments",
            id="invalid-mail-arguments",
        ),
        pytest.param(
            True, TASK_CREATE, INVALID[TASK_CREATE], ALL, ALL, "rejected", "invalid_arguments",
            id="invalid-task-arguments",
        ),
        pytest.param(
            True, TASK_CREATE, None, ALL, ALL, "rejected", "invalid_arguments",
            id="arguments-not-an-object",
        ),
    ],
)  # fmt: skip
def test_decide_applies_the_first_rule_that_refuses(
    enabled, action, args, job_actions, workspace_actions, status, reason
):
    with override_settings(ACTIONS_ENABLED=enabled):
        decision = decide(
            spec=REGISTRY.get(action),
            arguments=args,
            job_actions=job_actions,
            workspace=WorkspacePolicy(allowed_actions=workspace_actions),
        )
    assert (decision.status, decision.reason) == (status, reason)
    assert decision.allowed is (status == EXECUTE)
    assert bool(decision.errors) is (reason == "invalid_arguments")


def test_a_rejection_lists_every_violation():
    decision = decide(
        spec=REGISTRY[GMAIL_SEND],
        arguments=INVALID[GMAIL_SEND],
        job_actions=ALL,
        workspace=WorkspacePolicy(allowed_actions=ALL),
    )
    fields = {error.split(":")[0] for error in decision.errors}
    assert fields == {"(root)", "to", "subject"}  # body missing, to not a list, subject injected


# --- decide: the approval rules come last -----------------------------------------------------


def decide_mail(args: dict, *, approved: bool = False, **workspace) -> tuple[str, str]:
    decision = decide(
        spec=REGISTRY[GMAIL_SEND],
        arguments=args,
        job_actions=ALL,
        workspace=WorkspacePolicy(allowed_actions=ALL, **workspace),
        approved=approved,
    )
    return decision.status, decision.reason


def test_recipient_outside_the_allowed_domains_waits_for_approval():
    args = arguments(GMAIL_SEND, to=["ann@acme.com"], cc=["eve@evil.example"])
    assert decide_mail(args, recipient_domains=["acme.com"]) == (
        PENDING_APPROVAL,
        "recipient_outside_allowed_domains",
    )
    # Positive control: the same mail to listed domains only executes.
    assert decide_mail(args, recipient_domains=["acme.com", "evil.example"]) == (EXECUTE, "")


def test_action_in_the_approval_required_list_waits_for_approval():
    assert decide_mail(VALID[GMAIL_SEND], approval_required=[GMAIL_SEND]) == (
        PENDING_APPROVAL,
        "approval_required",
    )
    assert decide_mail(VALID[GMAIL_SEND], approval_required=[OUTLOOK_SEND]) == (EXECUTE, "")


def test_an_approved_action_passes_the_approval_rules_but_not_the_others():
    args = arguments(GMAIL_SEND, to=["eve@evil.example"])
    rules = {"approval_required": [GMAIL_SEND], "recipient_domains": ["acme.com"]}
    assert decide_mail(args, approved=True, **rules) == (EXECUTE, "")
    with override_settings(ACTIONS_ENABLED=False):
        assert decide_mail(args, approved=True, **rules) == ("skipped", "actions_disabled")
    invalid = arguments(GMAIL_SEND, subject="x\nBcc: eve@evil.example")
    assert decide_mail(invalid, approved=True, **rules)[0] == "rejected"


def test_invalid_arguments_are_rejected_before_the_approval_rules():
    args = arguments(GMAIL_SEND, to=["eve@evil.example"], subject="x\nBcc: a@b.c")
    assert decide_mail(args, recipient_domains=["acme.com"]) == ("rejected", "invalid_arguments")


@pytest.mark.parametrize(
    ("address", "domains", "outside"),
    [
        pytest.param("ann@ACME.com", ["acme.com"], False, id="case-insensitive-address"),
        pytest.param("ann@acme.com", ["Acme.COM"], False, id="case-insensitive-list"),
        pytest.param("ann@acme.com.", ["acme.com"], False, id="trailing-dot-address"),
        pytest.param("ann@acme.com", ["acme.com."], False, id="trailing-dot-list"),
        pytest.param("ann@mail.acme.com", ["acme.com"], True, id="subdomain-not-listed"),
        pytest.param("ann@mail.acme.com", ["mail.acme.com"], False, id="subdomain-listed"),
        pytest.param("ann@notacme.com", ["acme.com"], True, id="suffix-is-not-a-match"),
        pytest.param("ann@acme.com.evil.example", ["acme.com"], True, id="prefix-not-a-match"),
        pytest.param("ann@anything.example", [], False, id="no-list-no-restriction"),
        pytest.param("x@ALLOWED.example.", ["allowed.example"], False, id="upper-case-and-dot"),
        pytest.param("x@bücher.example", ["xn--bcher-kva.example"], False, id="idna-address"),
        pytest.param("x@xn--bcher-kva.example", ["Bücher.example"], False, id="idna-list"),
        pytest.param(f"x@{FULL_WIDTH_ALLOWED}", ["allowed.example"], False, id="full-width"),
        pytest.param("x@bucher.example", ["bücher.example"], True, id="idna-is-not-ascii-folding"),
        pytest.param("x@allowed.example\u3000", ["allowed.example"], True, id="ideographic-space"),
        pytest.param("x@allowed.example\u00a0", ["allowed.example"], True, id="no-break-space"),
        pytest.param("evil@other.example@allowed.example", ["allowed.example"], True, id="two-at"),
    ],
)
def test_recipient_domains_match(address, domains, outside):
    assert bool(recipients_outside({"to": [address]}, domains)) is outside


def test_a_recipient_with_unicode_whitespace_is_refused_not_admitted():
    args = arguments(GMAIL_SEND, to=["x@acme.com\u3000"])
    decision = decide(
        spec=REGISTRY[GMAIL_SEND],
        arguments=args,
        job_actions=ALL,
        workspace=WorkspacePolicy(allowed_actions=ALL, recipient_domains=["acme.com"]),
    )
    assert (decision.status, decision.reason) == ("rejected", "invalid_arguments")
    assert decision.errors == ["to/0: contains whitespace (give one bare address, no name)"]


def test_an_encoded_line_break_in_the_subject_is_refused_even_when_approved():
    args = arguments(GMAIL_SEND, subject="=?utf-8?q?Report=0D=0ABcc:_eve@evil.example?=")
    for approved in (False, True):
        decision = decide(
            spec=REGISTRY[GMAIL_SEND],
            arguments=args,
            job_actions=ALL,
            workspace=WorkspacePolicy(allowed_actions=ALL),
            approved=approved,
        )
        assert (decision.status, decision.reason) == ("rejected", "invalid_arguments")
        assert decision.errors == [
            "subject: contains a control character or line separator once its RFC 2047 "
            "encoded words are decoded"
        ]


def test_every_recipient_field_is_checked_but_not_reply_to():
    for name in ("to", "cc", "bcc"):
        assert recipients_outside({name: ["eve@evil.example"]}, ["acme.com"]) == [
            "eve@evil.example"
        ]
    assert recipients_outside({"to": ["a@acme.com"], "reply_to": "x@y.example"}, ["acme.com"]) == []


def test_arguments_hash_is_canonical_and_changes_with_any_argument():
    assert arguments_hash({"a": 1, "b": [1, 2]}) == arguments_hash({"b": [1, 2], "a": 1})
    assert arguments_hash({"a": 1}) != arguments_hash({"a": 2})
    assert len(arguments_hash({})) == 64


# --- validate_arguments -----------------------------------------------------------------------


@pytest.mark.parametrize("action", ALL)
def test_valid_arguments_have_no_errors(action):
    assert validate_arguments(REGISTRY[action], VALID[action]) == []


@pytest.mark.parametrize("action", MAIL_ACTIONS)
@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"to": addresses(50)}, id="50-recipients"),
        pytest.param(
            {"cc": addresses(50), "bcc": addresses(50), "reply_to": "bob@example.com"},
            id="cc-bcc-reply-to",
        ),
        pytest.param({"body": "x" * 100_000}, id="body-at-the-bound"),
        pytest.param({"subject": "s" * 998}, id="subject-at-the-bound"),
        pytest.param({"body": "line one\nline two\r\n"}, id="body-may-have-line-breaks"),
        pytest.param({"html": "<p>Hi</p>"}, id="html"),
        pytest.param({"subject": "Réunion ☕ =? ?="}, id="non-ascii-subject"),
        pytest.param({"body": "tab\there\u2028line"}, id="body-tab-and-line-separator"),
        pytest.param({"to": ["Ann@EXAMPLE.com.", "bob@bücher.example"]}, id="domains-normalised"),
    ],
)
def test_mail_arguments_within_the_bounds_are_valid(action, changes):
    assert validate_arguments(REGISTRY[action], arguments(action, **changes)) == []


@pytest.mark.parametrize("action", MAIL_ACTIONS)
@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"subject": "Hi\r\nBcc: eve@example.com"}, "subject", id="subject-crlf"),
        pytest.param({"subject": "Hi\nBcc: eve@example.com"}, "subject", id="subject-lf"),
        pytest.param({"subject": "Hi\rBcc: eve@example.com"}, "subject", id="subject-cr"),
        pytest.param({"subject": "Hi\n"}, "subject", id="subject-trailing-lf"),
        pytest.param({"subject": "s" * 999}, "subject", id="subject-too-long"),
        pytest.param({"to": addresses(51)}, "to", id="51-recipients"),
        pytest.param({"cc": addresses(51)}, "cc", id="51-cc"),
        pytest.param({"bcc": addresses(51)}, "bcc", id="51-bcc"),
        pytest.param({"to": []}, "to", id="no-recipient"),
        pytest.param({"to": "ann@example.com"}, "to", id="to-not-a-list"),
        pytest.param({"to": ["ann.example.com"]}, "to/0", id="email-without-at"),
        pytest.param({"to": ["ann@"]}, "to/0", id="email-without-domain"),
        pytest.param({"to": ["@example.com"]}, "to/0", id="email-without-local-part"),
        pytest.param({"to": ["ann smith@example.com"]}, "to/0", id="email-with-space"),
        pytest.param({"to": ["ann@example.com\r\nBcc: eve@example.com"]}, "to/0", id="email-crlf"),
        pytest.param(
            {"reply_to": "ann@example.com\nBcc: eve@example.com"}, "reply_to", id="reply-to-lf"
        ),
        pytest.param({"reply_to": "nobody"}, "reply_to", id="reply-to-not-an-email"),
        pytest.param({"body": "x" * 100_001}, "body", id="body-over-the-bound"),
        pytest.param({"html": "x" * 200_001}, "html", id="html-over-the-bound"),
        pytest.param({"attachments": ["/etc/passwd"]}, "(root)", id="unknown-property"),
        pytest.param({"subject": DELETE}, "(root)", id="subject-missing"),
        pytest.param({"body": 42}, "body", id="body-not-a-string"),
        pytest.param(
            {"subject": "=?utf-8?q?Report=0D=0ABcc:_eve@evil.example?="}, "subject", id="q-crlf"
        ),
        pytest.param(
            {"subject": "=?utf-8?b?UmVwb3J0DQpCY2M6IGV2ZUBldmlsLmV4YW1wbGU=?="},
            "subject",
            id="b-crlf",
        ),
        pytest.param({"subject": "=?utf-8?q?Hi=0D=0A=0D=0Abody?="}, "subject", id="q-blank"),
        pytest.param({"subject": "=?utf-8?q?Caf=C3=A9?="}, "subject", id="encoded-word"),
        pytest.param({"subject": "Hi\u2028Bcc: eve@example.com"}, "subject", id="subject-u2028"),
        pytest.param({"subject": "Hi\u2029"}, "subject", id="subject-u2029"),
        pytest.param({"subject": "Hi\x85Bcc: eve@example.com"}, "subject", id="subject-u0085"),
        pytest.param({"subject": "Hi\x0bBcc: eve@example.com"}, "subject", id="subject-vt"),
        pytest.param({"subject": "Hi\x1b[2J"}, "subject", id="subject-escape"),
        pytest.param({"subject": "Hi\u202e"}, "subject", id="subject-bidi-override"),
        pytest.param({"body": "Hi\x00"}, "body", id="body-nul"),
        pytest.param({"body": "Hi\x1b[2J"}, "body", id="body-escape"),
        pytest.param({"html": "<p>\x0c</p>"}, "html", id="html-form-feed"),
        pytest.param({"to": ["ann@example.com\u3000"]}, "to/0", id="email-ideographic-space"),
        pytest.param({"to": ["a@example.com, eve@evil.example"]}, "to/0", id="email-list"),
        pytest.param({"cc": ["Eve <eve@evil.example>"]}, "cc/0", id="email-display-name"),
        pytest.param({"bcc": ['"eve"@example.com']}, "bcc/0", id="email-quoted"),
        pytest.param({"to": ["=?utf-8?q?e=40evil.example?=@example.com"]}, "to/0", id="email-ew"),
        pytest.param({"to": ["anné@example.com"]}, "to/0", id="email-non-ascii-local-part"),
        pytest.param({"reply_to": "Eve <eve@evil.example>"}, "reply_to", id="reply-to-name"),
    ],
)
def test_invalid_mail_arguments_are_caught(action, changes, field):
    errors = validate_arguments(REGISTRY[action], arguments(action, **changes))
    assert any(error.startswith(f"{field}: ") for error in errors), errors


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"title": "t" * 200}, id="title-at-the-bound"),
        pytest.param({"due": "2024-02-29"}, id="due-date"),
        pytest.param({"priority": "high"}, id="priority"),
        pytest.param({"assignee": "bob@example.com", "description": "d" * 10_000}, id="all"),
    ],
)
def test_task_arguments_within_the_bounds_are_valid(changes):
    assert validate_arguments(REGISTRY[TASK_CREATE], arguments(TASK_CREATE, **changes)) == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        pytest.param({"title": ""}, "title", id="title-empty"),
        pytest.param({"title": "t" * 201}, "title", id="title-201-chars"),
        pytest.param({"title": DELETE}, "(root)", id="title-missing"),
        pytest.param({"due": "2024-13-01"}, "due", id="due-month-13"),
        pytest.param({"due": "2023-02-29"}, "due", id="due-not-a-leap-year"),
        pytest.param({"due": "tomorrow"}, "due", id="due-words"),
        pytest.param({"due": "20240101"}, "due", id="due-basic-iso-format"),
        pytest.param({"due": "2024-01-01T09:00:00Z"}, "due", id="due-datetime"),
        pytest.param({"priority": "urgent"}, "priority", id="priority-unknown"),
        pytest.param({"priority": "HIGH"}, "priority", id="priority-wrong-case"),
        pytest.param({"assignee": "bob"}, "assignee", id="assignee-not-an-email"),
        pytest.param({"assignee": "Bob <bob@example.com>"}, "assignee", id="assignee-with-name"),
        pytest.param({"description": "d" * 10_001}, "description", id="description-too-long"),
        pytest.param({"project": "x"}, "(root)", id="unknown-property"),
    ],
)
def test_invalid_task_arguments_are_caught(changes, field):
    errors = validate_arguments(REGISTRY[TASK_CREATE], arguments(TASK_CREATE, **changes))
    assert any(error.startswith(f"{field}: ") for error in errors), errors


def test_an_unknown_property_is_named_in_the_error():
    errors = validate_arguments(REGISTRY[TASK_CREATE], arguments(TASK_CREATE, project="x"))
    assert "project" in " ".join(errors)


# --- The registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "tool_name"),
    [(GMAIL_SEND, "gmail_send"), (OUTLOOK_SEND, "outlook_send"), (TASK_CREATE, "task_create")],
)
def test_tool_names_replace_dots_by_underscores(action, tool_name):
    assert REGISTRY[action].tool_name == tool_name


@pytest.mark.parametrize("action", ALL)
def test_action_for_tool_accepts_both_spellings(action):
    spec = REGISTRY[action]
    assert action_for_tool(spec.name) is spec
    assert action_for_tool(spec.tool_name) is spec


@pytest.mark.parametrize(
    "tool_name", ["sms_send", "sms.send", "GMAIL_SEND", "gmail-send", "gmail", "", " gmail.send"]
)
def test_action_for_tool_is_none_for_a_name_never_offered(tool_name):
    assert action_for_tool(tool_name) is None


@pytest.mark.parametrize(
    "actions",
    [[TASK_CREATE], [GMAIL_SEND, TASK_CREATE], ALL, [TASK_CREATE, OUTLOOK_SEND, GMAIL_SEND]],
)
def test_tools_for_offers_exactly_the_given_actions_in_registry_order(actions):
    tools = tools_for(actions)
    expected = [name for name in REGISTRY if name in actions]
    assert [tool["function"]["name"] for tool in tools] == [
        REGISTRY[name].tool_name for name in expected
    ]
    for tool, name in zip(tools, expected, strict=True):
        assert tool == {
            "type": "function",
            "function": {
                "name": REGISTRY[name].tool_name,
                "description": REGISTRY[name].description,
                "parameters": REGISTRY[name].schema,
            },
        }


@pytest.mark.parametrize("actions", [[], ["sms.send"], ["gmail_send"]])
def test_tools_for_offers_nothing_for_no_known_action(actions):
    assert tools_for(actions) == []
