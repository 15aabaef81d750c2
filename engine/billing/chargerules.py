"""One-off charges raised by the billing profile's charge rules (``charge_rules:`` in plans/billing/<tenant>.yaml).

A rule names an event (``engine.billing.profile.CHARGE_EVENTS``) and a charge of the profile's catalogue::

    charge_rules:
      - {when: invoice_overdue, charge: OC_PENALTY}
      - {when: subscriber_joined, charge: OC_ACTIVATION}

The charge is raised in the transaction that records the event (the invoice turning overdue, the assignment),
with the catalogue's amount and tax category, and billed like a CSR's on the account's next bill.  Its id is
derived from the event, so the same event never raises it twice: a second scheduler marking the same invoices
overdue fails on that id and rolls back.
"""

from __future__ import annotations

import hashlib
from datetime import date

from engine.billing.model import OneOffCharge
from engine.billing.profile import ChargeType


def rule_charge(event: str, kind: ChargeType, tenant_id: str, account_id: str, currency: str, day: date, occurrence: str,
                subscriber_id: str = "", description: str = "") -> OneOffCharge:
    """The charge ``kind`` raised by ``event``; ``occurrence`` names the event (an invoice id, an assignment)."""
    digest = hashlib.sha256(f"{tenant_id}\x00{event}\x00{kind.code}\x00{occurrence}".encode()).hexdigest()[:32]
    return OneOffCharge("oc_" + digest, tenant_id, account_id, kind.code, description or kind.name, kind.amount_micros, currency,
                        kind.tax_category, day, subscriber_id, f"rule:{event}")
