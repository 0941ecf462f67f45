"""How the admin shows an audit row to a person: short ids, truncated cells with the full text
on hover, ages, and a proposed e-mail rendered as a message, not as JSON. Every value is
model output, so every value is escaped (format_html), never marked safe as it comes."""

from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from audit.export import recipient_list
from audit.models import ActionAudit

MAIL_HEADERS = (("to", "To"), ("cc", "Cc"), ("bcc", "Bcc"), ("reply_to", "Reply-To"))
EXCERPT_LINES = 3
EXCERPT_CHARS = 140


def clipped(text: object, limit: int) -> str:
    """The text cut to `limit` characters with an ellipsis; the whole of it on hover."""
    value = "" if text is None else str(text)
    if len(value) <= limit:
        return format_html("{}", value)
    return format_html('<span title="{}">{}…</span>', value, value[: limit - 1])


def short_id(value: object, url: str = "", length: int = 8) -> str:
    """The first characters of an id (a link when `url` is given); the whole id on hover."""
    text = str(value)
    if url:
        return format_html('<a href="{}" title="{}">{}</a>', url, text, text[:length])
    return format_html('<span title="{}">{}</span>', text, text[:length])


def job_link(row: ActionAudit) -> str:
    return short_id(row.job_id, reverse("admin:orchestrator_job_change", args=[row.job_id]))


def duration(seconds: float) -> str:
    """`2d 3h`, `3h 12m`, `4m 10s`: two units are enough to compare ages at a glance."""
    seconds = int(max(seconds, 0))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s"


def age(moment: datetime, now: datetime | None = None) -> str:
    return duration(((now or timezone.now()) - moment).total_seconds())


def expires_in(moment: datetime | None, now: datetime | None = None) -> str:
    if moment is None:
        return "never"
    left = (moment - (now or timezone.now())).total_seconds()
    return f"in {duration(left)}" if left > 0 else "expired"


def body_excerpt(body: object) -> str:
    """The first lines of a body, each line kept apart (a person scans lines, not a blob)."""
    if not isinstance(body, str) or not body.strip():
        return ""
    lines = [line.strip() for line in body.strip().splitlines() if line.strip()]
    # Each line clipped too: one unbroken token must not make a tall column.
    shown = [line if len(line) <= 60 else line[:59] + "…" for line in lines[:EXCERPT_LINES]]
    text = "\n".join(shown)
    if len(text) > EXCERPT_CHARS:
        text = text[: EXCERPT_CHARS - 1] + "…"
    elif len(lines) > EXCERPT_LINES:
        text += " …"
    return format_html('<span class="excerpt" title="{}">{}</span>', body[:2000], text)


def recipients_text(arguments: object) -> str:
    return ", ".join(recipient_list(arguments))


def is_mail(row: ActionAudit) -> bool:
    arguments = row.arguments
    return isinstance(arguments, dict) and ("to" in arguments or "subject" in arguments)


def message(row: ActionAudit) -> str:
    """A proposed e-mail as its reader would see it: headers, subject, body with its line
    breaks; anything else (a task) as labelled fields."""
    arguments = row.arguments if isinstance(row.arguments, dict) else {}
    if not is_mail(row):
        fields = [(name, _text(value)) for name, value in arguments.items()]
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", fields)
        return format_html('<table class="message-fields">{}</table>', rows)
    headers = []
    for name, label in MAIL_HEADERS:
        value = arguments.get(name)
        if isinstance(value, list):
            value = ", ".join(map(str, value))
        if value:
            headers.append((label, value))
    headers.append(("Subject", _text(arguments.get("subject"))))
    header_rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", headers)
    html = arguments.get("html")
    html_part = (
        format_html(
            '<details class="message-html"><summary>HTML part (shown as source, never '
            "rendered)</summary><pre>{}</pre></details>",
            _text(html),
        )
        if html
        else ""
    )
    return format_html(
        '<div class="message"><table class="message-headers">{}</table>'
        '<div class="message-body">{}</div>{}</div>',
        header_rows,
        _text(arguments.get("body")),
        html_part,
    )


def _text(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)
