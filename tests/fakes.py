"""In-memory fakes of the engine's storage ports, for unit tests of use cases (no I/O)."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

from engine.errors import AlreadyExists
from engine.identity import ApiToken, TokenApproval
from engine.model import AuditEntry, Subscriber, SubscriberFilter, SubscriberStatus, Tenant, TenantStatus
from engine.ports import AuditFilter


class _Data:
    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.tokens: dict[str, ApiToken] = {}
        self.subscribers: dict[str, Subscriber] = {}
        self.audit: list[AuditEntry] = []


class _Tenants:
    def __init__(self, d: _Data) -> None:
        self.d = d

    def get(self, tenant_id: str) -> Tenant | None:
        return self.d.tenants.get(tenant_id)

    def add(self, t: Tenant) -> None:
        if t.tenant_id in self.d.tenants:
            raise AlreadyExists("tenant", t.tenant_id)
        self.d.tenants[t.tenant_id] = t

    update = lambda self, t: self.d.tenants.__setitem__(t.tenant_id, t)  # noqa: E731

    def list(self, visible: set[str] | None, status: TenantStatus | None, after: str | None, limit: int) -> list[Tenant]:
        items = sorted(self.d.tenants.values(), key=lambda t: t.tenant_id)
        items = [t for t in items if (visible is None or t.tenant_id in visible) and (status is None or t.status is status)
                 and (after is None or t.tenant_id > after)]
        return items[:limit]


class _Tokens:
    def __init__(self, d: _Data) -> None:
        self.d = d

    def get(self, token_id: str) -> ApiToken | None:
        return self.d.tokens.get(token_id)

    def add(self, t: ApiToken) -> None:
        if t.token_id in self.d.tokens:
            raise AlreadyExists("token", t.token_id)
        self.d.tokens[t.token_id] = t

    def decide(self, t: ApiToken) -> bool:
        # like store.repositories.TokenRepo: only a pending, unrevoked token takes a decision
        old = self.d.tokens[t.token_id]
        if old.approval is not TokenApproval.PENDING or old.revoke_time is not None:
            return False
        self.d.tokens[t.token_id] = replace(old, approval=t.approval, decided_by=t.decided_by, decided_by_token=t.decided_by_token,
                                            decide_time=t.decide_time, approval_hash=t.approval_hash)
        return True

    def revoke(self, token_id: str, when: datetime) -> bool:
        old = self.d.tokens[token_id]
        if old.revoke_time is not None:
            return False
        self.d.tokens[token_id] = replace(old, revoke_time=when)
        return True

    def list(self, tenant_ids: set[str] | None, include_revoked: bool, after: str | None, limit: int) -> list[ApiToken]:
        items = sorted(self.d.tokens.values(), key=lambda t: t.token_id)
        return [t for t in items if (tenant_ids is None or t.tenant_id in tenant_ids) and (include_revoked or t.revoke_time is None)
                and (after is None or t.token_id > after)][:limit]


class _Subscribers:
    def __init__(self, d: _Data) -> None:
        self.d = d

    def get(self, subscriber_id: str, for_update: bool = False) -> Subscriber | None:
        return self.d.subscribers.get(subscriber_id)

    def _live(self, attr: str, value: str) -> Subscriber | None:
        for s in self.d.subscribers.values():
            if getattr(s, attr) == value and s.status is not SubscriberStatus.DEACTIVATED:
                return s
        return None

    def get_live_by_msisdn(self, msisdn: str) -> Subscriber | None:
        return self._live("msisdn", msisdn)

    def get_live_by_imsi(self, imsi: str) -> Subscriber | None:
        return self._live("imsi", imsi)

    def get_live_by_msisdns(self, msisdns: list[str]) -> dict[str, Subscriber]:
        return {m: s for m in msisdns if (s := self._live("msisdn", m)) is not None}

    def add(self, s: Subscriber) -> None:
        self._put(s)

    def update(self, s: Subscriber) -> None:
        assert s.subscriber_id in self.d.subscribers
        self._put(s)

    def _put(self, s: Subscriber) -> None:
        # the store's unique indexes: one live subscriber per MSISDN and per IMSI; flags are kept sorted
        if s.status is not SubscriberStatus.DEACTIVATED:
            for other in self.d.subscribers.values():
                if other.subscriber_id != s.subscriber_id and other.status is not SubscriberStatus.DEACTIVATED \
                        and (other.msisdn == s.msisdn or other.imsi == s.imsi):
                    raise AlreadyExists("subscriber", s.msisdn, "MSISDN or IMSI is already in use")
        self.d.subscribers[s.subscriber_id] = replace(s, barring_flags=tuple(sorted(s.barring_flags)))

    def list(self, flt: SubscriberFilter, after: str | None, limit: int) -> list[Subscriber]:
        items = sorted(self.d.subscribers.values(), key=lambda s: s.subscriber_id)
        out = [
            s for s in items
            if (flt.tenant_ids is None or s.tenant_id in flt.tenant_ids)
            and (flt.status is None or s.status is flt.status)
            and (flt.payment_type is None or s.payment_type is flt.payment_type)
            and (not flt.billing_account or s.billing_account == flt.billing_account)
            and (not flt.tariff_plan or s.tariff_plan == flt.tariff_plan)
            and (not flt.msisdn_prefix or s.msisdn.startswith(flt.msisdn_prefix))
            and (after is None or s.subscriber_id > after)
        ]
        return out[:limit]


class _Audit:
    def __init__(self, d: _Data) -> None:
        self.d = d

    def append(self, e: AuditEntry) -> None:
        # stored as the audit_log stores it: before and after as JSON (times and other values as text)
        before, after = (json.loads(json.dumps(dict(v), sort_keys=True, default=str)) for v in (e.before, e.after))
        self.d.audit.append(replace(e, before=before, after=after, sequence=len(self.d.audit) + 1))

    def list(self, flt: AuditFilter, after: int | None, limit: int) -> list[AuditEntry]:
        return [e for e in self.d.audit if (flt.tenant_ids is None or e.object_tenant_id in flt.tenant_ids)
                and (not flt.object_type or e.object_type == flt.object_type)
                and (not flt.object_id or e.object_id == flt.object_id) and (after is None or e.sequence > after)][:limit]


class FakeUnitOfWork:
    """Copies the data on enter and publishes it on commit: an uncommitted unit changes nothing."""

    def __init__(self, store: "FakeStore") -> None:
        self.store = store

    def __enter__(self) -> "FakeUnitOfWork":
        self.data = copy.deepcopy(self.store.data)
        self.tenants = _Tenants(self.data)
        self.tokens = _Tokens(self.data)
        self.subscribers = _Subscribers(self.data)
        self.audit = _Audit(self.data)
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def commit(self) -> None:
        self.store.data = self.data
        self.store.commits += 1

    def rollback(self) -> None:
        pass


class FakeStore:
    def __init__(self) -> None:
        self.data = _Data()
        self.commits = 0

    def __call__(self, read_only: bool = False) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)
