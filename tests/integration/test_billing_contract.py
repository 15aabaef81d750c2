"""The billing store port (engine/billing/ports.py: BillingUnitOfWork) through the in-memory store
(engine/billing/memory.py: QA replay of bills and unit tests) and the SQL store (store/billing.py) on SQLite and
PostgreSQL.  Both stores start from the same facts (accounts' subscribers and the rated usage of the ledger, each
seeded the way that store holds them); the same steps must then give the same answers and errors."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from typing import Any, Callable

import pytest

from engine.billing.addons import AddOnPurchase
from engine.billing.codec import pack
from engine.billing.memory import BillingData, MemoryBillingStore
from engine.billing.model import (Account, AccountStatus, Address, Assignment, DocumentKind, Invoice, InvoiceState, OneOffCharge,
                                  RatedUsage, Totals)
from engine.billing.ports import (BillRun, InvoiceFilter, LedgerEntry, PeriodClaim, PeriodStatus, RunMode, RunState, StoredBill,
                                  SubscriberFacts)
from engine.model import AuditEntry, PaymentType, Subscriber, SubscriberStatus, Tenant, TenantKind, TenantStatus
from engine.rating.usage import LEDGER_FIELDS
from store.billing import SqlBillingUnitOfWorkFactory
from store.db import make_engine
from store.plans import SqlPlanUnitOfWorkFactory
from store.uow import SqlUnitOfWorkFactory
from tests.integration.contract import Steps, Units, assert_same

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)
A, B, C = "4917000000001", "4917000000002", "4917000000003"
USAGE = [RatedUsage("c1", A, T0 + timedelta(days=1), "voice", "DST_EU", 1_200, "EUR", "TP_A", 1, 60),
         RatedUsage("c2", A, T0 + timedelta(days=2), "sms", "DST_EU", 90, "EUR", "TP_A", 1, 1),
         RatedUsage("c3", B, T0 + timedelta(days=3), "data", "", 5_000, "EUR", "TP_B", 1, 1_000_000),
         RatedUsage("c4", A, T0 + timedelta(days=40), "voice", "DST_EU", 300, "EUR", "TP_A", 1, 60)]
SUBS = [SubscriberFacts("sub_a", "mno", A, T0 - timedelta(days=30), None, ((T0 - timedelta(days=60), "TP_A"),)),
        SubscriberFacts("sub_b", "mno", B, T0 - timedelta(days=10), T0 + timedelta(days=20), ((T0 - timedelta(days=20), "TP_B"),)),
        SubscriberFacts("sub_c", "mvno-alpha", C, None, None, ((T0 - timedelta(days=5), "TP_C"),), postpaid=False)]


PURCHASE = AddOnPurchase("ao_1", "mno", "sub_a", A, "ACC-1", "BN_EXTRA", "r-1", "+000001", "2026-10", "TP_A", T0, T0, T0 + timedelta(days=7),
                         3_600, "second", 3_000_000, "EUR", "standard", "oc_1", "alice")


def account(aid: str, tenant: str = "mno", **kw: Any) -> Account:
    return Account(tenant, aid, f"Account {aid}", Address(("8 quai du Rhône",), "Lyon", "69007", "FR"), "EUR", 15, "Europe/Paris",
                   create_time=T0, update_time=T0, **kw)


def invoice(iid: str, state: InvoiceState, due: date | None, **kw: Any) -> StoredBill:
    totals = Totals(10_000, 0, 0, 10_000, 2_000, 12_000, 0, 12_000)
    inv = Invoice(iid, "mno", kw.pop("account", "ACC-1"), kw.pop("kind", DocumentKind.INVOICE), state, kw.pop("number", ""), "INV",
                  date(2026, 11, 15), date(2026, 12, 14), "EUR", date(2026, 12, 15), due, totals, create_time=T0, **kw)
    return StoredBill(inv, pack({"lines": [], "invoice": iid}), None)


def scenario(uow: Callable[..., Any]) -> list[tuple[str, Any]]:
    step = Steps()
    units = Units(uow)
    write, read = units.write, units.read

    # accounts
    step("add ACC-1", write(lambda u: u.add_account(account("ACC-1"))))
    step("add ACC-2", write(lambda u: u.add_account(account("ACC-2", discount_plans=("DP_LOYAL",), email="x@example.org"))))
    step("add alpha's", write(lambda u: u.add_account(account("ACC-9", "mvno-alpha"))))
    step("close ACC-2", write(lambda u: u.update_account(account("ACC-2", status=AccountStatus.CLOSED, close_time=T0 + timedelta(days=3)))))
    step("get", read(lambda u: (u.get_account("mno", "ACC-2"), u.get_account("mvno-alpha", "ACC-1"))))
    step("list", read(lambda u: [(a.tenant_id, a.account_id) for a in u.list_accounts(None, None, 10)]))
    step("list after", read(lambda u: [a.account_id for a in u.list_accounts({"mno", "mvno-alpha"}, ("mno", "ACC-1"), 10)]))
    step("active", read(lambda u: ([a.account_id for a in u.active_accounts("mno", None)],
                                   [a.account_id for a in u.active_accounts("mno", ["ACC-2", "ACC-9"])])))

    # subscribers and assignments
    step("facts", read(lambda u: u.subscriber_facts("mno", ["sub_a", "sub_b", "sub_c"])))
    step("one subscriber", read(lambda u: (u.subscriber("sub_c"), u.subscriber("sub_zz"))))
    first = Assignment("mno", "ACC-1", "sub_a", A, T0 - timedelta(days=30))
    step("assign a", write(lambda u: u.add_assignment(first)))
    step("assign b", write(lambda u: u.add_assignment(Assignment("mno", "ACC-1", "sub_b", B, T0 - timedelta(days=10)))))
    step("open", read(lambda u: (u.open_assignment("mno", "sub_a"), u.open_assignment("mvno-alpha", "sub_a"))))
    step("move a", write(lambda u: (u.end_assignment(first, T0 + timedelta(days=5)),
                                    u.add_assignment(Assignment("mno", "ACC-2", "sub_a", A, T0 + timedelta(days=5))))))
    step("assignments", read(lambda u: u.assignments("mno", ["ACC-1", "ACC-2"])))

    # usage: unbilled, frozen on a bill, moved to a re-bill
    period = (T0, T0 + timedelta(days=30))
    step("unbilled", read(lambda u: sorted(u.unbilled_usage("mno", [A, B], *period), key=lambda r: r.cdr_id)))
    step("unbilled of alpha", read(lambda u: u.unbilled_usage("mvno-alpha", [A, B], *period)))
    step("by ids", read(lambda u: sorted(u.usage_by_ids("mno", ["c3", "c1", "c9"]), key=lambda r: r.cdr_id)))
    step("freeze", write(lambda u: u.freeze_usage("mno", [("c1", "inv_1", 1_200), ("c2", "inv_1", 90)])))
    step("freeze again", write(lambda u: u.freeze_usage("mno", [("c3", "inv_1", 5_000), ("c1", "inv_2", 1_200)])))
    step("unbilled now", read(lambda u: [r.cdr_id for r in u.unbilled_usage("mno", [A, B], *period)]))
    step("move", write(lambda u: u.move_frozen_usage("inv_1", "inv_2", [("c1", 1_100)])))
    step("frozen", read(lambda u: (sorted(u.frozen_usage("inv_1")), sorted(u.frozen_usage("inv_2")))))

    # one-off charges
    for cid, day, acc in (("oc_1", 3, "ACC-1"), ("oc_2", 20, "ACC-1"), ("oc_3", 4, "ACC-2")):
        step(f"charge {cid}", write(lambda u, cid=cid, day=day, acc=acc: u.add_charge(OneOffCharge(
            cid, "mno", acc, "OC_ACTIVATION", "Activation", 5_000_000, "EUR", "S", date(2026, 11, day), "sub_a", "csr"))))
    step("pending", read(lambda u: sorted(c.charge_id for c in u.pending_charges("mno", ["ACC-1", "ACC-2"], date(2026, 11, 15)))))
    step("mark", write(lambda u: u.mark_charges("mno", ["oc_1"], "inv_1")))
    step("charges of", read(lambda u: (u.charges_of("inv_1"), sorted(c.charge_id for c in u.pending_charges("mno", ["ACC-1"], date(2026, 12, 1))))))

    # the account ledger
    step("ledger", write(lambda u: u.add_ledger([LedgerEntry("mno", "ACC-1", "payment:p1", 20_000_000, "EUR", T0),
                                                 LedgerEntry("mno", "ACC-1", "applied:inv_0:payment:p1", -5_000_000, "EUR", T0, "inv_0"),
                                                 LedgerEntry("mno", "ACC-2", "payment:p2", 1_000, "USD", T0)])))
    step("ledger twice", write(lambda u: u.add_ledger([LedgerEntry("mno", "ACC-1", "payment:p1", 20_000_000, "EUR", T0)])))
    step("credits", read(lambda u: (u.credits("mno", ["ACC-1", "ACC-2"], "EUR"), u.credits("mno", ["ACC-2"], "USD"))))

    # periods and numbers
    claim = PeriodClaim("mno", "ACC-1", date(2026, 11, 15), date(2026, 12, 14), PeriodStatus.DRAFT, "inv_1", "run_1")
    step("claim", write(lambda u: u.claim([claim, PeriodClaim("mno", "ACC-1", date(2026, 10, 15), date(2026, 11, 14),
                                                              PeriodStatus.INVOICED, "inv_0", "run_0")])))
    step("claim again", write(lambda u: u.claim([claim])))
    step("issue it", write(lambda u: (u.update_claim_status("mno", "ACC-1", date(2026, 11, 15), PeriodStatus.INVOICED),
                                      u.repoint_claim("mno", "ACC-1", date(2026, 11, 15), "inv_2"))))
    step("claims", read(lambda u: (u.claims("mno", ["ACC-1", "ACC-2"], [date(2026, 11, 15), date(2026, 9, 15)]),
                                   u.last_claims("mno", ["ACC-1", "ACC-2"]))))
    step("numbers", write(lambda u: (u.take_numbers("mno", "INV", 3), u.take_numbers("mno", "INV", 2), u.take_numbers("mno", "CN", 1),
                                     u.take_numbers("mvno-alpha", "INV", 1))))

    # invoices
    step("add invoices", write(lambda u: u.add_invoices([invoice("inv_1", InvoiceState.DRAFT, None, run_id="run_1"),
                                                         invoice("inv_2", InvoiceState.ISSUED, date(2026, 12, 1), number="INV-1"),
                                                         invoice("inv_3", InvoiceState.PAID, date(2026, 12, 1), number="INV-2")])))
    step("get invoice", read(lambda u: [(b.invoice, b.bill) if b else None for b in (
        u.get_invoice("mno", "inv_2"), u.get_invoice("mno", "INV-2"), u.get_invoice("mvno-alpha", "inv_2"), u.find_invoice("inv_1"))]))
    step("list invoices", read(lambda u: [i.invoice_id for i in u.list_invoices(InvoiceFilter(tenant_ids={"mno"}), None, 10)]))
    step("list drafts of a run", read(lambda u: [i.invoice_id for i in u.list_invoices(InvoiceFilter(state=InvoiceState.DRAFT,
                                                                                                       run_id="run_1"), None, 10)]))
    # what RebillRerated reads: the live invoices whose period shares a day with the re-rated days, chosen by the store
    live = frozenset({InvoiceState.ISSUED, InvoiceState.PAID})
    spans = ((date(2026, 12, 14), date(2026, 12, 20)), (date(2026, 12, 15), date(2026, 12, 20)), (date(2026, 11, 1), date(2026, 11, 15)),
             (date(2026, 11, 1), date(2026, 11, 14)))
    step("live invoices touching days", read(lambda u: [[i.invoice_id for i in u.list_invoices(
        InvoiceFilter(tenant_ids={"mno"}, states=live, touching=span), None, 10)] for span in spans]))
    step("overdue", write(lambda u: u.mark_overdue(date(2026, 12, 5))))
    step("states", read(lambda u: [(i.invoice_id, i.state) for i in u.list_invoices(InvoiceFilter(), None, 10)]))
    step("delete the draft", write(lambda u: u.delete_draft(u.find_invoice("inv_1").invoice)))
    step("after the delete", read(lambda u: (u.find_invoice("inv_1"), sorted(u.frozen_usage("inv_1")),
                                             sorted(c.charge_id for c in u.pending_charges("mno", ["ACC-1"], date(2026, 12, 1))))))

    # runs
    run = BillRun("run_1", "mno", RunMode.MANUAL, date(2026, 11, 15), ("ACC-1",), False, True, RunState.RUNNING, "alice", T0)
    step("add run", write(lambda u: u.add_run(run)))
    step("finish run", write(lambda u: u.update_run(BillRun("run_1", "mno", RunMode.MANUAL, date(2026, 11, 15), ("ACC-1",), False, True,
                                                            RunState.DONE, "alice", T0, T0 + timedelta(minutes=1), 1, 0, 1, 0, 0, 1,
                                                            (("ACC-3", "no address"),)))))
    step("get run", read(lambda u: (u.get_run("run_1"), u.get_run("run_9"))))

    # add-on purchases (engine.billing.addons.AddOnStore): a counter cycle is taken once per number
    step("buy an add-on", write(lambda u: u.add_ons.add(PURCHASE)))
    step("the same id again", write(lambda u: u.add_ons.add(PURCHASE)))
    step("another id on the same counter", write(lambda u: u.add_ons.add(replace(PURCHASE, purchase_id="ao_2", request_id="r-2"))))
    step("the next counter", write(lambda u: u.add_ons.add(replace(PURCHASE, purchase_id="ao_3", request_id="r-3", cycle="+000002"))))
    step("purchases", read(lambda u: (u.add_ons.get("ao_1"), u.add_ons.get("ao_9"), u.add_ons.count_for("mno", A),
                                      u.add_ons.count_for("mno", B))))
    step("a subscriber's purchases, paged", read(lambda u: (
        [p.purchase_id for p in u.add_ons.list_for("mno", "sub_a", None, 1)],
        [p.purchase_id for p in u.add_ons.list_for("mno", "sub_a", [T0.isoformat(), "ao_1"], 5)],
        u.add_ons.list_for("mvno-alpha", "sub_a", None, 5))))
    step("units left before rating", read(lambda u: u.add_ons.remaining([PURCHASE])))
    cancelled = replace(PURCHASE, cancel_time=T0 + timedelta(days=2), cancel_request_id="c-1", refund_micros=1_710_000,
                        refund_charge_id="rf_1", cancelled_by="alice")
    step("cancel", write(lambda u: u.add_ons.cancel(cancelled)))
    step("cancel again", write(lambda u: u.add_ons.cancel(replace(cancelled, cancel_request_id="c-2"))))
    step("the cancelled purchase", read(lambda u: (u.add_ons.get("ao_1"), u.add_ons.get("ao_1").ends)))
    return step.out


def _seed_sql(db_url: str) -> Any:
    db = make_engine(db_url)
    base = SqlUnitOfWorkFactory(db)
    with base() as unit:
        for tid, parent in (("mno", ""), ("mvno-alpha", "mno")):
            unit.tenants.add(Tenant(tid, tid, TenantKind.MVNO if parent else TenantKind.MNO, TenantStatus.ACTIVE, parent, "EUR", T0, T0))
        for f in SUBS:
            created, plan = f.plans[0]
            unit.subscribers.add(Subscriber(f.subscriber_id, f.tenant_id, f.msisdn, "26201" + f.msisdn[-10:], "ACC",
                                            PaymentType.POSTPAID if f.postpaid else PaymentType.PREPAID,
                                            SubscriberStatus.DEACTIVATED if f.deactivate_time else SubscriberStatus.ACTIVE,
                                            plan, created, created, f.activate_time, f.deactivate_time))
        unit.commit()
    rows = [dict(tenant_id="mno", cdr_id=u.cdr_id, msisdn=u.msisdn, cycle="2026-11", currency=u.currency, charge_micros=u.charge_micros,
                 bundles_json="[]", start_time=u.start_time, service=u.service, destination_group=u.destination, zone="",
                 units=u.units, plan_set_version=u.plan_set_version, tariff_plan=u.tariff_plan, plan_version=1, status="rated", reason="")
            for u in USAGE]
    # an unrated row is in the ledger but is no usage to bill (the memory store never holds one)
    rows.append({**rows[0], "cdr_id": "c5", "charge_micros": 0, "status": "unrated", "reason": "no rate"})
    with SqlPlanUnitOfWorkFactory(base)() as unit:
        assert unit.usage.write_chunk([tuple(r[f] for f in LEDGER_FIELDS) for r in rows], set(), [], [])
        unit.commit()
    return db


def test_memory_and_sql_billing_stores_agree(db_url: str) -> None:
    data = BillingData(subscribers={f.subscriber_id: f for f in SUBS}, ledger_usage={("mno", u.cdr_id): u for u in USAGE})
    expected = scenario(MemoryBillingStore(data))
    db = _seed_sql(db_url)
    try:
        got = scenario(SqlBillingUnitOfWorkFactory(SqlUnitOfWorkFactory(db)))
    finally:
        db.dispose()
    assert_same(expected, got, db_url.split(":")[0])
    answers = dict(expected)   # the scenario reaches the answers that matter
    assert [r.cdr_id for r in answers["unbilled"]] == ["c1", "c2", "c3"] and answers["unbilled now"] == ["c3"]
    assert answers["freeze again"] == ("AlreadyExists", "", "billed CDR")   # the SQL store raised a bare IntegrityError before
    assert answers["ledger twice"] == ("AlreadyExists", "", "ledger entry")
    assert answers["claim again"] == ("AlreadyExists", "", "billing period")
    assert answers["live invoices touching days"] == [["inv_2", "inv_3"], [], ["inv_2", "inv_3"], []]   # periods 11-15..12-14
    assert answers["frozen"] == ([("c2", 90)], [("c1", 1_100)]) and answers["numbers"] == (1, 4, 1, 1)
    assert answers["credits"] == ({"ACC-1": [("balance", 15_000_000)]}, {"ACC-2": [("balance", 1_000)]})
    assert answers["overdue"] == 1 and answers["after the delete"] == (None, [], ["oc_1", "oc_2"])
