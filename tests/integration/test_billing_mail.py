"""Bills by e-mail on SQLite and PostgreSQL: the bill run queues an e-mail with each invoice of an e-mail account,
the sender delivers it to a real SMTP server (aiosmtpd on 127.0.0.1) with the e-invoice and the bill attached, once;
a mail server that is down loses nothing."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from aiosmtpd.controller import Controller

from billing.v1 import billing_pb2 as pb
from engine.billing.delivery import MAX_ATTEMPTS, Attachment, BillMail
from servers.billing_mail import FileMailer, SmtpMailer, mailer_from
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture

pytestmark = pytest.mark.integration
UTC = timezone.utc


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def test_an_issued_bill_is_mailed_once_with_its_e_invoice(billing_stack: BillingStack, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    s = billing_stack
    inbox, port = smtp
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-MAIL", delivery=pb.DELIVERY_EMAIL, email="jeanne@example.org", language="fr"))
    bc.create_account(account_pb("ACC-PORTAL", delivery=pb.DELIVERY_DOWNLOAD, email="paul@example.org"))
    for acc in ("ACC-MAIL", "ACC-PORTAL"):
        sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 10, 9, 0, tzinfo=UTC))
        bc.assign(acc, sub)
        s.rate("mno", msisdn, [(datetime(2026, 2, 12, 10, 0, tzinfo=UTC), 125, "4930123456")])
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert list(bc.run("manual", cycle_date=date(2026, 3, 1)))[-1].issued == 2
    desk = s.desk()

    # the mail server is down: the e-mail stays queued with the reason, nothing is lost
    down = desk.mail.deliver(SmtpMailer("127.0.0.1", _free_port(), timeout=5))
    assert (down.sent, down.failed, down.given_up) == (0, 1, 0)
    assert inbox.messages == []

    # the server's scheduler round sends what waits when a mailer is configured (billing_mail_url)
    desk.mailer = mailer_from(f"smtp://127.0.0.1:{port}")
    try:
        desk.scheduler_tick()
    finally:
        desk.mailer = None
    assert len(inbox.messages) == 1
    mail_from, to, raw = inbox.messages[0]
    assert mail_from == "billing@rulebill-telecom.example" and to == ["jeanne@example.org"]
    invoice = bc.list_invoices(account_id="ACC-MAIL").invoices[0]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    assert invoice.number in str(msg["Subject"]) and "Facture" in str(msg["Subject"])
    body = msg.get_body(("plain",))
    assert body is not None and "Jeanne Martin" in body.get_content()
    files = {part.get_filename(): part.get_content() for part in msg.iter_attachments()}  # type: ignore[attr-defined]
    xml, _, _ = bc.download(invoice.invoice_id, "xml")
    assert files[f"{invoice.number}.xml"] == xml          # the e-invoice as stored (validated when the module ends)
    human = files.get(f"{invoice.number}.pdf") or files[f"{invoice.number}.html"]
    assert human[:4] == b"%PDF" or b"Jeanne Martin" in human

    # once: a second round sends nothing; the download-only account got nothing
    again = desk.mail.deliver(SmtpMailer("127.0.0.1", port))
    assert (again.sent, again.failed) == (0, 0) and len(inbox.messages) == 1


def test_a_refused_mail_is_given_up_after_its_attempts(billing_stack: BillingStack, smtp: tuple[Inbox, int]) -> None:  # noqa: F811
    s = billing_stack
    inbox, port = smtp
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-GONE", delivery=pb.DELIVERY_EMAIL, email="gone@example.org"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 3, 3, 9, 0, tzinfo=UTC))
    bc.assign("ACC-GONE", sub)
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    list(bc.run("on_demand", account_ids=["ACC-GONE"]))
    desk = s.desk()
    closed = SmtpMailer("127.0.0.1", _free_port(), timeout=5)
    rounds = [desk.mail.deliver(closed) for _ in range(MAX_ATTEMPTS + 1)]
    assert [r.failed for r in rounds] == [1] * MAX_ATTEMPTS + [0]
    assert rounds[MAX_ATTEMPTS - 1].given_up == 1
    assert desk.mail.deliver(SmtpMailer("127.0.0.1", port)).sent == 0 and inbox.messages == []


def test_the_mail_setting_names_its_adapter(tmp_path: Path) -> None:
    assert mailer_from("") is None
    smtp = mailer_from("smtp+starttls://billing%40op:s3cret@mail.example:2525")
    assert isinstance(smtp, SmtpMailer) and (smtp.host, smtp.port, smtp.mode, smtp.user, smtp.password) == (
        "mail.example", 2525, "starttls", "billing@op", "s3cret")
    assert isinstance(mailer_from("smtps://mail.example"), SmtpMailer) and mailer_from("smtps://mail.example").port == 465  # type: ignore[union-attr]
    assert isinstance(mailer_from(f"file://{tmp_path}"), FileMailer)
    with pytest.raises(ValueError, match="billing_mail_url"):
        mailer_from("http://mail.example")
    FileMailer(tmp_path / "out").send(BillMail("billing@op.example", "jeanne@example.org", "Invoice RT-000009", "Hello",
                                               (Attachment("RT-000009.xml", "application/xml", b"<Invoice/>"),)))
    msg = email.message_from_bytes((tmp_path / "out" / "RT-000009.eml").read_bytes(), policy=email.policy.default)
    assert msg["To"] == "jeanne@example.org" and [p.get_content() for p in msg.iter_attachments()] == [b"<Invoice/>"]  # type: ignore[attr-defined]
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["RT-000009.eml"]
