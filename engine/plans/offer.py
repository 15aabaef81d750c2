"""Which tariff plans a tenant may put subscribers on: the engine's :class:`~engine.ports.PlanCatalogue`.

A retail plan is offered by the tenant named in its file (``tenant:``).  The plan set
consulted is the tenant's own active one, else its operator's.  Before any plan set is
active (a fresh installation being set up) every well-formed plan id is accepted, so
subscribers can be provisioned first and plans uploaded after.
"""

from __future__ import annotations

from typing import Any, Callable

from engine.clock import Clock

class OfferedPlans:
    def __init__(self, compiled_at: Callable[[str, Any], tuple[Any, Any]], parent_of: Callable[[str], str], clock: Clock) -> None:
        self._compiled_at = compiled_at
        self._parent_of = parent_of
        self._clock = clock

    def _offered(self, plan_id: str, tenant_id: str) -> tuple[bool, Any]:
        """(whether a plan set is active for the tenant, the tariff plan it offers the tenant under that id or None)."""
        now = self._clock.now()
        for owner in (tenant_id, self._parent_of(tenant_id)):
            if not owner:
                continue
            version, compiled = self._compiled_at(owner, now)
            if version is not None:
                plan = compiled.plans.get(plan_id)
                return True, plan if plan is not None and plan.tenant == tenant_id else None
        return False, None

    def has_tariff_plan(self, plan_id: str, tenant_id: str) -> bool:
        active, plan = self._offered(plan_id, tenant_id)
        return plan is not None or not active

    def plan_currency(self, plan_id: str, tenant_id: str) -> str:
        """The currency the tariff plan charges in; "" when no plan set is active or it does not offer the plan."""
        _, plan = self._offered(plan_id, tenant_id)
        return plan.currency if plan is not None else ""
