"""Bundle counters and once-per-period credit alerts follow the subscriber's bill cycle in its tariff plan's time zone
(Europe/Paris for the sample retail plans), not the UTC calendar month; on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import select, text

from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.rating.usage import cycle_of
from engine.settings import Settings
from engine.subscribers import NewSubscriber, PaymentType
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.plans import bundle_counters, credit_alert_log, usage_ledger

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
OPERATOR = replace(SYSTEM, tenant_id="mno", subject="it")
EUR = 1_000_000


@pytest.fixture(scope="module")
def root(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    # the plan set is activated in October, so November and December calls have it in force
    r = build_root(Settings(home=Path(tmp_path_factory.mktemp("cycles")), database_url=db_url),
                   FixedClock(datetime(2026, 10, 1, tzinfo=timezone.utc)))
    bootstrap(r.settings, r, load_plans=True)
    yield r
    r.close()


def call(n: int, a: str, b: str, seconds: int, at: datetime) -> MediatedCdr:
    return MediatedCdr(cdr_identity("cycles", f"{a}-{n}"), "cycles", f"{a}-{n}", Service.VOICE, Direction.ORIGINATING, at, a, b,
                       duration_seconds=seconds, tenant="mno")


def subscriber(root: Root, msisdn: str, limit: int | None = None) -> None:
    sub = root.subscribers.provision(OPERATOR, NewSubscriber("mno", msisdn, "208019" + msisdn[-9:], "ACC-C", PaymentType.POSTPAID,
                                                              "TP_SMART_S"))
    sub = root.subscribers.transition(OPERATOR, sub.subscriber_id, "activate")
    if limit is not None:
        root.subscribers.set_credit_limit(OPERATOR, sub.subscriber_id, limit, "EUR")


def test_a_call_at_half_past_midnight_local_on_the_first_belongs_to_the_new_cycle(root: Root) -> None:
    msisdn = "33612777001"
    subscriber(root, msisdn, limit=10 * EUR)
    desk = root.rating
    late = datetime(2026, 11, 30, 21, 0, tzinfo=timezone.utc)        # 22:00 in Paris, still November
    first_of_dec = datetime(2026, 11, 30, 23, 30, tzinfo=timezone.utc)   # 00:30 on 1 December in Paris, still November in UTC
    outcomes = desk.rate_many(OPERATOR, [call(1, msisdn, "442071234567", 600, late), call(2, msisdn, "33698765432", 600, late),
                                         call(3, msisdn, "442071234567", 600, first_of_dec),
                                         call(4, msisdn, "33698765432", 600, first_of_dec)], use_counters=True)
    assert all(o.rated.rated for o in outcomes)
    with root.db.connect() as conn:
        ledger = {r.cdr_id: r.cycle for r in conn.execute(select(usage_ledger).where(usage_ledger.c.msisdn == msisdn))}
        counters = sorted((r.cycle, r.bundle_id, r.remaining) for r in conn.execute(
            select(bundle_counters).where(bundle_counters.c.msisdn == msisdn, bundle_counters.c.bundle_id == "BN_S_VOICE_120MIN")))
        alerts = sorted((r.period, r.threshold_id) for r in conn.execute(
            select(credit_alert_log).where(credit_alert_log.c.msisdn == msisdn)))
    assert [ledger[o.rated.cdr_id] for o in outcomes] == ["2026-11", "2026-11", "2026-12", "2026-12"]
    # each cycle's bundle starts full: the 00:30 call does not eat into November's minutes
    assert counters == [("2026-11", "BN_S_VOICE_120MIN", 7200 - 600), ("2026-12", "BN_S_VOICE_120MIN", 7200 - 600)]
    # 8.40 of 10.00 in each cycle: the 80 % alert fires once in each; by the UTC month it would have been 16.80 in
    # November (80 % and 100 %) and nothing in December
    assert outcomes[0].rated.charge_micros == outcomes[2].rated.charge_micros == 8_400_000
    assert alerts == [("2026-11", "RETAIL_80"), ("2026-12", "RETAIL_80")]


def test_the_cycle_follows_the_anchor_day_of_the_subscribers_billing_account(root: Root) -> None:
    from engine.billing.accounts import AccountSpec
    from engine.billing.model import Address

    msisdn = "33612777002"
    subscriber(root, msisdn)
    root.billing.accounts.create(OPERATOR, AccountSpec(account_id="ACC-ANCHOR-15", tenant_id="mno", name="Anchored on the 15th",
                                                       address=Address(("1 rue de la Paix",), "Paris", "75002", "FR"),
                                                       currency="EUR", anchor_day=15))
    with root.db.connect() as conn:
        sid = conn.execute(text("SELECT subscriber_id FROM subscribers WHERE msisdn = :m"), {"m": msisdn}).scalar_one()
    root.billing.accounts.assign(OPERATOR, "mno", "ACC-ANCHOR-15", sid, datetime(2026, 12, 1, tzinfo=timezone.utc))
    outcomes = root.rating.rate_many(OPERATOR, [
        call(1, msisdn, "33698765432", 60, datetime(2026, 12, 14, 22, 59, tzinfo=timezone.utc)),
        call(2, msisdn, "33698765432", 60, datetime(2026, 12, 14, 23, 1, tzinfo=timezone.utc))], use_counters=True)
    with root.db.connect() as conn:
        ledger = {r.cdr_id: r.cycle for r in conn.execute(select(usage_ledger).where(usage_ledger.c.msisdn == msisdn))}
    # 23:59 on the 14th and 00:01 on the 15th in Paris: the account's cycle, anchored on the 15th, starts between them
    assert [ledger[o.rated.cdr_id] for o in outcomes] == ["2026-11", "2026-12"]
    # a subscriber on no billing account keeps cycles anchored on the 1st
    assert cycle_of(date(2026, 12, 14)) == cycle_of(date(2026, 12, 15)) == "2026-12"


def test_cycle_names() -> None:
    assert cycle_of(date(2026, 12, 1)) == "2026-12"
    assert cycle_of(date(2026, 11, 30)) == "2026-11"
    assert cycle_of(date(2026, 3, 20), 15) == "2026-03" and cycle_of(date(2026, 3, 10), 15) == "2026-02"
    assert cycle_of(date(2026, 2, 28), 31) == "2026-02" and cycle_of(date(2026, 3, 30), 31) == "2026-02"
