"""Use cases of TokenService and the authentication check every RPC goes through."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

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
    new_token_secret,
    secret_matches,
    split_bearer,
)
from engine.paging import Page
from engine.ports import UnitOfWorkFactory
from engine.model import TenantKind, TenantStatus

MAX_TTL_SECONDS = 366 * 24 * 3600
MVNO_ROLES = frozenset({Role.MVNO_ADMIN, Role.CSR, Role.PRODUCT_MANAGER, Role.AUDITOR})


@dataclass(frozen=True, slots=True)
class _Known:
    secret_hash: str
    principal: Principal
    expire_time: datetime      # the token's own expiry
    fresh_until: datetime      # when the entry must be read from the store again


class AuthCache:
    """Principals of recently checked tokens, so a busy client's every call does not read the token and its tenant.

    An entry is used for ``ttl`` at most, and only with the right secret and before the token expires.  A token
    revoked or a tenant suspended through this process is forgotten at once (:meth:`forget_token`,
    :meth:`forget_tenant`); through another replica sharing the database, it is refused here within ``ttl``.
    ``ttl`` zero turns the cache off."""

    def __init__(self, ttl: timedelta, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._known: dict[str, _Known] = {}

    def get(self, token_id: str, secret: str, now: datetime) -> Principal | None:
        known = self._known.get(token_id)
        if known is None or now >= known.fresh_until or now >= known.expire_time:
            return None
        if not secret_matches(secret, known.secret_hash):
            return None   # a wrong secret goes the long way and is refused there
        return known.principal

    def put(self, token_id: str, secret_hash: str, principal: Principal, expire_time: datetime, now: datetime) -> None:
        if self.ttl <= timedelta(0):
            return
        if len(self._known) >= self.max_entries:
            self._known.clear()   # bounded: a burst of distinct tokens costs re-reads, never memory
        self._known[token_id] = _Known(secret_hash, principal, expire_time, now + self.ttl)

    def forget_token(self, token_id: str) -> None:
        self._known.pop(token_id, None)

    def forget_tenant(self, tenant_id: str) -> None:
        for token_id in [k for k, v in list(self._known.items()) if v.principal.tenant_id == tenant_id]:
            self._known.pop(token_id, None)


NO_AUTH_CACHE = AuthCache(timedelta(0))


class TokenDesk:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, default_ttl_seconds: int, cache: AuthCache = NO_AUTH_CACHE) -> None:
        self._uow = uow
        self._clock = clock
        self._default_ttl = default_ttl_seconds
        self.cache = cache

    def authenticate(self, bearer: str) -> Principal:
        """Bearer string -> principal; any failure is Unauthenticated and says nothing about the secret."""
        token_id, secret = split_bearer(bearer)
        now = self._clock.now()
        cached = self.cache.get(token_id, secret, now)
        if cached is not None:
            return cached
        with self._uow(read_only=True) as uow:
            token = uow.tokens.get(token_id)
            if token is None or not secret_matches(secret, token.secret_hash):
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
        self.cache.put(token_id, token.secret_hash, principal, token.expire_time, now)
        return principal

    def issue(
        self,
        principal: Principal | None,
        subject: str,
        tenant_id: str,
        role: Role | None,
        ttl_seconds: int = 0,
        privileges: frozenset[str] = frozenset(),
    ) -> tuple[ApiToken, str]:
        """Returns the stored token and the bearer string (shown once). ``principal`` None = bootstrap."""
        if principal is not None:
            principal.require(Permission.TOKEN_ADMIN)
        errors = ErrorList()
        if not subject.strip() or len(subject) > 200:
            errors.add("subject", "must be 1-200 characters naming the person or service")
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

    def revoke(self, principal: Principal, token_id: str) -> ApiToken:
        principal.require(Permission.TOKEN_ADMIN)
        now = self._clock.now()
        with self._uow() as uow:
            token = uow.tokens.get(token_id)
            if token is None or not principal.can_see_tenant(token.tenant_id):
                raise NotFound("token", token_id)
            if token.revoke_time is not None:
                raise FailedPrecondition("TOKEN_REVOKED", f"token {token_id} is already revoked", token_id)
            revoked = replace(token, revoke_time=now)
            uow.tokens.update(revoked)
            uow.audit.append(audit.entry(principal, now, "token.revoke", "token", token_id, _token_audit(token), _token_audit(revoked), token.tenant_id))
            uow.commit()
        self.cache.forget_token(token_id)
        return revoked

    def list(self, principal: Principal, tenant_id: str, include_revoked: bool, page: Page) -> list[ApiToken]:
        principal.require(Permission.TOKEN_ADMIN)
        tenants = principal.tenants_listed(tenant_id)
        with self._uow() as uow:
            return uow.tokens.list(tenants, include_revoked, page.after, page.size)

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


def _token_audit(token: ApiToken) -> dict[str, object]:
    return {
        "subject": token.subject,
        "tenant_id": token.tenant_id,
        "role": token.role.value,
        "expire_time": token.expire_time,
        "revoke_time": token.revoke_time,
        "privileges": sorted(token.privileges),
    }
