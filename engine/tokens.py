"""Use cases of TokenService and the authentication check every RPC goes through."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import NamedTuple

from engine import audit
from engine.clock import Clock
from engine.errors import ErrorList, FailedPrecondition, NotFound, PermissionDenied, Unauthenticated
from engine.identity import (
    GRANTABLE_PRIVILEGES,
    GUARDED_PRIVILEGES,
    SECURITY_OFFICER_ISSUES,
    ApiToken,
    Permission,
    Principal,
    Role,
    TokenApproval,
    bearer_secret_matches,
    new_secret_half,
    new_token_secret,
    split_bearer,
)
from engine.paging import Page
from engine.text import NO_CONTROLS, has_controls
from engine.ports import UnitOfWork, UnitOfWorkFactory
from engine.model import TenantKind, TenantStatus

MAX_TTL_SECONDS = 366 * 24 * 3600
DEFAULT_APPROVAL_SECONDS = 24 * 3600
MVNO_ROLES = frozenset({Role.MVNO_ADMIN, Role.CSR, Role.PRODUCT_MANAGER, Role.AUDITOR})


@dataclass(frozen=True, slots=True)
class _Known:
    secret_hash: str
    approval_hash: str         # the approver's half of a dual-control token's secret ("" for a token of one part)
    principal: Principal
    until: datetime            # when the entry must be read from the store again: its freshness or the token's expiry


class AuthCache:
    """Principals of recently checked tokens, so a busy client's every call does not read the token and its tenant.

    An entry is used for ``ttl`` at most, and only with the right secret and before the token expires.  A token
    revoked or a tenant suspended through this process is forgotten at once (:meth:`forget_token`,
    :meth:`forget_tenant`); through another replica sharing the database, it is refused here within ``ttl``.
    ``ttl`` zero turns the cache off.  Only accepted tokens are kept: a refusal (a token pending approval, rejected
    or expired) is never remembered, so an approval takes effect at the token's next call on every replica.

    Forgetting is counted: every forget takes the next number of a counter and stamps the token (or tenant) with it.
    An authentication notes the counter (:meth:`mark`) before it reads the store, and :meth:`put` drops what it read
    when its token or tenant was forgotten since: a read that began before a revocation committed cannot put the
    revoked principal back.  An open call compares its mark the same way (:meth:`forgotten_since`)."""

    def __init__(self, ttl: timedelta, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()
        self._count = 0                       # forgets so far
        self._floor = 0                       # every mark below it counts as forgotten (the stamps were let go)
        self._token_stamps: dict[str, int] = {}
        self._tenant_stamps: dict[str, int] = {}

    def get(self, token_id: str, secret: str, now: datetime) -> Principal | None:
        known = self.lookup(token_id, secret, now)
        return None if known is None else known.principal

    def lookup(self, token_id: str, secret: str, now: datetime) -> _Known | None:
        """:meth:`get`, with when the entry is to be read again."""
        known = self._known.get(token_id)
        if known is None or now >= known.until:
            return None
        if not bearer_secret_matches(secret, known.secret_hash, known.approval_hash):
            return None   # a wrong secret goes the long way and is refused there
        return known

    def mark(self) -> int:
        """The forget counter now: noted before a read of the store, given back to :meth:`put` and :meth:`forgotten_since`."""
        return self._count

    def forgotten_since(self, token_id: str, tenant_id: str, mark: int) -> bool:
        """Whether the token or its tenant was forgotten after ``mark`` was taken."""
        return (self._token_stamps.get(token_id, 0) > mark or self._tenant_stamps.get(tenant_id, 0) > mark
                or mark < self._floor)

    def put(self, token: ApiToken, principal: Principal, now: datetime, mark: int | None = None) -> None:
        """Keep what a read that began at ``mark`` found, unless the token or tenant was forgotten since."""
        if self.ttl <= timedelta(0):
            return
        with self._lock:
            if mark is not None and self.forgotten_since(token.token_id, principal.tenant_id, mark):
                return
            if len(self._known) >= self.max_entries:
                self._known.clear()   # bounded: a burst of distinct tokens costs re-reads, never memory
            self._known[token.token_id] = _Known(token.secret_hash, token.approval_hash, principal, min(now + self.ttl, token.expire_time))

    # Readers (mark, lookup, forgotten_since) take no lock, so the order of each step below is what keeps them right:
    # the entry goes before the counter moves (a check that still finds the entry took its mark before the stamp, so
    # its open call is refused at its next recheck), and the floor rises before the stamps are let go (a recheck that
    # no longer finds a stamp finds the floor; forgotten_since reads the stamps first, the floor last).

    def forget_token(self, token_id: str) -> None:
        with self._lock:
            self._known.pop(token_id, None)
            self._stamp(self._token_stamps, token_id)

    def forget_tenant(self, tenant_id: str) -> None:
        with self._lock:
            for token_id in [k for k, v in list(self._known.items()) if v.principal.tenant_id == tenant_id]:
                self._known.pop(token_id, None)
            self._stamp(self._tenant_stamps, tenant_id)

    def _stamp(self, stamps: dict[str, int], key: str) -> None:
        count = self._count + 1
        if len(self._token_stamps) + len(self._tenant_stamps) >= self.max_entries:
            # bounded too: the stamps are let go and every read begun before now counts as forgotten (re-read once)
            self._floor = count
            self._token_stamps.clear()
            self._tenant_stamps.clear()
        stamps[key] = count
        self._count = count


class Checked(NamedTuple):
    """A bearer checked by :meth:`TokenDesk.check`: its principal, the cache's mark taken before the check, and when it
    must be checked again (the cache's freshness or the token's expiry, whichever comes first)."""

    principal: Principal
    mark: int
    recheck_at: datetime


NO_AUTH_CACHE = AuthCache(timedelta(0))


class TokenDesk:
    """Issue, approve, reject, revoke and list tokens, and authenticate bearers.

    Dual control: a token a security officer issues (a security officer token, or one carrying voucher.reveal_pin)
    is PENDING and authenticates nothing until a second security officer approves it within ``approval_seconds``.
    The issuer receives the first half of its secret, the approver the second; the holder joins them with a dot."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, default_ttl_seconds: int, cache: AuthCache = NO_AUTH_CACHE,
                 approval_seconds: int = DEFAULT_APPROVAL_SECONDS) -> None:
        self._uow = uow
        self._clock = clock
        self._default_ttl = default_ttl_seconds
        self.cache = cache
        if not 0 < approval_seconds <= MAX_TTL_SECONDS:
            raise ValueError(f"token_approval_seconds must be between 1 and {MAX_TTL_SECONDS}, not {approval_seconds}")
        self.approval_seconds = approval_seconds

    def authenticate(self, bearer: str) -> Principal:
        """Bearer string -> principal; any failure is Unauthenticated and says nothing about the secret."""
        return self.check(bearer).principal

    def check(self, bearer: str) -> Checked:
        """:meth:`authenticate`, with what an open call needs to check the bearer again (:meth:`recheck`)."""
        token_id, secret = split_bearer(bearer)
        now = self._clock.now()
        mark = self.cache.mark()   # before any read: a forget from here on keeps this read out of the cache
        known = self.cache.lookup(token_id, secret, now)
        if known is not None:
            return Checked(known.principal, mark, known.until)
        with self._uow(read_only=True) as uow:
            token = uow.tokens.get(token_id)
            if token is None or not token.secret_matches(secret):
                raise Unauthenticated("unknown bearer token")
            token.check(now)
            tenant = uow.tenants.get(token.tenant_id)
        if tenant is None:
            raise Unauthenticated("token's tenant no longer exists")
        if tenant.status is TenantStatus.SUSPENDED:
            raise PermissionDenied(f"tenant {tenant.tenant_id} is suspended")
        principal = Principal(
            subject=token.subject,
            tenant_id=token.tenant_id,
            role=token.role,
            token_id=token.token_id,
            is_operator=tenant.kind is TenantKind.MNO,
            privileges=token.privileges,
        )
        self.cache.put(token, principal, now, mark)
        return Checked(principal, mark, min(now + self.cache.ttl, token.expire_time))

    def recheck(self, bearer: str, checked: Checked) -> Checked:
        """An open call's bearer, checked again through :meth:`check` once the cache's freshness has passed, the token
        has expired, or the token or its tenant was forgotten (revoked, suspended through this process) since the last
        check; otherwise ``checked`` as it is.  Raises as :meth:`authenticate` does."""
        p = checked.principal
        if self._clock.now() < checked.recheck_at and not self.cache.forgotten_since(p.token_id, p.tenant_id, checked.mark):
            return checked
        return self.check(bearer)

    def issue(
        self,
        principal: Principal | None,
        subject: str,
        tenant_id: str,
        role: Role | None,
        ttl_seconds: int = 0,
        privileges: frozenset[str] = frozenset(),
    ) -> tuple[ApiToken, str]:
        """Returns the stored token and the bearer string (shown once). ``principal`` None = bootstrap (the server
        host).  A token a security officer issues is PENDING and the bearer string is the first half of its secret."""
        if principal is not None:
            principal.require(Permission.TOKEN_ADMIN)
        errors = ErrorList()
        if not subject.strip() or len(subject) > 200:
            errors.add("subject", "must be 1-200 characters naming the person or service")
        elif has_controls(subject):
            # the subject is written into every access-log line of the token's calls: a newline would forge lines
            errors.add("subject", NO_CONTROLS)
        if role is None:
            errors.add("role", "must be one of OPERATOR_ADMIN, MVNO_ADMIN, CSR, PRODUCT_MANAGER, AUDITOR, SECURITY_OFFICER")
        if ttl_seconds < 0 or ttl_seconds > MAX_TTL_SECONDS:
            errors.add("ttl_seconds", f"must be between 0 (default) and {MAX_TTL_SECONDS}")
        unknown = sorted(set(privileges) - GRANTABLE_PRIVILEGES)
        if unknown:
            errors.add("privileges", f"unknown privilege(s): {', '.join(unknown)}")
        errors.raise_if_any("cannot issue token")
        assert role is not None
        tenant_id = tenant_id or (principal.tenant_id if principal else "")
        guarded = sorted(set(privileges) & GUARDED_PRIVILEGES)
        if principal is not None:
            principal.require_tenant(tenant_id)
            if not principal.is_operator and privileges:
                raise PermissionDenied("only the operator grants extra privileges")
            _check_separation(principal, role, guarded)
        # what only a security officer may issue is under dual control when issued through the API (not on the host)
        dual = principal is not None and (bool(guarded) or role is Role.SECURITY_OFFICER)
        now = self._clock.now()
        with self._uow() as uow:
            tenant = uow.tenants.get(tenant_id)
            if tenant is None:
                raise NotFound("tenant", tenant_id)
            if tenant.kind is TenantKind.MVNO and role not in MVNO_ROLES:
                raise FailedPrecondition("ROLE_NOT_FOR_TENANT", f"role {role.value} is for the operator only", tenant_id)
            if tenant.kind is TenantKind.MNO and role is Role.MVNO_ADMIN:
                raise FailedPrecondition("ROLE_NOT_FOR_TENANT", "mvno_admin is for MVNO tenants", tenant_id)
            if tenant.kind is TenantKind.MVNO and role is Role.SECURITY_OFFICER:
                raise FailedPrecondition("ROLE_NOT_FOR_TENANT", "security_officer is for the operator only", tenant_id)
            token_id, bearer, secret_hash = new_token_secret()
            token = ApiToken(
                token_id=token_id,
                subject=subject.strip(),
                tenant_id=tenant_id,
                role=role,
                secret_hash=secret_hash,
                create_time=now,
                expire_time=now + timedelta(seconds=ttl_seconds or self._default_ttl),
                privileges=frozenset(privileges),
            )
            if dual:
                assert principal is not None
                token = replace(token, approval=TokenApproval.PENDING, issued_by=principal.subject, issued_by_token=principal.token_id,
                                approval_expire_time=now + timedelta(seconds=self.approval_seconds))
            uow.tokens.add(token)
            actor = principal or Principal(subject="bootstrap", tenant_id=tenant_id, role=Role.OPERATOR_ADMIN, is_operator=True)
            uow.audit.append(audit.entry(actor, now, "token.issue", "token", token_id, {}, _token_audit(token), tenant_id))
            for privilege in guarded:
                # the second, separately audited step: who granted which guarded privilege to whom
                uow.audit.append(audit.entry(actor, now, "privilege.grant", "token", token_id, {},
                                             {"privilege": privilege, "grantee": token.subject, "grantee_role": role.value,
                                              "granted_by_role": actor.role.value}, tenant_id))
            uow.commit()
        return token, bearer

    def issue_security_officer(self, subject: str, ttl_seconds: int = 0) -> tuple[ApiToken, str]:
        """The first security officer of an installation, issued on the server host (``rulebill security-officer``):
        no API caller can create one without already being a security officer."""
        with self._uow(read_only=True) as uow:
            operators = [t for t in uow.tenants.list(None, None, None, 1000) if t.kind is TenantKind.MNO]
        if not operators:
            raise FailedPrecondition("NO_OPERATOR", "there is no operator tenant yet: run `rulebill bootstrap` first", "tenants")
        return self.issue(None, subject, operators[0].tenant_id, Role.SECURITY_OFFICER, ttl_seconds)

    def approve(self, principal: Principal, token_id: str) -> tuple[ApiToken, str]:
        """The second security officer's approval of a pending token: returns the token and the second half of its
        secret (shown once, to this officer only; the holder joins it to the issuer's half with a dot)."""
        second, second_hash = new_secret_half()
        token = self._decide(principal, token_id, TokenApproval.APPROVED, "", second_hash)
        return token, second

    def reject(self, principal: Principal, token_id: str, reason: str = "") -> ApiToken:
        """A second security officer's refusal of a pending token: it never works.  (Its issuer withdraws a request
        of its own with RevokeToken.)"""
        return self._decide(principal, token_id, TokenApproval.REJECTED, reason)

    def _decide(self, principal: Principal, token_id: str, decision: TokenApproval, reason: str, approval_hash: str = "") -> ApiToken:
        verb = "approve" if decision is TokenApproval.APPROVED else "reject"
        if principal.role is not Role.SECURITY_OFFICER or not principal.is_operator:
            raise PermissionDenied(f"only a security officer of the operator may {verb} a token (role {principal.role.value})")
        principal.require(Permission.PRIVILEGE_GRANT)
        if len(reason) > 500:
            errors = ErrorList()
            errors.add("reason", "must be at most 500 characters")
            errors.raise_if_any(f"cannot {verb} token")
        now = self._clock.now()
        with self._uow() as uow:
            token = _unrevoked_token(uow, principal, token_id)
            state = token.approval_at(now)
            if state is TokenApproval.EXPIRED:
                raise FailedPrecondition("APPROVAL_EXPIRED", f"the approval request of token {token_id} expired at "
                                         f"{token.approval_expire_time:%Y-%m-%d %H:%M:%S} UTC: its issuer issues a new one", token_id)
            if state is not TokenApproval.PENDING:
                raise FailedPrecondition("TOKEN_NOT_PENDING", f"token {token_id} is not awaiting approval ({state.value})", token_id)
            _check_second_officer(principal, token, verb)
            decided = replace(token, approval=decision, decided_by=principal.subject, decided_by_token=principal.token_id,
                              decide_time=now, approval_hash=approval_hash)
            if not uow.tokens.decide(decided):
                # another officer decided, or the issuer withdrew (revoked) the request, since it was read: their call
                # stands and this one changes nothing (nor is it audited)
                raise FailedPrecondition("TOKEN_NOT_PENDING", f"token {token_id} was decided or revoked by a concurrent call; "
                                         "read it again", token_id)
            document = {**_token_audit(decided), "issued_by": token.issued_by, "issued_by_token": token.issued_by_token,
                        "decided_by": principal.subject, "decided_by_token": principal.token_id}
            if reason:
                document["reason"] = reason
            # the whole request in the entry (grantee, role, privileges, issuer), not only what changed
            uow.audit.append(audit.entry(principal, now, f"token.{verb}", "token", token_id, {"approval": token.approval.value},
                                         document, token.tenant_id))
            uow.commit()
        self.cache.forget_token(token_id)
        return decided

    def revoke(self, principal: Principal, token_id: str) -> ApiToken:
        principal.require(Permission.TOKEN_ADMIN)
        now = self._clock.now()
        with self._uow() as uow:
            token = _unrevoked_token(uow, principal, token_id)
            revoked = replace(token, revoke_time=now)
            if not uow.tokens.revoke(token_id, now):
                raise FailedPrecondition("TOKEN_REVOKED", f"token {token_id} is already revoked", token_id)
            uow.audit.append(audit.entry(principal, now, "token.revoke", "token", token_id, _token_audit(token), _token_audit(revoked), token.tenant_id))
            uow.commit()
        self.cache.forget_token(token_id)
        return revoked

    def list(self, principal: Principal, tenant_id: str, include_revoked: bool, page: Page) -> list[ApiToken]:
        principal.require(Permission.TOKEN_ADMIN)
        tenants = principal.tenants_listed(tenant_id)
        now = self._clock.now()
        with self._uow() as uow:
            # a pending request past its approval time is listed as EXPIRED (never stored: it is a matter of time)
            return [replace(t, approval=t.approval_at(now)) for t in uow.tokens.list(tenants, include_revoked, page.after, page.size)]

    def whoami(self, principal: Principal) -> ApiToken:
        with self._uow() as uow:
            token = uow.tokens.get(principal.token_id)
        if token is None:
            raise NotFound("token", principal.token_id)
        return token


def _check_separation(principal: Principal, role: Role, guarded: list[str]) -> None:
    """Administrators cannot grant themselves (or anyone) the guarded privileges or the role that grants them;
    a security officer issues nothing else."""
    grants = bool(guarded) or role is Role.SECURITY_OFFICER
    if grants and not principal.can(Permission.PRIVILEGE_GRANT):
        what = f"privilege {', '.join(guarded)}" if guarded else "the security_officer role"
        raise PermissionDenied(f"only a security officer grants {what}; an administrator cannot issue it (see README: Roles)")
    if principal.role is Role.SECURITY_OFFICER and (role not in SECURITY_OFFICER_ISSUES or not grants):
        raise PermissionDenied("a security officer issues only security_officer tokens and CSR or auditor tokens "
                               "carrying voucher.reveal_pin")


def _unrevoked_token(uow: UnitOfWork, principal: Principal, token_id: str) -> ApiToken:
    """The token ``principal`` acts on: NOT_FOUND when it does not exist or is another tenant's, refused when revoked."""
    token = uow.tokens.get(token_id)
    if token is None or not principal.can_see_tenant(token.tenant_id):
        raise NotFound("token", token_id)
    if token.revoke_time is not None:
        raise FailedPrecondition("TOKEN_REVOKED", f"token {token_id} is already revoked", token_id)
    return token


def _check_second_officer(principal: Principal, token: ApiToken, verb: str) -> None:
    """The two-person rule: the decision is a second person's, not the issuer's (by subject or by token), not the
    grantee's, and not the pending token's own.  Subjects are compared without case or surrounding spaces."""
    me = principal.subject.strip().casefold()
    if principal.token_id and principal.token_id == token.token_id:
        raise PermissionDenied(f"two-person rule: token {token.token_id} cannot {verb} itself")
    if (principal.token_id and principal.token_id == token.issued_by_token) or me == token.issued_by.strip().casefold():
        raise PermissionDenied(f"two-person rule: {principal.subject} issued token {token.token_id} and cannot {verb} it; "
                               "a second security officer must")
    if me == token.subject.strip().casefold():
        raise PermissionDenied(f"two-person rule: {principal.subject} cannot {verb} a token issued to themselves")


def _token_audit(token: ApiToken) -> dict[str, object]:
    return {
        "subject": token.subject,
        "tenant_id": token.tenant_id,
        "role": token.role.value,
        "expire_time": token.expire_time,
        "revoke_time": token.revoke_time,
        "privileges": sorted(token.privileges),
        "approval": token.approval.value,
    }
