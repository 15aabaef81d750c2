"""Bills by e-mail: an outbox filled in the transaction that issues an invoice, emptied by a sender.

An account with ``delivery: email`` gets each invoice it is issued (by a bill run, when an admin issues a draft,
or by a re-bill) and each credit note as an e-mail with the UBL e-invoice and the human-readable bill (PDF when the server has a printer, HTML
otherwise) attached.  The invoice and its outbox entry are committed together, so an issued invoice is never
forgotten and an invoice that was rolled back is never sent.  ``BillMailer.deliver`` sends what is waiting
through a :class:`Mailer` (the SMTP and file adapters are in ``servers/billing_mail.py``) and marks each entry
sent; a failed send is counted and tried again on the next round, up to ``MAX_ATTEMPTS``.  A crash between the
send and the mark sends that one e-mail again on the next round (at least once, never zero times).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Mapping, Protocol, Sequence

from engine.billing.codec import bill_of
from engine.billing.html import render_html
from engine.billing.labels import word
from engine.billing.model import Account, Delivery, DocumentKind, Invoice
from engine.billing.ports import BillingUnitOfWorkFactory, OutboxEntry
from engine.billing.profile import BillingProfile
from engine.clock import Clock
from engine.currencies import minor_units
from engine.money import format_micros

log = logging.getLogger("rulebill.billing.mail")

Printer = Callable[[str], bytes]   # HTML -> PDF, as engine.billing.invoices takes it
MAX_ATTEMPTS = 5
MAX_PER_ROUND = 200          # e-mails one round sends at most (bounded work per scheduler round)


class DeliveryFailed(Exception):
    """The mail server did not take the message (the reason is kept on the outbox entry)."""


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str            # "application/xml", "application/pdf", "text/html"
    content: bytes


@dataclass(frozen=True)
class BillMail:
    sender: str
    to: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...]


class Mailer(Protocol):
    """Where bill e-mails go: an SMTP server, or a folder of .eml files."""

    def send(self, mail: BillMail) -> None: ...   # raises DeliveryFailed


@dataclass(frozen=True)
class DeliveryRound:
    sent: int = 0
    failed: int = 0
    given_up: int = 0


def outbox_entries(account: Account, invoices: Sequence[Invoice], now: datetime) -> list[OutboxEntry]:
    """What the transaction issuing ``invoices`` of ``account`` queues: one entry per invoice when the account takes
    its bills by e-mail."""
    if account.delivery is not Delivery.EMAIL or not account.email:
        return []
    return [OutboxEntry(i.tenant_id, i.invoice_id, account.account_id, account.email, now) for i in invoices if i.number]


def compose(stored_invoice: Invoice, xml: bytes, html: str, pdf: bytes | None, account: Account, profile: BillingProfile,
            to: str) -> BillMail:
    inv = stored_invoice
    lang = account.language
    what = word("invoice" if inv.kind is DocumentKind.INVOICE else "credit_note", lang)
    last = inv.period_end - timedelta(days=1)
    subject = f"{profile.seller.name}: {what} {inv.number} ({inv.period_start.isoformat()} - {last.isoformat()})"
    total = inv.totals.payable
    body = (f"{account.name},\n\n{what} {inv.number}\n{word('period', lang)}: {inv.period_start.isoformat()} - {last.isoformat()}\n"
            f"{word('due_date', lang)}: {inv.due_date.isoformat() if inv.due_date else '-'}\n"
            f"{word('gross_total', lang)}: {format_micros(total, minor_units(inv.currency))} {inv.currency}\n\n{profile.seller.name}\n")
    files = [Attachment(f"{inv.number}.xml", "application/xml", xml)]
    files.append(Attachment(f"{inv.number}.pdf", "application/pdf", pdf) if pdf is not None
                 else Attachment(f"{inv.number}.html", "text/html", html.encode("utf-8")))
    return BillMail(profile.seller.email, to, subject, body, tuple(files))


class BillMailer:
    """Empties the outbox: what the scheduler runs each round when a mailer is configured."""

    def __init__(self, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile],
                 printer: Printer | None = None) -> None:
        self._uow = uow
        self._clock = clock
        self.profiles = profiles
        self.printer = printer

    def deliver(self, mailer: Mailer, limit: int = MAX_PER_ROUND) -> DeliveryRound:
        with self._uow(read_only=True) as uow:
            waiting = uow.pending_mail(min(limit, MAX_PER_ROUND), MAX_ATTEMPTS)
        sent = failed = given_up = 0
        for entry in waiting:
            with self._uow(read_only=True) as uow:
                stored = uow.get_invoice(entry.tenant_id, entry.invoice_id)
                account = uow.get_account(entry.tenant_id, entry.account_id)
                # a credit note names the invoice it credits (on its bill as in its e-invoice)
                ref = uow.get_invoice(entry.tenant_id, stored.invoice.reference_id) \
                    if stored is not None and stored.invoice.kind is DocumentKind.CREDIT_NOTE and stored.invoice.reference_id else None
            profile = self.profiles.get(entry.tenant_id)
            error = ""
            if stored is None or stored.document is None or account is None or profile is None:
                error = "invoice, document, account or billing profile missing"
            else:
                html = render_html(bill_of(stored), stored.invoice.number, profile, stored.invoice.kind,
                                   ref.invoice.number if ref is not None else "", stored.invoice.reason)
                pdf = self.printer(html) if self.printer is not None else None
                try:
                    mailer.send(compose(stored.invoice, stored.document, html, pdf, account, profile, entry.address))
                except DeliveryFailed as exc:
                    error = str(exc)[:500] or "refused"
            with self._uow() as uow:
                if error:
                    uow.mail_failed(entry.tenant_id, entry.invoice_id, error)
                else:
                    uow.mail_sent(entry.tenant_id, entry.invoice_id, self._clock.now())
                uow.commit()
            if error:
                failed += 1
                given_up += entry.attempts + 1 >= MAX_ATTEMPTS
                log.warning("bill e-mail of invoice %s to account %s not sent (attempt %d): %s", entry.invoice_id, entry.account_id,
                            entry.attempts + 1, error)
            else:
                sent += 1
        return DeliveryRound(sent, failed, given_up)
