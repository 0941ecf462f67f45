"""What a model may put in an e-mail, and the proof that what leaves is what the policy approved.

Header values are checked as the `email` package will read them (RFC 2047 encoded words decoded
by the same header factory the builder uses) and addresses as mail is routed (one strict
`local@domain`, IDNA A-label domain). Once built, the message is parsed back and compared with
the approved arguments before it may be sent.
"""

import json
import re
from dataclasses import dataclass
from email import policy
from email.errors import MessageError
from email.message import EmailMessage
from email.parser import BytesParser

import idna
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

ADDRESS_LIST_FIELDS = ("to", "cc", "bcc")
TEXT_FIELDS = ("body", "html")

CONTROL = "contains a control character or line separator"
DECODED_CONTROL = f"{CONTROL} once its RFC 2047 encoded words are decoded"
INVISIBLE = "contains an invisible or text-direction formatting character"
ENCODED_WORD = "contains an RFC 2047 encoded word (write the text itself)"
BODY_CONTROL = "contains a control character other than tab, CR and LF"

# Unicode Cc (C0, DEL, C1 incl. U+0085) + Zl + Zp, and lone surrogates, which no encoder
# accepts. Tab is legal folding whitespace, but it is refused too: a model needs none in a
# header, and folding may turn it into a space.
_HEADER_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Format characters (Cf) that hide text or reorder it for a human reviewer. ZWJ/ZWNJ stay:
# emoji sequences and several scripts need them.
_INVISIBLE = re.compile(
    "[\u061c\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb]"
)
# Bodies may break lines; NUL and the other controls crash the builder or corrupt the MIME.
_BODY_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
# RFC 5322 dot-atom, ASCII only: no quotes, comments, routes, groups or display names.
_LOCAL_PART = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*\Z")
_HEADERS = policy.default.header_factory
_MIME_HEADERS = {"mime-version", "content-type", "content-transfer-encoding"}
# What the `email` package raises on a value it cannot write (the policy refuses these first).
BUILD_ERRORS = (ValueError, MessageError)


class UnsafeMail(ValueError):
    """A value that must not be sent; the message says why, without repeating the value."""


class MessageMismatch(Exception):
    """The built message is not the approved one (or could not be built): it must not leave."""


# --- Addresses --------------------------------------------------------------------------------


def normalize_address(value: object) -> str:
    """The one strict `local@domain` the value stands for, its domain an IDNA A-label in lower
    case without a trailing dot: the form the policy compares and the connector sends.

    Non-ASCII local parts are refused: they need SMTPUTF8 end to end, and a model has no need.
    """
    if not isinstance(value, str):
        raise UnsafeMail("is not a string")
    if len(value) > 254:
        raise UnsafeMail("is longer than 254 characters")
    _check_header_characters(value)
    if any(character.isspace() for character in value):
        raise UnsafeMail("contains whitespace (give one bare address, no name)")
    if "=?" in value:
        raise UnsafeMail(ENCODED_WORD)
    if value.count("@") != 1:
        raise UnsafeMail("must be exactly one local@domain address")
    local, _, domain = value.partition("@")
    if len(local) > 64 or not _LOCAL_PART.match(local):
        raise UnsafeMail(
            "the part before @ must be plain ASCII letters, digits, dots and !#$%&'*+/=?^_`{|}~-"
        )
    address = f"{local}@{ascii_domain(domain)}"
    if len(address) > 254:  # A-labels are longer than the U-labels they encode
        raise UnsafeMail("is longer than 254 characters once its domain is encoded")
    try:
        validate_email(address)  # Django's checker, on the form that will be sent
    except ValidationError as exc:
        raise UnsafeMail("is not a valid e-mail address") from exc
    return address


def ascii_domain(domain: str) -> str:
    """`domain` as DNS resolves it: IDNA 2008 with UTS 46 mapping (so upper case and full-width
    forms fold), as A-labels; one trailing dot dropped. UnsafeMail when it is no host name."""
    name = domain[:-1] if domain.endswith(".") else domain
    try:
        encoded = idna.encode(name, uts46=True, transitional=False).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise UnsafeMail("the domain is not a valid host name") from exc
    if not encoded or encoded.endswith("."):
        raise UnsafeMail("the domain is not a valid host name")
    if "." not in encoded:
        raise UnsafeMail("the domain must be a dotted internet name, not a local host")
    return encoded


# --- Header text and bodies -------------------------------------------------------------------


def check_header_text(value: str) -> None:
    """UnsafeMail unless `value` reads the same once `email` has decoded it and holds no control
    character, line separator or hiding format character, raw or decoded."""
    _check_header_characters(value)
    try:
        decoded = str(_HEADERS("subject", value))
    except Exception as exc:  # whatever the parser trips on in hostile text, it is not sent
        raise UnsafeMail("cannot be read as a mail header") from exc
    if _HEADER_CONTROLS.search(decoded):
        raise UnsafeMail(DECODED_CONTROL)
    if _INVISIBLE.search(decoded):
        raise UnsafeMail(INVISIBLE)
    if decoded != value:
        # The reviewer approves the text they read: a word the library would decode is not it.
        raise UnsafeMail(ENCODED_WORD)


def check_body_text(value: str) -> None:
    """UnsafeMail when a body holds a control character other than tab, CR and LF."""
    if _BODY_CONTROLS.search(value):
        raise UnsafeMail(BODY_CONTROL)


def text_errors(arguments: dict) -> list[str]:
    """A "field: problem" line per refused subject or body (addresses are checked by the
    schema's `email` format, with `normalize_address`; wrong types are the schema's to report)."""
    checks = [("subject", check_header_text)] + [(name, check_body_text) for name in TEXT_FIELDS]
    errors = []
    for name, check in checks:
        value = arguments.get(name)
        if isinstance(value, str):
            try:
                check(value)
            except UnsafeMail as exc:
                errors.append(f"{name}: {exc}")
    return errors


def _check_header_characters(value: str) -> None:
    if _HEADER_CONTROLS.search(value):
        raise UnsafeMail(CONTROL)
    if _INVISIBLE.search(value):
        raise UnsafeMail(INVISIBLE)


# --- The mail that leaves ---------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMail:
    """Mail arguments as they will be sent: addresses normalised, every value checked."""

    to: tuple[str, ...]
    cc: tuple[str, ...]
    bcc: tuple[str, ...]
    reply_to: str | None
    subject: str
    body: str
    html: str | None

    @classmethod
    def of(cls, arguments: dict) -> "OutgoingMail":
        """UnsafeMail naming every refused field; the policy refuses the same values first."""
        errors = text_errors(arguments)
        lists: dict[str, tuple[str, ...]] = {}
        for name in ADDRESS_LIST_FIELDS:
            normalized = []
            for index, address in enumerate(arguments.get(name) or []):
                try:
                    normalized.append(normalize_address(address))
                except UnsafeMail as exc:
                    errors.append(f"{name}/{index}: {exc}")
            lists[name] = tuple(normalized)
        reply_to = arguments.get("reply_to")
        try:
            reply_to = normalize_address(reply_to) if reply_to is not None else None
        except UnsafeMail as exc:
            errors.append(f"reply_to: {exc}")
        subject, body, html = (arguments.get(name) for name in ("subject", "body", "html"))
        if not lists["to"] or not isinstance(subject, str) or not isinstance(body, str):
            errors.append("to, subject and body are required")
        if html is not None and not isinstance(html, str):
            errors.append("html: is not a string")
        if errors:
            raise UnsafeMail("; ".join(errors))
        return cls(**lists, reply_to=reply_to, subject=subject, body=body, html=html or None)

    @property
    def subject_as_read(self) -> str:
        """The subject a parser reads back: leading blanks are folding whitespace, not text."""
        return self.subject.lstrip(" ")


def verify_mime(raw: bytes, mail: OutgoingMail, *, message_id: str) -> None:
    """MessageMismatch unless `raw`, parsed as any receiving server would, has exactly the
    approved recipients and headers, no others (no Resent-*, Sender, second To...), the
    approved subject and bodies, and no parsing defects."""
    problems = _mime_problems(BytesParser(policy=policy.default).parsebytes(raw), mail, message_id)
    if problems:
        raise MessageMismatch(
            "the built message differs from the approved one: " + "; ".join(problems)
        )


def _mime_problems(parsed: EmailMessage, mail: OutgoingMail, message_id: str) -> list[str]:
    ours = {"to": mail.to, "cc": mail.cc, "bcc": mail.bcc}
    expected = {name for name, addresses in ours.items() if addresses}
    expected |= {"subject", "message-id"} | ({"reply-to"} if mail.reply_to else set())
    names = [name.lower() for name in parsed]
    problems = [
        f"unexpected header {name}" for name in sorted(set(names) - expected - _MIME_HEADERS)
    ]
    problems += [f"missing header {name}" for name in sorted(expected - set(names))]
    problems += [
        f"repeated header {name}" for name in sorted({n for n in names if names.count(n) > 1})
    ]
    if problems:
        return problems
    for name, addresses in {**ours, "reply-to": (mail.reply_to,) if mail.reply_to else ()}.items():
        if addresses and _addresses(parsed[name]) != list(addresses):
            problems.append(f"{name} recipients differ")
    if str(parsed["subject"]) != mail.subject_as_read:
        problems.append("subject differs")
    if str(parsed["message-id"]) != message_id:
        problems.append("message-id differs")
    if parsed.defects or any(parsed[name].defects for name in expected):
        problems.append("the message does not parse cleanly")
    return problems + _body_problems(parsed, mail)


def _addresses(header) -> list[str] | None:
    """The bare addresses of an address header; None when any has a name or sits in a group."""
    if any(group.display_name is not None for group in header.groups):
        return None
    if any(address.display_name for address in header.addresses):
        return None
    return [address.addr_spec for address in header.addresses]


def _body_problems(parsed: EmailMessage, mail: OutgoingMail) -> list[str]:
    if mail.html is None:
        parts, expected = [parsed], [("text/plain", mail.body)]
    elif parsed.get_content_type() != "multipart/alternative":
        return ["the message is not multipart/alternative"]
    else:
        parts = list(parsed.iter_parts())
        expected = [("text/plain", mail.body), ("text/html", mail.html)]
    if [part.get_content_type() for part in parts] != [kind for kind, _ in expected]:
        return ["the message parts differ"]
    for part, (kind, text) in zip(parts, expected, strict=True):
        # A part's own headers are MIME ones only: no Content-Disposition, no smuggled header.
        extra = part is not parsed and {name.lower() for name in part} - _MIME_HEADERS
        if extra or part.defects or _text(part.get_content()) != _text(text):
            return [f"the {kind} part differs"]
    return []


def _text(text: str) -> str:
    # On the wire every line ends in CRLF and the last line gets one: compare text, not endings.
    return re.sub(r"\r\n?", "\n", text).rstrip("\n")


def verify_graph_payload(body: bytes, mail: OutgoingMail, *, message_id: str) -> None:
    """MessageMismatch unless the JSON bytes for Graph's sendMail carry exactly the approved
    recipients (bare addresses, no names), subject and body, and nothing else."""

    def recipients(addresses) -> list[dict]:
        return [{"emailAddress": {"address": address}} for address in addresses]

    expected = {
        "subject": mail.subject,
        "body": {"contentType": "HTML" if mail.html else "Text", "content": mail.html or mail.body},
        "toRecipients": recipients(mail.to),
        "ccRecipients": recipients(mail.cc),
        "bccRecipients": recipients(mail.bcc),
        "internetMessageId": message_id,
    }
    if mail.reply_to:
        expected["replyTo"] = recipients([mail.reply_to])
    try:
        sent = json.loads(body)
    except ValueError as exc:
        raise MessageMismatch("the Graph request is not JSON") from exc
    if sent != {"message": expected, "saveToSentItems": True}:
        raise MessageMismatch("the Graph message differs from the approved one")
