"""Mailers for bill e-mails (engine.billing.delivery.Mailer): an SMTP server, or a folder of .eml files.

Chosen by the ``billing_mail_url`` setting:

- ``smtp://[user:password@]host[:port]`` (port 25 by default), ``smtp+starttls://...`` (587) or ``smtps://...`` (465);
  the credentials come from the setting (configuration), never from code;
- ``file:///path/to/folder``: each e-mail written as ``<invoice number>.eml`` (a printing house or a test picks
  them up);
- empty: no mailer; the outbox keeps the e-mails until one is configured.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import unquote, urlsplit

from engine.billing.delivery import BillMail, DeliveryFailed, Mailer

SMTP_TIMEOUT_S = 30.0
DEFAULT_SENDER = "billing@localhost"


def message_of(mail: BillMail, default_sender: str = DEFAULT_SENDER) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = mail.sender or default_sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg.set_content(mail.body)
    for a in mail.attachments:
        main, _, sub = a.content_type.partition("/")
        msg.add_attachment(a.content, maintype=main, subtype=sub, filename=a.filename)
    return msg


class SmtpMailer:
    def __init__(self, host: str, port: int, mode: str = "plain", user: str = "", password: str = "",
                 timeout: float = SMTP_TIMEOUT_S) -> None:
        self.host, self.port, self.mode, self.user, self.password, self.timeout = host, port, mode, user, password, timeout

    def send(self, mail: BillMail) -> None:
        msg = message_of(mail)
        try:
            if self.mode == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=ssl.create_default_context())
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with client:
                if self.mode == "starttls":
                    client.starttls(context=ssl.create_default_context())
                if self.user:
                    client.login(self.user, self.password)
                client.send_message(msg)
        except (OSError, smtplib.SMTPException) as exc:
            # the outbox keeps the reason and tries again next round
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None


class FileMailer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, mail: BillMail) -> None:
        name = next((a.filename.rsplit(".", 1)[0] for a in mail.attachments), "bill")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            part = self.folder / f".{name}.eml.part"
            part.write_bytes(message_of(mail).as_bytes())
            part.replace(self.folder / f"{name}.eml")   # whole files only: a reader never sees half an e-mail
        except OSError as exc:
            raise DeliveryFailed(f"{type(exc).__name__}: {exc}") from None


def mailer_from(url: str) -> Mailer | None:
    """The mailer the ``billing_mail_url`` setting names (None when empty); a URL it cannot use is a ValueError."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path:
            raise ValueError("billing_mail_url: file:///folder needs a folder")
        return FileMailer(Path(unquote(parts.path)))
    modes = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("ssl", 465)}
    if parts.scheme not in modes or not parts.hostname:
        raise ValueError(f"billing_mail_url: expected smtp://host[:port], smtp+starttls://, smtps:// or file:///folder, got {parts.scheme}://")
    mode, port = modes[parts.scheme]
    return SmtpMailer(parts.hostname, parts.port or port, mode, unquote(parts.username or ""), unquote(parts.password or ""))
