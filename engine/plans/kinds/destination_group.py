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
from typing import Iterator, Sequence, overload

from engine.plans.kinds.common import Ctx
from engine.plans.model import DestinationGroup
from engine.yamlio import Fields, Mark, MarkedMap

PREFIX = re.compile(r"^[0-9A-Za-z*#.]{1,32}$")  # digits, short codes, APN names
# every prefix of a group, one per line, valid: one pass over the joined text rather than one match per prefix
_ALL_PREFIXES = re.compile(r"[0-9A-Za-z*#.]{1,32}(?:\n[0-9A-Za-z*#.]{1,32})*")
# a prefix file of nothing but prefixes, one a line (no "#": a comment would start there)
_PLAIN_FILE = re.compile(r"[0-9A-Za-z*.]{1,32}(?:\n[0-9A-Za-z*.]{1,32})*")


class LineMarks(Sequence[Mark]):
    """The marks of a prefix file's prefixes (file, line, column 1), made when one is read: a price list of 50,000
    prefixes then builds no Mark until a problem names one.  Equal to any sequence of the same marks."""

    __slots__ = ("file", "lines")

    def __init__(self, file: str, lines: Sequence[int]) -> None:
        self.file, self.lines = file, tuple(lines)

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, i: int) -> Mark: ...

    @overload
    def __getitem__(self, i: slice) -> "LineMarks": ...

    def __getitem__(self, i: int | slice) -> "Mark | LineMarks":
        if isinstance(i, slice):
            return LineMarks(self.file, self.lines[i])
        return Mark(self.file, self.lines[i], 1)

    def __iter__(self) -> Iterator[Mark]:
        file = self.file
        return (Mark(file, n, 1) for n in self.lines)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, LineMarks):
            return self.file == other.file and self.lines == other.lines
        return isinstance(other, Sequence) and len(other) == len(self) and tuple(self) == tuple(other)

    def __hash__(self) -> int:
        return hash(tuple(self))   # as the tuple of the same marks

    def __repr__(self) -> str:
        return f"LineMarks({self.file!r}, {len(self.lines)} lines)"


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
    all_marks: Sequence[Mark] = marks
    if prefix_file is not None:
        file_prefixes, file_marks = _read_prefix_file(path.parent / prefix_file, node.mark_of("prefix_file"), ctx)
        prefixes.extend(file_prefixes)
        all_marks = file_marks if not marks else [*marks, *file_marks]
    if not prefixes:
        ctx.problem(node.mark, "destinations.empty", f"{gid}: a destination group needs at least one prefix (prefixes or prefix_file)")
    # the common group: no "+", every prefix valid, none twice -- kept as written, without a look at each
    joined = "\n".join(prefixes)
    if prefixes and joined.count("\n") == len(prefixes) - 1 and not any(p.startswith("+") for p in prefixes) \
            and _ALL_PREFIXES.fullmatch(joined) and len(set(prefixes)) == len(prefixes):
        return DestinationGroup(gid, name, tuple(prefixes), all_marks if isinstance(all_marks, LineMarks) else tuple(all_marks),
                                node.mark, priority)
    seen: dict[str, Mark] = {}
    keep: list[str] = []
    keep_marks: list[Mark] = []
    for written, m in zip(prefixes, all_marks):
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


def _read_prefix_file(path: Path, ref: Mark, ctx: Ctx) -> tuple[list[str], LineMarks]:
    try:
        text = ctx.read_file(path)
    except OSError as exc:
        ctx.problem(ref, "ref.file", f"prefix_file {path.name!r} cannot be read: {exc.strerror or exc}")
        return [], LineMarks("", ())
    name = str(Path(ref.file).parent / path.name)
    body = text[:-1] if text.endswith("\n") else text
    if _PLAIN_FILE.fullmatch(body):   # one prefix per line, no blank line, comment or space to strip
        lines = body.split("\n")
        return lines, LineMarks(name, range(1, len(lines) + 1))
    out: list[str] = []
    numbers: list[int] = []
    for n, line in enumerate(text.splitlines(), 1):
        item = line.split("#", 1)[0].strip()
        if item:
            out.append(item)
            numbers.append(n)
    return out, LineMarks(name, numbers)

