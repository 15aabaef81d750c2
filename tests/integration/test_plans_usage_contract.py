"""Plan set versions, bundle counters, usage balances, the usage ledger and the credit alert log (store/plans.py,
the ports of engine/plans/catalogue.py, engine/rating/usage.py and engine/rating/alerts.py).

There is no in-memory fake of these ports (unit tests of rating run the evaluator without a store; the desks that
use them are tested over SQLite and PostgreSQL), so the contract is: every step's answer is the one pinned below
on each database, and PostgreSQL answers every step exactly as a fresh SQLite does."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from engine.model import PaymentType, Subscriber, SubscriberStatus, Tenant, TenantKind, TenantStatus
from engine.plans.catalogue import PlanSetVersion
from engine.rating.alerts import CreditAlertRecord
from engine.rating.usage import CounterRow, LedgerEntry, RatedSubscriber
from store.db import make_engine
from store.plans import SqlPlanUnitOfWorkFactory
from store.uow import SqlUnitOfWorkFactory
from tests.integration.contract import Steps, Units, assert_same, reference_sqlite
from tests.integration.helpers import ledger_entry

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
A, B, GONE = "4917000000001", "4917000000002", "4917000000009"
KA, KB = ("mno", A, "2026-11"), ("mno", B, "2026-11")


def version(n: int, tenant: str = "mno", activate: datetime | None = None) -> PlanSetVersion:
    return PlanSetVersion(tenant, n, f"digest-{n}", json.dumps({"n": n}), {"plans/a.yaml": f"v{n}", "plans/b.yaml": "é"},
                          T0 + timedelta(minutes=n), "pm", activate)


def ledger_row(cdr: str, msisdn: str = A, charge: int = 1_000, bundles: list[Any] | None = None, status: str = "rated",
               start: datetime = T0, cycle: str = "2026-11", tenant: str = "mno") -> tuple[Any, ...]:
    return ledger_entry(tenant_id=tenant, cdr_id=cdr, msisdn=msisdn, cycle=cycle, charge_micros=charge,
                        bundles_json=json.dumps(bundles or []), start_time=start, status=status,
                        reason="" if status == "rated" else "no rate")


def alert(threshold: str, index: int = 0, msisdn: str = A, period: str = "2026-11", tenant: str = "mno") -> CreditAlertRecord:
    return CreditAlertRecord(tenant, msisdn, period, threshold, index, "80", "message", "sms", msisdn, "80% used", "", "",
                             "EUR", 8_000_000, 10_000_000, T0)


def scenario(db_url: str) -> list[tuple[str, Any]]:
    engine = make_engine(db_url)
    base = SqlUnitOfWorkFactory(engine)
    uow = SqlPlanUnitOfWorkFactory(base)
    step = Steps()
    units = Units(uow)
    write, read = units.write, units.read

    try:
        with base() as unit:   # the tenants and subscribers the rows belong to
            for tid, parent in (("mno", ""), ("mvno-alpha", "mno")):
                unit.tenants.add(Tenant(tid, tid, TenantKind.MVNO if parent else TenantKind.MNO, TenantStatus.ACTIVE, parent, "EUR", T0, T0))
            for sid, tid, msisdn, status, limit in (("sub_a", "mno", A, SubscriberStatus.ACTIVE, 10_000_000),
                                                    ("sub_b", "mvno-alpha", B, SubscriberStatus.SUSPENDED, None),
                                                    ("sub_g", "mno", GONE, SubscriberStatus.DEACTIVATED, None)):
                unit.subscribers.add(Subscriber(sid, tid, msisdn, "26201" + msisdn[-10:], "ACC", PaymentType.POSTPAID, status, "TP_A",
                                                T0, T0, credit_limit_micros=limit, credit_currency="EUR" if limit else ""))
            unit.commit()

        # plan set versions
        step("latest of none", read(lambda u: u.plan_versions.latest_number("mno")))
        for n in (1, 2, 3):
            step(f"add v{n}", write(lambda u, n=n: u.plan_versions.add(version(n))))
        step("add alpha v1", write(lambda u: u.plan_versions.add(version(1, "mvno-alpha"))))
        step("latest", read(lambda u: (u.plan_versions.latest_number("mno"), u.plan_versions.latest_number("mvno-alpha"))))
        step("get v2", read(lambda u: u.plan_versions.get("mno", 2)))
        step("get other tenant's", read(lambda u: u.plan_versions.get("mvno-alpha", 3)))
        step("list", read(lambda u: [v.version for v in u.plan_versions.list("mno", None, 10)]))
        step("list after, limited", read(lambda u: [v.version for v in u.plan_versions.list("mno", 1, 1)]))
        step("nothing active", read(lambda u: u.plan_versions.active("mno", T0 + timedelta(days=1))))
        step("activate v1", write(lambda u: u.plan_versions.set_activation("mno", 1, T0)))
        step("activate v3 earlier than v2", write(lambda u: u.plan_versions.set_activation("mno", 3, T0 + timedelta(days=1))))
        step("activate v2", write(lambda u: u.plan_versions.set_activation("mno", 2, T0 + timedelta(days=2))))
        for label, at in (("before any", T0 - timedelta(seconds=1)), ("at v1", T0), ("v3 in force", T0 + timedelta(days=1, hours=1)),
                          ("v2 supersedes", T0 + timedelta(days=3))):
            step(f"active {label}", read(lambda u, at=at: (lambda v: v and (v.version, v.activate_time))(u.plan_versions.active("mno", at))))
        step("activation heads", read(lambda u: [(v.version, v.activate_time, v.ir_json) for v in u.plan_versions.activation_heads("mno")]))
        step("another tenant's activation", read(lambda u: u.plan_versions.active("mvno-alpha", T0 + timedelta(days=9))))

        # subscribers as rating sees them
        step("subscribers of", read(lambda u: u.usage.subscribers_of([A, B, GONE, "4917"])))

        # counters, balances, the ledger: one chunk, then a re-rate of one CDR, then a chunk that lost a race
        step("no counters", read(lambda u: (u.usage.counters_of([KA, KB]), u.usage.balances_of([KA, KB]))))
        first = [ledger_row("c1", bundles=[["B_MIN", 60]], charge=0), ledger_row("c2", charge=1_500),
                 ledger_row("c3", B, charge=2_000, start=T0 + timedelta(hours=1)), ledger_row("c4", status="unrated", charge=0),
                 ledger_row("c5", cycle="", charge=700)]
        step("write chunk 1", write(lambda u: u.usage.write_chunk(
            first, set(), [(KA, "B_MIN", CounterRow(600, 540, "seconds"), None)],
            [(KA, "EUR", 1_500, None), (KB, "EUR", 2_000, None)])))
        step("counters and balances", read(lambda u: (u.usage.counters_of([KA, KB, ("mno", GONE, "2026-11")]),
                                                      u.usage.balances_of([KA, KB]))))
        step("ledger of", read(lambda u: u.usage.ledger_of("mno", ["c1", "c2", "c5", "c9"])))
        step("ledger of another tenant", read(lambda u: u.usage.ledger_of("mvno-alpha", ["c1"])))
        step("holdings of", read(lambda u: sorted(tuple(r) for r in u.usage.holdings_of("mno", ["c9", "c5", "c1", "c2", "c4"]))))
        step("holdings of another tenant", read(lambda u: u.usage.holdings_of("mvno-alpha", ["c1"])))

        def take_not_committed() -> Any:   # read for the write that replaces them; the rows stay until it does
            with uow() as u:
                return (sorted(tuple(r) for r in u.usage.take_holdings("mno", ["c2", "c9", "c5"]) or ()),
                        u.usage.take_holdings("mvno-alpha", ["c1"]), sorted(u.usage.ledger_of("mno", ["c1", "c2", "c5"])))
        step("take holdings, not committed", take_not_committed)
        step("ledger after the take", read(lambda u: sorted(u.usage.ledger_of("mno", ["c1", "c2", "c5"]))))
        step("re-rate c2", write(lambda u: u.usage.write_chunk(
            [ledger_row("c2", charge=900, bundles=[["B_MIN", 30]])], {("mno", "c2")},
            [(KA, "B_MIN", CounterRow(600, 510, "seconds"), 540)], [(KA, "EUR", 900, 1_500)])))
        step("after the re-rate", read(lambda u: (u.usage.ledger_of("mno", ["c2"]), u.usage.counters_of([KA]), u.usage.balances_of([KA]))))
        step("lost race on a counter", write(lambda u: u.usage.write_chunk(
            [ledger_row("c6")], set(), [(KA, "B_MIN", CounterRow(600, 480, "seconds"), 540)], [])))
        step("lost race on a new balance", write(lambda u: u.usage.write_chunk(
            [ledger_row("c7")], set(), [], [(KA, "EUR", 5, None)])))
        step("lost race on a ledger row", write(lambda u: u.usage.write_chunk([ledger_row("c1")], set(), [], [])))
        step("nothing of the lost chunks", read(lambda u: (sorted(u.usage.ledger_of("mno", ["c1", "c6", "c7"])),
                                                            u.usage.counters_of([KA]), u.usage.balances_of([KA]))))
        day = timedelta(days=1)
        step("rated usage", read(lambda u: [e.cdr_id for e in u.usage.rated_usage("mno", T0, T0 + day)]))
        step("rated usage of one", read(lambda u: u.usage.rated_usage("mno", T0, T0 + day, B)))
        step("rated usage, end excluded", read(lambda u: [e.cdr_id for e in u.usage.rated_usage("mno", T0 - day, T0 + timedelta(hours=1))]))

        # the credit alert log: once per threshold, action and period
        step("none fired", read(lambda u: u.alerts.fired("mno", A, "2026-11")))
        for label, rec in (("80", alert("T80")), ("80 second action", alert("T80", 1)), ("80 again", alert("T80")),
                           ("80 next period", alert("T80", period="2026-12")), ("alpha", alert("T100", msisdn=B, tenant="mvno-alpha"))):
            step(f"record {label}", write(lambda u, rec=rec: u.alerts.record(rec)))
        step("fired", read(lambda u: u.alerts.fired("mno", A, "2026-11")))
        step("alerts", read(lambda u: [replace(r, sequence=0) for r in u.alerts.list(None, "", "", None, 10)]))
        step("alerts filtered", read(lambda u: [(r.threshold_id, r.period) for r in u.alerts.list({"mno"}, A, "2026-12", None, 10)]))
        step("alerts after", read(lambda u: (lambda rows: [(r.threshold_id, r.action_index) for r in u.alerts.list(None, "", "", rows[1].sequence, 1)])(
            u.alerts.list(None, "", "", None, 10))))
    finally:
        engine.dispose()
    return step.out


def test_plan_and_usage_stores_agree(db_url: str, tmp_path: Path) -> None:
    got = scenario(db_url)
    answers = dict(got)
    # pinned on every database
    assert answers["latest of none"] == 0 and answers["latest"] == (3, 1)
    assert answers["get v2"] == version(2) and answers["get other tenant's"] is None
    assert answers["list"] == [1, 2, 3] and answers["list after, limited"] == [2]
    assert [answers[f"active {k}"] for k in ("before any", "at v1", "v3 in force", "v2 supersedes")] == [
        None, (1, T0), (3, T0 + timedelta(days=1)), (2, T0 + timedelta(days=2))]
    assert answers["activation heads"] == [(1, T0, ""), (3, T0 + timedelta(days=1), ""), (2, T0 + timedelta(days=2), "")]
    assert answers["another tenant's activation"] is None
    assert answers["subscribers of"] == {
        A: RatedSubscriber("sub_a", "mno", A, "TP_A", "ACC", "active", 10_000_000, "EUR"),
        B: RatedSubscriber("sub_b", "mvno-alpha", B, "TP_A", "ACC", "suspended", None, "")}
    assert answers["no counters"] == ({}, {})
    assert answers["write chunk 1"] is True and answers["re-rate c2"] is True
    assert answers["counters and balances"] == ({KA: {"B_MIN": CounterRow(600, 540, "seconds")}}, {KA: {"EUR": 1_500}, KB: {"EUR": 2_000}})
    ledger = answers["ledger of"]
    assert sorted(ledger) == ["c1", "c2", "c5"] and ledger["c1"].bundles == (("B_MIN", 60),) and ledger["c5"].counted is False
    assert ledger["c2"] == LedgerEntry("mno", "c2", A, "2026-11", "EUR", 1_500, (), T0, "voice", "DST_EU", "Z1", 60, 1, "TP_A", 2)
    assert answers["ledger of another tenant"] == {}
    # what the rows took, as the chunk that replaces them reads it: c5 names no cycle (counted nowhere)
    assert answers["holdings of"] == [("c1", A, "2026-11", "EUR", 0, '[["B_MIN", 60]]'), ("c2", A, "2026-11", "EUR", 1_500, "[]"),
                                      ("c4", A, "2026-11", "EUR", 0, "[]"), ("c5", A, "", "EUR", 700, "[]")]
    assert answers["holdings of another tenant"] == []
    assert answers["take holdings, not committed"] == ([("c2", A, "2026-11", "EUR", 1_500, "[]"), ("c5", A, "", "EUR", 700, "[]")], [],
                                                      ["c1", "c2", "c5"])
    assert answers["ledger after the take"] == ["c1", "c2", "c5"]
    assert answers["after the re-rate"][0]["c2"].charge_micros == 900
    assert answers["after the re-rate"][1:] == ({KA: {"B_MIN": CounterRow(600, 510, "seconds")}}, {KA: {"EUR": 900}})
    assert [answers[f"lost race on {k}"] for k in ("a counter", "a new balance", "a ledger row")] == [False, False, False]
    assert answers["nothing of the lost chunks"] == (["c1"], {KA: {"B_MIN": CounterRow(600, 510, "seconds")}}, {KA: {"EUR": 900}})
    assert answers["rated usage"] == ["c1", "c2", "c5", "c3"]    # start order; unrated c4 is not billed
    assert [e.cdr_id for e in answers["rated usage of one"]] == ["c3"]
    assert answers["rated usage, end excluded"] == ["c1", "c2", "c5"]
    assert [answers[f"record {k}"] for k in ("80", "80 second action", "80 again", "80 next period", "alpha")] == [True, True, False, True, True]
    assert answers["fired"] == {"T80"} and answers["alerts filtered"] == [("T80", "2026-12")]
    assert answers["alerts after"] == [("T80", 0)]   # the third logged: T80 of 2026-12
    assert [(r.tenant_id, r.threshold_id, r.action_index) for r in answers["alerts"]] == [
        ("mno", "T80", 0), ("mno", "T80", 1), ("mno", "T80", 0), ("mvno-alpha", "T100", 0)]
    if db_url.startswith("postgresql"):
        assert_same(scenario(reference_sqlite(tmp_path)), got, "postgresql")
