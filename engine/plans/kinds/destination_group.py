"""``kind: destination_group`` — a named set of number prefixes (DST_...).

Prefixes are written inline (``prefixes: ["33", "34"]``) or, for the thousands
an international price list has, in a plain text file next to the YAML
(``prefix_file: world.prefixes``: one prefix per line, ``#`` comments), which
loads without building a YAML node per prefix.  A prefix may be written in
international format with a leading ``+`` (``"+33"`` is ``33``: CDR numbers
are compared without it).

A prefix may be in several groups (a country group and a "world" group): the
group with the higher ``priority`` (default 0) wins; two groups a plan version
uses together that share a prefix with the same priority are ambiguous.
"""

from __future__ import annotations

import re
from pathlib import Path

from engine.plans.kinds.common import Ctx
from engine.plans.model import DestinationGroup
from engine.yamlio import Fields, Mark, MarkedMap

PREFIX = re.compile(r"^[0-9A-Za-z*#.]{1,32}$")  # digits, short codes, APN names


def parse(node: MarkedMap, ctx: Ctx, path: Path) -> DestinationGroup:
    f = Fields(node, "destination_group", ctx.problems)
    f.optional("kind", str)
    gid = ctx.ident(f, "destination_group")
    name = f.optional("name", str, default=gid)
    f.optional("description", str)
    prefixes, marks = ctx.str_list(f, "prefixes")
    prefix_file = f.optional("prefix_file", str)
    priority = ctx.integer(f, "priority", 0, lo=-1_000_000, hi=1_000_000)
    f.done()
    if prefix_file is not None:
        file_prefixes, file_marks = _read_prefix_file(path.parent / prefix_file, node.mark_of("prefix_file"), ctx)
        prefixes.extend(file_prefixes)
        marks.extend(file_marks)
    if not prefixes:
        ctx.problem(node.mark, "destinations.empty", f"{gid}: a destination group needs at least one prefix (prefixes or prefix_file)")
    seen: dict[str, Mark] = {}
    keep: list[str] = []
    keep_marks: list[Mark] = []
    for written, m in zip(prefixes, marks):
        p = written[1:] if written.startswith("+") else written   # international format: "+33" is 33
        if not PREFIX.match(p):
            ctx.problem(m, "value.prefix", f"{gid}: {written!r} is not a number prefix")
            continue
        if p in seen:
            ctx.problem(m, "destinations.duplicate-prefix", f"{gid}: prefix {p!r} listed twice (first at line {seen[p].line})")
            continue
        seen[p] = m
        keep.append(p)
        keep_marks.append(m)
    return DestinationGroup(gid, name, tuple(keep), tuple(keep_marks), node.mark, priority)


def _read_prefix_file(path: Path, ref: Mark, ctx: Ctx) -> tuple[list[str], list[Mark]]:
    try:
        text = ctx.read_file(path)
    except OSError as exc:
        ctx.problem(ref, "ref.file", f"prefix_file {path.name!r} cannot be read: {exc.strerror or exc}")
        return [], []
    name = str(Path(ref.file).parent / path.name)
    out: list[str] = []
    marks: list[Mark] = []
    for n, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
            marks.append(Mark(name, n, 1))
    return out, marks
