"""Credit alerts while rating (engine.rating.alerts) against the shipped rules/alerts, with in-memory ports."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from engine.eventrules import load_rule_book
from engine.rating.alerts import CreditAlertRecord, fire_credit_alerts, flag_for_service
from engine.subscribers import PaymentType, Subscriber, SubscriberStatus

REPO = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)
EUR = 1_000_000


class _Log:
    def __init__(self) -> None:
        self.rows: list[CreditAlertRecord] = []

    def fired(self, tenant_id: str, msisdn: str, period: str) -> set[str]:
        return {r.threshold_id for r in self.rows if (r.tenant_id, r.msisdn, r.period) == (tenant_id, msisdn, period)}

    def record(self, e: CreditAlertRecord) -> bool:
        key = (e.tenant_id, e.msisdn, e.period, e.threshold_id, e.action_index)
        if any((r.tenant_id, r.msisdn, r.period, r.threshold_id, r.action_index) == key for r in self.rows):
            return False
        self.rows.append(e)
        return True


class _Subs:
    def __init__(self, sub: Subscriber) -> None:
        self.by_id = {sub.subscriber_id: sub}

    def get(self, subscriber_id: str, for_update: bool = False) -> Subscriber | None:
        return self.by_id.get(subscriber_id)

    def update(self, s: Subscriber) -> None:
        self.by_id[s.subscriber_id] = s


class _Uow:
    def __init__(self, sub: Subscriber) -> None:
        self.alerts = _Log()
        self.subscribers = _Subs(sub)
        self.audit = self
        self.entries: list[object] = []

    def append(self, entry: object) -> None:
        self.entries.append(entry)


def subscriber(tenant: str = "mvno-alpha", limit: int | None = 10 * EUR) -> Subscriber:
    return Subscriber("sub_1", tenant, "33614000001", "208010000000001", "ACC-1", PaymentType.POSTPAID, SubscriberStatus.ACTIVE,
                      "TP_ALPHA_SIMPLE", NOW, NOW, credit_limit_micros=limit, credit_currency="EUR" if limit is not None else "")


ALERTS = load_rule_book(REPO / "rules").credit_alerts()


def step(uow: _Uow, sub: Subscriber, before: int, after: int, currency: str = "EUR") -> list[str]:
    return [f"{r.threshold_id}:{r.kind}" for r in fire_credit_alerts(uow, ALERTS, sub, sub.tariff_plan, "2026-11", currency, before, after, NOW)]


def test_each_threshold_fires_once_and_100_percent_bars_all() -> None:
    sub = subscriber()
    uow = _Uow(sub)
    assert step(uow, sub, 0, 4 * EUR) == []
    assert step(uow, sub, 4 * EUR, 5 * EUR) == ["WS_ALPHA_50:message"]     # at exactly 50 % counts as crossed
    assert step(uow, sub, 4 * EUR, 6 * EUR) == []                          # crossing again (after a credit note) fires nothing
    assert step(uow, sub, 6 * EUR, 12 * EUR) == ["WS_ALPHA_80:message", "WS_ALPHA_80:notify_mvno", "WS_ALPHA_100:notify_mvno",
                                                  "WS_ALPHA_100:bar_service"]
    assert uow.subscribers.get("sub_1").barring_flags == ("bar_all_outgoing",)  # type: ignore[union-attr]
    assert len(uow.entries) == 1   # the flag change is audited once
    assert [r.used_micros for r in uow.alerts.rows] == [5 * EUR, 12 * EUR, 12 * EUR, 12 * EUR, 12 * EUR]


def test_jump_over_every_threshold_fires_all_lowest_first() -> None:
    sub = subscriber("mvno-beta")
    uow = _Uow(sub)
    assert step(uow, sub, 0, 10 * EUR) == ["WS_BETA_50:notify_mvno", "WS_BETA_90:message", "WS_BETA_90:bar_service",
                                            "WS_BETA_100:notify_mvno", "WS_BETA_100:bar_service"]
    assert uow.subscribers.get("sub_1").barring_flags == ("bar_all_outgoing", "bar_data")  # type: ignore[union-attr]
    sms = [r for r in uow.alerts.rows if r.channel == "sms"]
    assert [r.recipient for r in sms] == ["+33615000001"]


def test_no_limit_other_currency_or_no_growth_fire_nothing() -> None:
    assert step(_Uow(subscriber(limit=None)), subscriber(limit=None), 0, 100 * EUR) == []
    sub = subscriber()
    assert step(_Uow(sub), sub, 0, 100 * EUR, currency="USD") == []
    assert step(_Uow(sub), sub, 9 * EUR, 9 * EUR) == []


def test_retail_sms_goes_to_the_subscriber_and_business_threshold_needs_its_plan() -> None:
    sub = subscriber("mno")
    uow = _Uow(sub)
    assert step(uow, sub, 0, 10 * EUR) == ["RETAIL_80:message", "RETAIL_100:message", "RETAIL_100:message"]
    assert [r.recipient for r in uow.alerts.rows if r.channel == "sms"] == [sub.msisdn, sub.msisdn]
    assert uow.subscribers.get("sub_1").barring_flags == ()  # type: ignore[union-attr]
    business = Subscriber(**{**subscriber("mno").__dict__, "tariff_plan": "TP_BUSINESS_PRO"})
    assert "RETAIL_BUSINESS_90:message" in step(_Uow(business), business, 0, 10 * EUR)


def test_flag_for_service() -> None:
    assert flag_for_service("all") == "bar_all_outgoing"
    assert flag_for_service("data") == "bar_data"
