"""Who is calling: principals, roles, privileges and bearer tokens.

Tokens are random secrets of the form ``rbt_<token_id>_<secret>``; only a
SHA-256 of the secret is stored (the secret has 256 bits of entropy, so a
fast hash is the right tool, unlike passwords).

A token a security officer issues through the API is under dual control: its secret has two halves,
``rbt_<token_id>_<issuer's half>.<approver's half>``.  The issuing officer gets the first half, a second security
officer who approves the request gets the second (engine/tokens.py); only a SHA-256 of each half is stored, and
until the approval the token authenticates nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from engine.errors import PermissionDenied, Unauthenticated


class Role(str, Enum):
    OPERATOR_ADMIN = "operator_admin"
    MVNO_ADMIN = "mvno_admin"
    CSR = "csr"
    PRODUCT_MANAGER = "product_manager"
    AUDITOR = "auditor"
    # grants the privileges no administrator may give itself (voucher.reveal_pin), two officers per grant; operator tenant only
    SECURITY_OFFICER = "security_officer"


class Permission(str, Enum):
    TENANT_READ = "tenant.read"
    TENANT_WRITE = "tenant.write"
    TOKEN_ADMIN = "token.admin"
    SUBSCRIBER_READ = "subscriber.read"
    SUBSCRIBER_WRITE = "subscriber.write"
    PLAN_READ = "plan.read"
    PLAN_WRITE = "plan.write"
    RATING = "rating.use"            # price CDRs and calls: what-if, RateCdr(s) without counters, AuthorizeCall, counters
    RATING_STORE = "rating.store"    # what stores usage or rewrites the ledger: RateCdr(s) with counters, Rerate, mediation --rate
    VOUCHER_READ = "voucher.read"
    VOUCHER_WRITE = "voucher.write"  # block, mark damaged / stolen, expire, amend expiry, lift recharge bars
    VOUCHER_ADMIN = "voucher.admin"  # what creates or moves value: generate, activate, unblock, purge, amend value / owner
    VOUCHER_REDEEM = "voucher.redeem"
    VOUCHER_REVEAL_PIN = "voucher.reveal_pin"
    VOUCHER_KEYS = "voucher.keys"
    MEDIATION = "mediation.run"
    AUDIT_READ = "audit.read"
    PRIVILEGE_GRANT = "privilege.grant"  # issue, approve or reject tokens carrying voucher.reveal_pin (security officers only)
    BILLING_READ = "billing.read"          # accounts, invoices, bill runs
    BILLING_WRITE = "billing.write"        # accounts, one-off charges and credit notes (up to the profile's csr_limit), drafts
    BILLING_PREVIEW = "billing.preview"    # dry-run bills
    BILLING_ISSUE = "billing.issue"        # issue invoices (bill runs, drafts, re-bills), credit notes above the limit, write-offs


_READ = {Permission.TENANT_READ, Permission.SUBSCRIBER_READ, Permission.PLAN_READ, Permission.VOUCHER_READ, Permission.AUDIT_READ,
         Permission.BILLING_READ}

# separation of duties: no administrator role holds the reveal privilege or its grant, so an administrator cannot
# issue itself (or anyone) a token that reveals PINs.  The security officer is the one role holding both token
# administration and privilege.grant; it holds no voucher permission, and engine/tokens.py (_check_separation) lets
# it issue only security officer tokens and CSR or auditor tokens carrying the reveal privilege.  Every token a
# security officer issues is pending until a second security officer approves it (engine/tokens.py, TokenDesk.approve):
# not the issuer (by subject or token), not the grantee, not the token itself; the issuer holds only the first half of
# its secret and the approver only the second, so no one officer alone holds a token that reveals or exports PINs, nor
# a second security officer token to approve its own requests with.  Tokens issued before migration 0003_token_approval
# keep working: they were issued under the one-officer rule (TokenApproval.NOT_REQUIRED)
_NOT_FOR_ADMINS = {Permission.VOUCHER_REVEAL_PIN, Permission.PRIVILEGE_GRANT}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    # the reveal privilege is never implied by a role: it is granted per token, by a security officer
    Role.OPERATOR_ADMIN: frozenset(set(Permission) - _NOT_FOR_ADMINS),
    Role.MVNO_ADMIN: frozenset(set(Permission) - _NOT_FOR_ADMINS - {Permission.TENANT_WRITE, Permission.VOUCHER_KEYS}),
    # rating.store is not the CSR's (usage it stored would go on a bill past its csr_limit) nor the product manager's
    # (what-if, previews and dry runs: prices, never the customers' ledger)
    Role.CSR: frozenset(
        {Permission.TENANT_READ, Permission.SUBSCRIBER_READ, Permission.SUBSCRIBER_WRITE, Permission.PLAN_READ, Permission.RATING,
         Permission.VOUCHER_READ, Permission.VOUCHER_REDEEM, Permission.VOUCHER_WRITE,
         Permission.BILLING_READ, Permission.BILLING_WRITE, Permission.BILLING_PREVIEW}
    ),
    Role.PRODUCT_MANAGER: frozenset(
        {Permission.TENANT_READ, Permission.PLAN_READ, Permission.PLAN_WRITE, Permission.RATING, Permission.SUBSCRIBER_READ,
         Permission.BILLING_READ, Permission.BILLING_PREVIEW}
    ),
    Role.AUDITOR: frozenset(_READ),
    Role.SECURITY_OFFICER: frozenset({Permission.TENANT_READ, Permission.AUDIT_READ, Permission.TOKEN_ADMIN,
                                      Permission.PRIVILEGE_GRANT}),
}

# privileges that may be granted on top of a role; the lifecycle rules in rules/lifecycle
# name the last two (`requires_privilege`) for purging batches and recovering stolen vouchers
GRANTABLE_PRIVILEGES = frozenset({Permission.VOUCHER_REVEAL_PIN.value, "voucher.purge", "voucher.recover"})
# ... and the ones only a holder of privilege.grant (a security officer) may put on a token
GUARDED_PRIVILEGES = frozenset({Permission.VOUCHER_REVEAL_PIN.value})
# roles a security officer may issue: its own, and the non-administrative roles of the staff who reveal PINs
SECURITY_OFFICER_ISSUES = frozenset({Role.SECURITY_OFFICER, Role.CSR, Role.AUDITOR})

TOKEN_PREFIX = "rbt"
# joins the issuer's and the approver's halves of a dual-control token's secret (token_urlsafe never writes a dot)
HALF_SEPARATOR = "."


class TokenApproval(str, Enum):
    """Where a token stands under dual control; EXPIRED is never stored: a PENDING request past its approval time."""

    NOT_REQUIRED = "not_required"   # issued on the server host, by an administrator, or before dual control
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    subject: str
    tenant_id: str
    role: Role
    token_id: str = ""
    # True when the caller's tenant is the MNO (operator): it may act on its MVNOs.
    is_operator: bool = False
    privileges: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role] or permission.value in self.privileges

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDenied(f"role {self.role.value} lacks permission {permission.value}")

    def can_see_tenant(self, tenant_id: str) -> bool:
        return self.is_operator or tenant_id == self.tenant_id

    def require_tenant(self, tenant_id: str) -> None:
        """Refuse any object of another tenant (the MNO sees its MVNOs)."""
        if not self.can_see_tenant(tenant_id):
            raise PermissionDenied(f"tenant {self.tenant_id} may not act on tenant {tenant_id}")

    def tenants_listed(self, tenant_id: str = "") -> set[str] | None:
        """The tenants a list call covers: ``tenant_id`` when given (the caller must be allowed to see it), else the
        caller's own, or every tenant (None) for the operator."""
        if tenant_id:
            self.require_tenant(tenant_id)
            return {tenant_id}
        return None if self.is_operator else {self.tenant_id}


SYSTEM = Principal(subject="system", tenant_id="", role=Role.OPERATOR_ADMIN, is_operator=True)


@dataclass(frozen=True)
class ApiToken:
    token_id: str
    subject: str
    tenant_id: str
    role: Role
    secret_hash: str
    create_time: datetime
    expire_time: datetime
    revoke_time: datetime | None = None
    privileges: frozenset[str] = field(default_factory=frozenset)
    # dual control (0003_token_approval): who issued it, the approval state, its deadline, who decided and when, and
    # the hash of the approver's half of the secret (empty until approved)
    approval: TokenApproval = TokenApproval.NOT_REQUIRED
    issued_by: str = ""
    issued_by_token: str = ""
    approval_expire_time: datetime | None = None
    decided_by: str = ""
    decided_by_token: str = ""
    decide_time: datetime | None = None
    approval_hash: str = ""

    def approval_at(self, now: datetime) -> TokenApproval:
        if self.approval is TokenApproval.PENDING and self.approval_expire_time is not None and now >= self.approval_expire_time:
            return TokenApproval.EXPIRED
        return self.approval

    def secret_matches(self, secret: str) -> bool:
        """The whole secret: one part, or the issuer's and the approver's halves of an approved dual-control token."""
        return bearer_secret_matches(secret, self.secret_hash, self.approval_hash)

    def check(self, now: datetime) -> None:
        if self.revoke_time is not None:
            raise Unauthenticated("token has been revoked")
        if now >= self.expire_time:
            raise Unauthenticated("token has expired")
        state = self.approval_at(now)
        if state is TokenApproval.PENDING:
            raise Unauthenticated(f"token {self.token_id} awaits approval by a second security officer (two-person rule)")
        if state is TokenApproval.EXPIRED:
            raise Unauthenticated(f"token {self.token_id} was never approved: its approval request expired")
        if state is TokenApproval.REJECTED:
            raise Unauthenticated(f"token {self.token_id} was rejected by a security officer")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_token_secret() -> tuple[str, str, str]:
    """Returns (token_id, bearer string, secret hash)."""
    token_id = secrets.token_hex(8)
    secret, secret_hash = new_secret_half()
    return token_id, f"{TOKEN_PREFIX}_{token_id}_{secret}", secret_hash


def new_secret_half() -> tuple[str, str]:
    """A random secret of 256 bits and its hash: a whole token's, or the approver's half of a dual-control one."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_secret(secret)


def split_bearer(bearer: str) -> tuple[str, str]:
    """``rbt_<id>_<secret>`` -> (id, secret); raises Unauthenticated on anything else."""
    parts = bearer.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        raise Unauthenticated("malformed bearer token")
    return parts[1], parts[2]


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def bearer_secret_matches(secret: str, secret_hash: str, approval_hash: str) -> bool:
    """``secret`` against a token's hashes: the whole secret, or with ``approval_hash`` set, ``<first>.<second>``
    where each half matches its own hash (a first half alone never matches an approved token)."""
    if not approval_hash:
        return secret_matches(secret, secret_hash)
    first, dot, second = secret.partition(HALF_SEPARATOR)
    # both compared whatever the first gives, so the time taken says nothing about which half was wrong
    return bool(dot) & secret_matches(first, secret_hash) & secret_matches(second, approval_hash)
