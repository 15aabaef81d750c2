"""``kind: rate_table`` — rate rows shared by several tariff plans (RTT_...).

Same row syntax as a plan version's ``rates``; a version names it with
``rate_table:`` and may override single rows inline.
"""

from __future__ import annotations

from pathlib import Path

from engine.plans.kinds.common import Ctx
from engine.plans.kinds.tariff_plan import parse_rows
from engine.plans.model import RateTable
from engine.yamlio import Fields, MarkedMap


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> RateTable:
    f = Fields(node, "rate_table", ctx.problems)
    f.optional("kind", str)
    tid = ctx.ident(f, "rate_table")
    name = f.optional("name", str, default=tid)
    f.optional("description", str)
    raw = f.required("rates", list) or []
    f.done()
    return RateTable(tid, name, tuple(parse_rows(raw, ctx, tid, node.mark)), node.mark)
