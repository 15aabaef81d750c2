"""Charge rules of rules/billing/ over a real port, on SQLite and PostgreSQL: a server whose rules charge an
activation fee and a SIM card when a subscriber joins an account raises both (once, with the catalogue's amounts) on
the assignment made over gRPC, and bills them on the account's next bill; a move to another account raises nothing."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest

from tests.integration.billing_support import BillingStack, account_pb, serve_billing_stack
from tests.integration.test_plans_rating import REPO

pytestmark = pytest.mark.integration
UTC = timezone.utc
JOINED = """kind: charge_rules
rules:
  - {id: CR_ALPHA_ACTIVATION, tenant: mvno-alpha, when: subscriber_joined, charge: OC_ACTIVATION}
  - {id: CR_ALPHA_SIM, tenant: mvno-alpha, when: subscriber_joined, charge: OC_SIM, description: a SIM card with each new line}
"""


@pytest.fixture(scope="module")
def stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    rules = tmp_path_factory.mktemp("checkout") / "rules"
    shutil.copytree(REPO / "rules", rules)
    (rules / "billing" / "alpha.yaml").write_text(JOINED, encoding="utf-8")
    yield from serve_billing_stack(db_url, tmp_path_factory.mktemp("home"), rules)


def test_a_subscriber_joining_raises_the_rules_charges_once_and_they_are_billed(stack: BillingStack) -> None:
    s = stack
    alpha = s.billing("mvno-alpha")
    alpha.create_account(account_pb("ALPHA-NEW", name="Nouvelle ligne"))
    alpha.create_account(account_pb("ALPHA-OTHER", name="Autre compte"))
    sub, _ = s.subscriber("mvno-alpha", "TP_ALPHA_SIMPLE", datetime(2026, 2, 10, 8, 0, tzinfo=UTC))
    alpha.assign("ALPHA-NEW", sub)
    s.at(datetime(2026, 2, 20, 8, 0, tzinfo=UTC))
    alpha.assign("ALPHA-OTHER", sub)                      # a move between accounts: no new activation
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    for account in ("ALPHA-NEW", "ALPHA-OTHER"):
        list(alpha.run("on_demand", account_ids=[account]))
    new = alpha.get_invoice(alpha.list_invoices(account_id="ALPHA-NEW").invoices[0].invoice_id)
    one_off = sorted((ln.item_id, ln.amount.amount_micros) for ln in new.lines if ln.charge_type == "one_off")
    assert one_off == [("OC_ACTIVATION", 15_000_000), ("OC_SIM", 10_000_000)]      # mvno-alpha's catalogue amounts
    other = alpha.get_invoice(alpha.list_invoices(account_id="ALPHA-OTHER").invoices[0].invoice_id)
    assert not [ln for ln in other.lines if ln.charge_type == "one_off"]
    # the operator's rules (rules/billing/charges.yaml) are not alpha's: the mno accounts of this server raise nothing
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-NEW"))
    msub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 3, 3, 8, 0, tzinfo=UTC))
    mno.assign("MNO-NEW", msub)
    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-NEW"]))
    bill = mno.get_invoice(mno.list_invoices(account_id="MNO-NEW").invoices[0].invoice_id)
    assert not [ln for ln in bill.lines if ln.charge_type == "one_off"]
