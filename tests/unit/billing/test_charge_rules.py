"""Charge rules (rules/billing/): one-off charges raised by events (a subscriber joining an account, an invoice turning
overdue), declared in YAML, checked with file:line:col against the tenants' billing profiles, raised once per event."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path

from engine.billing.accounts import AccountDesk
from engine.billing.invoices import InvoiceDesk
from engine.billing.memory import MemoryBillingStore
from engine.billing.model import DocumentKind, Invoice, InvoiceState, Totals
from engine.billing.ports import StoredBill, SubscriberFacts
from engine.billing.chargerules import load_charge_rules
from engine.billing.profile import ChargeRule, load_profiles
from engine.clock import FixedClock
from engine.identity import SYSTEM
from tests.unit.billing.factories import account

UTC = timezone.utc
PROFILE = """kind: billing_profile
tenant: mno
seller:
  name: Rulebill Telecom SA
  address: {lines: ["12 rue des Ondes"], city: Paris, postal_code: "75002", country: FR}
  vat_id: FR40123456789
series: {invoice: "RT-", credit_note: "RT-CN-"}
payment: {terms_days: 14, means: credit_transfer, iban: FR7630006000011234567890189}
one_off_charges:
  OC_ACTIVATION: {name: Activation fee, amount: "10.00"}
  OC_PENALTY: {name: Late payment penalty, amount: "7.50"}
"""
RULES = """kind: charge_rules
rules:
  - {id: CR_JOIN, tenant: mno, when: subscriber_joined, charge: OC_ACTIVATION}
  - {id: CR_LATE, tenant: mno, when: invoice_overdue, charge: OC_PENALTY}
"""


def _profiles(tmp_path: Path, rules: str = RULES) -> tuple[dict, list]:
    (tmp_path / "billing").mkdir(exist_ok=True)
    (tmp_path / "billing" / "mno.yaml").write_text(PROFILE, encoding="utf-8")
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "rules" / "charges.yaml").write_text(rules, encoding="utf-8")
    profiles, problems = load_profiles(tmp_path / "billing")
    assert not problems
    return load_charge_rules(tmp_path / "rules", profiles)


def test_rules_are_read_from_rules_billing_onto_the_tenants_profiles(tmp_path: Path) -> None:
    profiles, problems = _profiles(tmp_path)
    assert not problems
    assert profiles["mno"].charge_rules == (ChargeRule("subscriber_joined", "OC_ACTIVATION", "CR_JOIN"),
                                            ChargeRule("invoice_overdue", "OC_PENALTY", "CR_LATE"))
    assert [c.code for c in profiles["mno"].rules_for("invoice_overdue")] == ["OC_PENALTY"]


def test_every_bad_rule_is_reported_where_it_is(tmp_path: Path) -> None:
    bad = RULES + """  - {id: CR_PAID, tenant: mno, when: invoice_paid, charge: OC_PENALTY}
  - {id: CR_GHOST, tenant: mno, when: invoice_overdue, charge: OC_GHOST}
  - {id: CR_JOIN2, tenant: mno, when: subscriber_joined, charge: OC_ACTIVATION}
  - {id: CR_LATE, tenant: mno, when: subscriber_joined, charge: OC_PENALTY}
  - {id: CR_ZETA, tenant: mvno-zeta, when: invoice_overdue, charge: OC_PENALTY}
  - {id: late, tenant: mno, when: invoice_overdue, charge: OC_PENALTY}
"""
    profiles, problems = _profiles(tmp_path, bad)
    assert [(p.line, p.code) for p in problems] == [(5, "value.enum"), (6, "ref.dangling"), (7, "id.duplicate"), (8, "id.duplicate"),
                                                    (9, "rule.unknown-tenant"), (10, "value.id")]
    assert all(p.file.endswith("charges.yaml") and p.col > 1 for p in problems)
    # the good rules still load: the server refuses to start on any problem, but nothing is half-parsed
    assert len(profiles["mno"].charge_rules) == 2


def test_a_profile_that_still_declares_charge_rules_is_told_where_they_went(tmp_path: Path) -> None:
    (tmp_path / "mno.yaml").write_text(PROFILE + "charge_rules:\n  - {when: invoice_overdue, charge: OC_PENALTY}\n", encoding="utf-8")
    _profiles_, problems = load_profiles(tmp_path)
    assert [(p.line, p.code) for p in problems] == [(13, "profile.moved")] and "rules/billing/" in problems[0].message


def _world(tmp_path: Path) -> tuple[MemoryBillingStore, FixedClock, dict]:
    profiles, _ = _profiles(tmp_path)
    store = MemoryBillingStore()
    acc = account("ACC-1")
    store.data.accounts[("mno", "ACC-1")] = acc
    store.data.accounts[("mno", "ACC-2")] = account("ACC-2")
    store.data.subscribers["sub-1"] = SubscriberFacts("sub-1", "mno", "33612000001", datetime(2026, 3, 1, tzinfo=UTC), None,
                                                      ((datetime(2026, 3, 1, tzinfo=UTC), "TP_COMMIT"),))
    return store, FixedClock(datetime(2026, 3, 10, 9, 0, tzinfo=UTC)), profiles


def test_a_subscriber_joining_an_account_raises_the_activation_fee_once(tmp_path: Path) -> None:
    store, clock, profiles = _world(tmp_path)
    desk = AccountDesk(store, clock, profiles)
    admin = replace(SYSTEM, tenant_id="mno")
    desk.assign(admin, "mno", "ACC-1", "sub-1", None)
    charges = list(store.data.charges.values())
    assert [(c.code, c.account_id, c.subscriber_id, c.amount_micros, c.charge_date, c.raised_by) for c in charges] == [
        ("OC_ACTIVATION", "ACC-1", "sub-1", 10_000_000, date(2026, 3, 10), "rule:subscriber_joined")]
    clock._at = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)  # noqa: SLF001
    desk.assign(admin, "mno", "ACC-2", "sub-1", None)    # a move between accounts is no new activation
    assert len(store.data.charges) == 1


def test_an_invoice_turning_overdue_raises_one_penalty(tmp_path: Path) -> None:
    store, clock, profiles = _world(tmp_path)
    totals = Totals(100_000_000, 0, 0, 100_000_000, 20_000_000, 120_000_000, 0, 120_000_000)
    inv = Invoice("inv_1", "mno", "ACC-1", DocumentKind.INVOICE, InvoiceState.ISSUED, "RT-000001", "RT-", date(2026, 2, 1),
                  date(2026, 3, 1), "EUR", date(2026, 3, 1), date(2026, 3, 15), totals)
    store.data.invoices["inv_1"] = StoredBill(inv, b"", b"")
    desk = InvoiceDesk(store, clock, profiles, lambda t, at: None)
    assert desk.mark_overdue(date(2026, 3, 15)) == 0 and not store.data.charges     # due that day: not late yet
    assert desk.mark_overdue(date(2026, 3, 16)) == 1
    assert desk.mark_overdue(date(2026, 3, 17)) == 0                                # overdue already: no second penalty
    [penalty] = store.data.charges.values()
    assert (penalty.code, penalty.account_id, penalty.amount_micros, penalty.description, penalty.raised_by) == (
        "OC_PENALTY", "ACC-1", 7_500_000, "Late payment penalty (RT-000001)", "rule:invoice_overdue")


CONDITIONS = """kind: charge_rules
rules:
  - {id: CR_LATE_BIG, tenant: mno, when: invoice_overdue, charge: OC_PENALTY, min_due: "50.00"}
  - {id: CR_ADDON, tenant: mno, when: bundle_bought, charge: OC_ACTIVATION, bundles: [BN_ADDON_DATA_5GB], plans: [TP_SMART_S]}
  - {id: CR_DOWN, tenant: mno, when: plan_changed, charge: OC_ACTIVATION, plans: [TP_SMART_S]}
"""


def test_conditions_choose_the_events_a_rule_raises_on(tmp_path: Path) -> None:
    profiles, problems = _profiles(tmp_path, CONDITIONS)
    assert not problems
    p = profiles["mno"]
    assert p.charge_rules[0] == ChargeRule("invoice_overdue", "OC_PENALTY", "CR_LATE_BIG", min_due_micros=50_000_000)
    assert [c.code for c in p.rules_for("invoice_overdue", due_micros=49_990_000)] == []
    assert [c.code for c in p.rules_for("invoice_overdue", due_micros=50_000_000)] == ["OC_PENALTY"]
    assert [c.code for c in p.rules_for("bundle_bought", plan="TP_SMART_S", bundle="BN_ADDON_DATA_5GB")] == ["OC_ACTIVATION"]
    assert p.rules_for("bundle_bought", plan="TP_SMART_M", bundle="BN_ADDON_DATA_5GB") == []
    assert p.rules_for("bundle_bought", plan="TP_SMART_S", bundle="BN_ADDON_WORLD_DATA_1GB") == []
    assert p.rules_for("plan_changed", plan="TP_SMART_M") == [] and len(p.rules_for("plan_changed", plan="TP_SMART_S")) == 1


def test_every_bad_condition_is_reported_where_it_is(tmp_path: Path) -> None:
    bad = """kind: charge_rules
rules:
  - {id: CR_A, tenant: mno, when: invoice_overdue, charge: OC_PENALTY, plans: [TP_SMART_S]}
  - {id: CR_B, tenant: mno, when: plan_changed, charge: OC_PENALTY, min_due: "5.00"}
  - {id: CR_C, tenant: mno, when: subscriber_joined, charge: OC_PENALTY, bundles: [BN_ADDON_DATA_5GB]}
  - {id: CR_D, tenant: mno, when: bundle_bought, charge: OC_PENALTY, bundles: [addon]}
  - {id: CR_E, tenant: mno, when: bundle_bought, charge: OC_ACTIVATION, plans: []}
  - {id: CR_F, tenant: mno, when: invoice_overdue, charge: OC_ACTIVATION, min_due: "-1.00"}
  - {id: CR_G, tenant: mno, when: subscriber_deactivated, charge: OC_ACTIVATION, plans: [TP_A, TP_A]}
  - {id: CR_H, tenant: mno, when: subscriber_deactivated, charge: OC_PENALTY, min_due: lots}
"""
    profiles, problems = _profiles(tmp_path, bad)
    assert [(p.line, p.code) for p in problems] == [(3, "rule.condition"), (4, "rule.condition"), (5, "rule.condition"),
                                                    (6, "rule.condition"), (7, "rule.condition"), (8, "value.amount"),
                                                    (9, "rule.condition"), (10, "value.amount")]
    assert all(p.col > 1 for p in problems) and profiles["mno"].charge_rules == ()
