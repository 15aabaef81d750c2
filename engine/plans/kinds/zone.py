"""``kind: zone`` — where the subscriber is: home, or a roaming zone of visited networks (ZN_...).

A CDR with no visited network is at home.  A visited network code (TADIG or
MCC+MNC) belongs to exactly one zone; a zone with ``other_networks: true``
catches networks listed nowhere else.
"""

from __future__ import annotations

from pathlib import Path

from engine.plans.kinds.common import Ctx
from engine.plans.model import Zone
from engine.yamlio import Fields, MarkedMap


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> Zone:
    f = Fields(node, "zone", ctx.problems)
    f.optional("kind", str)
    zid = ctx.ident(f, "zone")
    name = f.optional("name", str, default=zid)
    f.optional("description", str)
    home = bool(f.optional("home", bool, default=False))
    other = bool(f.optional("other_networks", bool, default=False))
    networks, _marks = ctx.str_list(f, "visited_networks")
    f.done()
    if home and (networks or other):
        ctx.problem(node.mark, "zones.home-with-networks", f"{zid}: the home zone cannot list visited networks")
    if not home and not networks and not other:
        ctx.problem(node.mark, "zones.empty", f"{zid}: list visited_networks, or set home: true or other_networks: true")
    return Zone(zid, name, home, other, tuple(networks), node.mark)
