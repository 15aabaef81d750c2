"""The operator file (``plans/operator.yaml``): the MNO and the MVNOs it runs.

Loaded by ``rulebill bootstrap`` to seed a fresh database with the sample operator.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine.currencies import is_currency
from engine.tenancy import TENANT_ID
from engine.yamlio import Fields, MarkedList, Problem, load_file


@dataclass(frozen=True)
class TenantSeed:
    tenant_id: str
    display_name: str
    currency: str


@dataclass(frozen=True)
class OperatorSeed:
    operator: TenantSeed
    mvnos: tuple[TenantSeed, ...]


def _tenant(node: object, what: str, problems: list[Problem]) -> TenantSeed | None:
    f = Fields(node, what, problems)
    tenant_id = f.required("tenant_id", str)
    name = f.required("display_name", str)
    currency = f.required("currency", str)
    f.done()
    if tenant_id is not None and not TENANT_ID.match(tenant_id):
        problems.append(Problem.at(f.node.mark_of("tenant_id"), "operator.bad-tenant-id", f"{what}.tenant_id: {tenant_id!r} is not a valid tenant id"))
        return None
    if currency is not None and not is_currency(currency):
        problems.append(Problem.at(f.node.mark_of("currency"), "operator.bad-currency", f"{what}.currency: {currency!r} is not ISO 4217"))
        return None
    if None in (tenant_id, name, currency):
        return None
    return TenantSeed(tenant_id, name, currency)


def load_operator(path: Path) -> tuple[OperatorSeed | None, list[Problem]]:
    problems: list[Problem] = []
    doc = load_file(path, problems)
    if doc is None:
        return None, problems
    f = Fields(doc, "operator file", problems)
    op = _tenant(f.required("operator", dict), "operator", problems)
    mvno_nodes = f.optional("mvnos", list, MarkedList())
    f.done()
    mvnos: list[TenantSeed] = []
    seen: set[str] = {op.tenant_id} if op else set()
    for i, node in enumerate(mvno_nodes):
        seed = _tenant(node, f"mvnos[{i}]", problems)
        if seed is None:
            continue
        if seed.tenant_id in seen:
            problems.append(Problem.at(mvno_nodes.mark_of(i), "operator.duplicate-tenant", f"tenant id {seed.tenant_id} appears twice"))
            continue
        seen.add(seed.tenant_id)
        mvnos.append(seed)
    if problems or op is None:
        return None, problems
    return OperatorSeed(op, tuple(mvnos)), problems
