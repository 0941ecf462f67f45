"""`gmail.send` through the Gmail API: an RFC 5322 message built with `email`, base64url-encoded."""

import base64
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from django.conf import settings

from actions import http
from actions.connectors.base import ConnectorResult
from actions.connectors.mail import authorized_send, message_id, outgoing_mail, refuse_mismatch
from actions.mail_safety import BUILD_ERRORS, MessageMismatch, OutgoingMail, verify_mime


class GmailConnector:
    idempotent = False  # a second send is a second e-mail

    def execute(
        self, arguments: dict, *, workspace_id: str, idempotency_key: str
    ) -> ConnectorResult:
        """Send one message; the result holds Gmail's message id."""
        mail = outgoing_mail(arguments)
        mid = message_id(idempotency_key, workspace_id)
        try:
            data = message_bytes(mail, message_id=mid)
        except MessageMismatch as exc:
            raise refuse_mismatch(exc) from None
        raw = base64.urlsafe_b64encode(data).decode()
        url = f"{settings.GMAIL_API_BASE_URL}/gmail/v1/users/me/messages/send"
        response = authorized_send(
            workspace_id=workspace_id,
            provider="google",
            request=lambda token: http.client().post(
                url, json={"raw": raw}, headers={"Authorization": f"Bearer {token}"}
            ),
        )
        try:
            body = response.json()
        except ValueError:
            body = {}  # sent all the same (2xx): record it without Gmail's id rather than fail
        return ConnectorResult(
            data={
                "provider": "gmail",
                "provider_message_id": body.get("id"),
                "thread_id": body.get("threadId"),
                "message_id": mid,
            }
        )


def message_bytes(mail: OutgoingMail, *, message_id: str) -> bytes:
    """The bytes Gmail will receive, parsed back and checked against `mail` (MessageMismatch)."""
    try:
        data = build_message(mail, message_id=message_id).as_bytes(policy=SMTP)
    except BUILD_ERRORS as exc:
        raise MessageMismatch(f"the message cannot be built: {exc}") from None
    verify_mime(data, mail, message_id=message_id)
    return data


def build_message(mail: OutgoingMail, *, message_id: str) -> EmailMessage:
    """The RFC 5322 message; the `email` package folds and encodes headers."""
    message = EmailMessage()
    # Address objects, not a joined string: nothing of ours is parsed as an address list.
    message["To"] = [Address(addr_spec=address) for address in mail.to]
    if mail.cc:
        message["Cc"] = [Address(addr_spec=address) for address in mail.cc]
    if mail.bcc:
        # Gmail delivers to Bcc, then drops the header
        message["Bcc"] = [Address(addr_spec=address) for address in mail.bcc]
    if mail.reply_to:
        message["Reply-To"] = Address(addr_spec=mail.reply_to)
    message["Subject"] = mail.subject
    message["Message-ID"] = message_id
    message.set_content(mail.body)
    if mail.html:
        message.add_alternative(mail.html, subtype="html")
    return message
