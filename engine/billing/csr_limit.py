"""What a caller without ``billing.issue`` (a CSR) may move in money at once: the billing profile's ``csr_limit``.

A limit that one request could be split under would bound nothing: where amounts add up on one object (the credit
notes of one invoice, a CSR's one-off charges on one account until they are billed, the fees of the add-ons a CSR
bought on one account in its bill cycle), the sum is held to the limit, not each part (docs/BILLING.md, "Roles,
limits, tenants").  ``before`` reads that sum under the object's row lock, so that two requests at once count each
other."""

from __future__ import annotations

from typing import Callable

from engine.billing.profile import BillingProfile
from engine.errors import PermissionDenied
from engine.identity import Permission, Principal
from engine.money import format_amount


def within_csr_limit(principal: Principal, profile: BillingProfile | None, amount: int, currency: str, what: str,
                     before: Callable[[], int] | None = None, of_what: str = "") -> None:
    """Refuse ``amount`` (``what``: "a credit note") above the profile's ``csr_limit`` for a caller without
    ``billing.issue``; ``before``: the amount already counted on the same object (``of_what``: "on this invoice"),
    read only for such a caller."""
    if principal.can(Permission.BILLING_ISSUE):
        return
    limit = profile.csr_limit_micros if profile is not None else 0
    if amount > limit:
        raise PermissionDenied(f"{what} above {format_amount(limit)} {currency} needs an operator or MVNO admin "
                               f"(this one: {format_amount(amount)})")
    earlier = before() if before is not None else 0
    if earlier + amount > limit:
        raise PermissionDenied(f"{what} that takes the total {of_what} above {format_amount(limit)} {currency} needs an operator "
                               f"or MVNO admin (before: {format_amount(earlier)}, this one: {format_amount(amount)})")
