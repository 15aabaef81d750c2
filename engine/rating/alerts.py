"""Credit alerts while rating: the subscriber's usage crossed thresholds of its credit limit.

After a CDR is rated with counters, the usage balance of the cycle moved from
``used_before`` to ``used_after``; the credit alert rules (rules/alerts) say
which thresholds were crossed and what to do.  Every action is written to the
credit alert log (the outbox) in the same transaction as the usage: a
threshold fires once per subscriber and period (the log's unique key holds
that even across replicas).  ``bar_service`` sets the matching barring flag on
the subscriber, so the barring rules refuse the next call attempt.  Sending the
messages (SMS, e-mail, webhook) is a dispatcher's job reading the log.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from engine import audit
from engine.eventrules import CreditAlerts, CreditFact
from engine.identity import SYSTEM

# bar_service "all" bars every outgoing service; other services get bar_<service>
_ALL_FLAG = "bar_all_outgoing"


def flag_for_service(service: str) -> str:
    return _ALL_FLAG if service in ("", "all") else f"bar_{service}"


@dataclass(frozen=True)
class CreditAlertRecord:
    """One action of a crossed threshold, as logged.  Money in micro-units."""

    tenant_id: str
    msisdn: str
    period: str
    threshold_id: str
    action_index: int
    percent: str
    kind: str  # message | bar_service | notify_mvno
    channel: str
    recipient: str
    text: str
    service: str
    barring_flag: str
    currency: str
    used_micros: int
    limit_micros: int
    fire_time: datetime
    sequence: int = 0


class CreditAlertLog(Protocol):
    def fired(self, tenant_id: str, msisdn: str, period: str) -> set[str]: ...
    def record(self, entry: CreditAlertRecord) -> bool: ...   # False: that action is logged already (fired elsewhere)
    def list(self, tenant_ids: set[str] | None, msisdn: str, period: str, after: int | None,
             limit: int) -> list[CreditAlertRecord]: ...


def fire_credit_alerts(uow: Any, alerts: CreditAlerts, subscriber: Any, plan_id: str, period: str, currency: str,
                       used_before: int, used_after: int, now: datetime) -> list[CreditAlertRecord]:
    """Evaluate and log the thresholds crossed by this usage step, on ``uow`` (the caller commits).

    ``uow`` offers ``alerts`` (CreditAlertLog), ``subscribers`` and ``audit``.
    """
    limit = subscriber.credit_limit_micros
    if limit is None or subscriber.credit_currency != currency or used_after <= used_before:
        return []
    tenant, msisdn = subscriber.tenant_id, subscriber.msisdn
    fact = CreditFact(tenant=tenant, account_id=msisdn, period=period, currency=currency, credit_limit_micros=limit,
                      used_before_micros=used_before, used_after_micros=used_after,
                      already_fired=frozenset(uow.alerts.fired(tenant, msisdn, period)),
                      attributes=(("plan_id", plan_id), ("msisdn", msisdn), ("billing_account", subscriber.billing_account)))
    logged: list[CreditAlertRecord] = []
    flags: set[str] = set()
    index: dict[str, int] = {}
    for action in alerts.evaluate_credit(fact):
        i = index[action.threshold_id] = index.get(action.threshold_id, -1) + 1
        flag = flag_for_service(action.service) if action.kind == "bar_service" else ""
        recipient = action.recipient or (msisdn if action.kind == "message" and action.channel == "sms" else "")
        entry = CreditAlertRecord(tenant, msisdn, period, action.threshold_id, i, action.percent, action.kind, action.channel,
                                  recipient, action.text, action.service, flag, currency, used_after, limit, now)
        if uow.alerts.record(entry):
            logged.append(entry)
            if flag:
                flags.add(flag)
    if flags:
        current = uow.subscribers.get(subscriber.subscriber_id, for_update=True)
        if current is not None and not flags <= set(current.barring_flags):
            updated = replace(current, barring_flags=tuple(sorted(set(current.barring_flags) | flags)), update_time=now)
            uow.subscribers.update(updated)
            who = replace(SYSTEM, subject="credit-alerts", tenant_id=tenant)
            uow.audit.append(audit.entry(who, now, "subscriber.bar", "subscriber", current.subscriber_id, current.as_audit(),
                                         updated.as_audit() | {"reason": "credit alert " + ", ".join(sorted(
                                             {e.threshold_id for e in logged if e.barring_flag}))}, tenant))
    return logged


__all__ = ["CreditAlertLog", "CreditAlertRecord", "fire_credit_alerts", "flag_for_service"]
