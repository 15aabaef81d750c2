"""Plan set versions: upload (validate, compile, store), list, activate at a time, diff, what-if.

The use cases behind PlanService.  Storage is reached through
:class:`PlanUnitOfWork` (``store/plans.py`` implements it); compiled
evaluators are cached by IR digest, so rating never recompiles a stored
version.
"""

from __future__ import annotations

import builtins

import json
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any, Callable, Iterable, Mapping, Protocol

from engine import audit
from engine.clock import Clock
from engine.cdr import COLUMNS, returned_by_rap
from engine.errors import ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.identity import Permission, Principal
from engine.paging import Page
from engine.periods import check_period
from engine.plans.compiler import build_ir, dump_ir, ir_digest
from engine.cancellation import time_limit
from engine.plans.limits import PlanSetLimits
from engine.plans.loader import load_plan_texts
from engine.plans.model import Segment
from engine.ports import AuditLog
from engine.yamlio import Problem, cap_problems

_ATTRS = COLUMNS.index("attributes")
ALLOWED_SUFFIXES = (".yaml", ".yml", ".prefixes", ".md", ".txt")
KINDS = ("destinations", "zones", "time_bands", "rates", "bundles", "discount_plans", "tariff_plans")


@dataclass(frozen=True)
class PlanSetVersion:
    tenant_id: str
    version: int
    digest: str
    ir_json: str
    sources: Mapping[str, str]
    create_time: datetime
    created_by: str
    activate_time: datetime | None = None

    @property
    def ir(self) -> dict[str, Any]:
        return json.loads(self.ir_json)

    def summary(self) -> dict[str, Any]:
        ir = self.ir
        return {"tariff_plans": sorted(ir["tariff_plans"]), "counts": {k: len(ir[k]) for k in KINDS}, "files": len(self.sources)}

    def as_audit(self) -> dict[str, Any]:
        return {"version": self.version, "digest": self.digest, "files": len(self.sources),
                "activate_time": self.activate_time}


class PlanVersionRepository(Protocol):
    def latest_number(self, tenant_id: str, lock: bool = False) -> int: ...   # lock: the tenant's numbering, to the commit
    def add(self, version: PlanSetVersion) -> None: ...
    def get(self, tenant_id: str, version: int) -> PlanSetVersion | None: ...
    def list(self, tenant_id: str, after: int | None, limit: int) -> builtins.list[PlanSetVersion]: ...
    def set_activation(self, tenant_id: str, version: int, activate_time: datetime) -> None: ...
    def active(self, tenant_id: str, at: datetime) -> PlanSetVersion | None: ...


class PlanUnitOfWork(Protocol):
    # read-only members, so implementations may hold concrete repository types
    @property
    def plan_versions(self) -> PlanVersionRepository: ...
    @property
    def usage(self) -> Any: ...   # engine.rating.usage.UsageRepository: counters, balances, the usage ledger
    @property
    def audit(self) -> AuditLog: ...

    def __enter__(self) -> "PlanUnitOfWork": ...
    def __exit__(self, *exc: Any) -> None: ...
    def commit(self) -> None: ...


class PlanUnitOfWorkFactory(Protocol):
    """``read_only=True`` promises no writes (the store may then skip the write lock)."""

    def __call__(self, read_only: bool = False) -> PlanUnitOfWork: ...


@dataclass(frozen=True)
class PlanChange:
    kind: str
    id: str
    change: str   # added | removed | changed


@dataclass(frozen=True)
class Owner:
    """Whose plan set an upload is: the operator's holds its retail and wholesale plans and the retail plans it hosts
    for its MVNOs (plans/ does); an MVNO's holds only its own retail plans.  A wholesale plan is the price the
    operator charges an MVNO: in an MVNO's set it would let the MVNO set what it pays."""

    tenant: str
    is_operator: bool

    @classmethod
    def of(cls, principal: Principal, tenant: str) -> "Owner":
        return cls(tenant, principal.is_operator and tenant == principal.tenant_id)

    def problems(self, plan_set: Any) -> list[Problem]:
        out: list[Problem] = []
        for plan in plan_set.tariff_plans.values():
            tenant_at, segment_at = plan.ref_marks.get("tenant", plan.mark), plan.ref_marks.get("segment", plan.mark)
            wholesale = plan.segment is Segment.WHOLESALE
            if plan.tenant != self.tenant and (wholesale or not self.is_operator):
                whose = "a wholesale plan is the operator's" if self.is_operator else "this plan set is"
                out.append(Problem.at(tenant_at, "plans.foreign-tenant", f"{plan.id}: tenant {plan.tenant}: {whose} {self.tenant}'s"))
            if wholesale and not self.is_operator:
                out.append(Problem.at(segment_at, "plans.wholesale-not-operator",
                                      f"{plan.id}: only the operator's plan set holds wholesale plans (this is {self.tenant}'s)"))
        return out


def validate_files(files: Mapping[str, str], limits: PlanSetLimits = PlanSetLimits(),
                   owner: Owner | None = None) -> tuple[Any, list[Problem]]:
    """Load an uploaded plan set from memory (as its folder would load); bad paths and sizes are problems too;
    with ``owner``, plans that tenant may not hold (:class:`Owner`) too.

    Every bound of ``limits`` holds: a set too large is refused before it is parsed, parsing stops at the
    set's value budget, at most so many problems are listed, and the work stops when the current call ends
    or after ``limits.max_seconds`` (:class:`~engine.errors.ResourceExhausted`)."""
    with time_limit(limits.max_seconds, limits.too_slow):
        plan_set, problems = _validate_files(files, limits, owner)
    return plan_set, cap_problems(problems, limits.max_problems_per_file, limits.max_problems)


def _validate_files(files: Mapping[str, str], limits: PlanSetLimits, owner: Owner | None) -> tuple[Any, list[Problem]]:
    problems: list[Problem] = []
    total = 0
    for path, content in files.items():
        p = PurePosixPath(path)
        total += len(content)   # characters first: cheap, and never fewer than the bytes / 4
        if len(path) > limits.max_path or p.is_absolute() or ".." in p.parts or not p.parts or p.suffix not in ALLOWED_SUFFIXES:
            problems.append(Problem(path, 1, 1, "file.path", f"a plan file path is relative, without '..', at most "
                                    f"{limits.max_path} characters, ending in {', '.join(ALLOWED_SUFFIXES)}"))
    if total <= limits.max_bytes:
        total = sum(len(content.encode("utf-8")) for content in files.values())
    if len(files) > limits.max_files or total > limits.max_bytes:
        problems.append(Problem("", 1, 1, "limit.size", f"{len(files)} files of {total} bytes: at most {limits.max_files} files "
                                f"(setting max_plan_set_files) of {limits.max_bytes} bytes (setting max_plan_set_bytes) per plan set"))
    if not files:
        problems.append(Problem("", 1, 1, "file.missing", "a plan set needs at least one file"))
    if problems:
        return None, problems
    return load_plan_texts(files, limits.budget(), owner.problems if owner is not None else None)


def diff_ir(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[PlanChange]:
    out: list[PlanChange] = []
    for kind in KINDS:
        a, b = old.get(kind, {}), new.get(kind, {})
        for oid in sorted(set(a) | set(b)):
            if oid not in a:
                out.append(PlanChange(kind, oid, "added"))
            elif oid not in b:
                out.append(PlanChange(kind, oid, "removed"))
            elif a[oid] != b[oid]:
                out.append(PlanChange(kind, oid, "changed"))
    return out


class CompiledCache:
    """Compiled plan sets by IR digest (a few recent ones: compiling is the expensive part)."""

    def __init__(self, size: int = 8) -> None:
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._size = size

    def get(self, version: PlanSetVersion) -> Any:
        from engine.rating.compiled import CompiledPlans

        hit = self._items.get(version.digest)
        if hit is None:
            hit = CompiledPlans.from_ir(version.ir)
            self._items[version.digest] = hit
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        else:
            self._items.move_to_end(version.digest)
        return hit


# Stored CDRs of some tenants (None: all) in [start, end), as rows of the normalised layout: the mediation store
# implements it.
StoredCdrs = Callable[[set[str] | None, datetime, datetime], Iterable[Any]]


class PlanDesk:
    """Use cases of PlanService."""

    def __init__(self, uow: PlanUnitOfWorkFactory, clock: Clock, stored_cdrs: StoredCdrs | None = None,
                 limits: PlanSetLimits = PlanSetLimits(), cdr_limits: Any = None) -> None:
        from engine.rating.limits import DEFAULT_LIMITS

        self._uow = uow
        self._clock = clock
        self._stored_cdrs = stored_cdrs
        self.limits = limits
        self.cache = CompiledCache()
        self.cdr_limits = cdr_limits or DEFAULT_LIMITS   # engine.rating.limits.CdrLimits: what what-if accepts

    def _tenant(self, principal: Principal, tenant_id: str) -> str:
        tenant = tenant_id or principal.tenant_id
        principal.require_tenant(tenant)
        return tenant

    def validate(self, principal: Principal, files: Mapping[str, str]) -> tuple[bool, list[Problem]]:
        """What an upload of ``files`` to the caller's own tenant would report, storing nothing."""
        principal.require(Permission.PLAN_READ)
        plan_set, problems = validate_files(files, self.limits, Owner.of(principal, principal.tenant_id))
        return plan_set is not None, problems

    def upload(self, principal: Principal, tenant_id: str, files: Mapping[str, str]) -> PlanSetVersion:
        principal.require(Permission.PLAN_WRITE)
        tenant = self._tenant(principal, tenant_id)
        plan_set, problems = validate_files(files, self.limits, Owner.of(principal, tenant))
        if plan_set is None:
            errors = ErrorList()
            for p in problems:
                errors.add(f"files[{p.file}]:{p.line}:{p.col}", f"{p.code}: {p.message}")
            errors.raise_if_any(f"the plan set has {len(problems)} problem(s)")
        ir = build_ir(plan_set)
        now = self._clock.now()
        with self._uow() as uow:
            # numbered under the tenant's numbering lock: two uploads at once both succeed, as versions N+1 and N+2
            number = uow.plan_versions.latest_number(tenant, lock=True) + 1
            version = PlanSetVersion(tenant, number, ir_digest(ir), dump_ir(ir), dict(files), now, principal.subject)
            uow.plan_versions.add(version)
            uow.audit.append(audit.entry(principal, now, "plan_set.upload", "plan_set_version", f"{tenant}/{number}",
                                         {}, version.as_audit(), tenant))
            uow.commit()
        return version

    def get(self, principal: Principal, tenant_id: str, version: int) -> PlanSetVersion:
        principal.require(Permission.PLAN_READ)
        tenant = self._tenant(principal, tenant_id)
        with self._uow() as uow:
            found = uow.plan_versions.get(tenant, version) if version else uow.plan_versions.active(tenant, self._clock.now())
        if found is None:
            raise NotFound("plan set version", f"{tenant}/{version or 'active'}")
        return found

    def list_versions(self, principal: Principal, tenant_id: str, page: Page) -> list[PlanSetVersion]:
        principal.require(Permission.PLAN_READ)
        tenant = self._tenant(principal, tenant_id)
        with self._uow() as uow:
            return uow.plan_versions.list(tenant, page.after, page.size)

    def activate(self, principal: Principal, tenant_id: str, version: int, activate_time: datetime | None) -> PlanSetVersion:
        principal.require(Permission.PLAN_WRITE)
        tenant = self._tenant(principal, tenant_id)
        now = self._clock.now()
        when = activate_time or now
        if when < now:
            raise InvalidArgument.field("activate_time", "must not be in the past (a version applies from its activation on)")
        with self._uow() as uow:
            found = uow.plan_versions.get(tenant, version)
            if found is None:
                raise NotFound("plan set version", f"{tenant}/{version}")
            if found.activate_time is not None and found.activate_time <= now:
                raise FailedPrecondition("PLAN_SET_ALREADY_ACTIVE", f"version {version} has been active since {found.activate_time.isoformat()}",
                                         f"{tenant}/{version}")
            uow.plan_versions.set_activation(tenant, version, when)
            updated = replace(found, activate_time=when)
            uow.audit.append(audit.entry(principal, now, "plan_set.activate", "plan_set_version", f"{tenant}/{version}",
                                         found.as_audit(), updated.as_audit(), tenant))
            uow.commit()
        return updated

    def diff(self, principal: Principal, tenant_id: str, old: int, new: int) -> list[PlanChange]:
        a = self.get(principal, tenant_id, old)
        b = self.get(principal, tenant_id, new)
        return diff_ir(a.ir, b.ir)

    def compiled_at(self, tenant_id: str, at: datetime) -> tuple[PlanSetVersion | None, Any]:
        """The plan set version active for ``tenant_id`` at ``at`` and its evaluators (no permission check: internal)."""
        # read-only: it runs inside other use cases' write units (rating, provisioning) on SQLite
        with self._uow(read_only=True) as uow:
            version = uow.plan_versions.active(tenant_id, at)
        return (None, None) if version is None else (version, self.cache.get(version))

    def what_if(self, principal: Principal, tenant_id: str, candidate: int, cdrs: Iterable[Any],
                plan_for: Callable[[Any], str]) -> tuple[int, int, Any]:
        from engine.rating.whatif import what_if

        principal.require(Permission.PLAN_READ)
        principal.require(Permission.RATING)
        tenant = self._tenant(principal, tenant_id)
        cand = self.get(principal, tenant, candidate)
        active, compiled = self.compiled_at(tenant, self._clock.now())
        if active is None:
            raise FailedPrecondition("NO_ACTIVE_PLAN_SET", f"tenant {tenant} has no active plan set version to compare with", tenant)
        return active.version, cand.version, what_if(cdrs, self.cache.get(cand), compiled, plan_for, self.cdr_limits)

    def what_if_period(self, principal: Principal, tenant_id: str, candidate: int, start: datetime, end: datetime,
                       plan_for: Callable[[Any], str]) -> tuple[int, int, Any]:
        """What-if over the stored CDRs of a period: the tenant's own, and for the operator all its MVNOs' too
        (the operator's plan set prices their wholesale traffic)."""
        errors = ErrorList()
        check_period(start, end, errors, "compare")
        errors.raise_if_any("cannot compare plan sets")
        if self._stored_cdrs is None:
            raise FailedPrecondition("NO_CDR_STORE", "this server keeps no stored CDRs to replay")
        tenant = self._tenant(principal, tenant_id)
        scope = None if principal.is_operator and tenant == principal.tenant_id else {tenant}
        # a RAP return is on record, not charged: it is no part of what a tariff would earn
        stored = (row for row in self._stored_cdrs(scope, start, end) if not returned_by_rap(row[_ATTRS]))
        return self.what_if(principal, tenant, candidate, stored, plan_for)


__all__ = ["Owner", "PlanChange", "PlanDesk", "PlanSetVersion", "PlanUnitOfWork", "diff_ir", "validate_files"]
