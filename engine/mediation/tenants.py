"""Which tenant (the MNO or one of its MVNOs) a CDR belongs to, by IMSI or MSISDN range.

Declared in ``rules/mediation/tenants.yaml``::

    default_tenant: mno
    ranges:
      - {tenant: mvno-alpha, msisdn_range: ["447700900000", "447700900499"]}
      - {tenant: mvno-beta,  msisdn_prefix: "4477009005"}
      - {tenant: mvno-alpha, imsi_prefix: "23491"}

Ranges are turned into the smallest set of digit prefixes that covers them, so a
lookup is a handful of dict probes however many ranges there are.  Ranges of
different tenants must not overlap (that would make the owner ambiguous);
overlaps are reported with both locations.  The IMSI wins over the MSISDN
because it identifies the SIM, which is what an MVNO buys from the MNO.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from itertools import repeat
from operator import itemgetter
from typing import Any, Callable, Iterable, Sequence

from engine.tenancy import TENANT_ID
from engine.yamlio import Fields, Mark, Problem, load_file

KINDS = ("msisdn_prefix", "msisdn_range", "imsi_prefix", "imsi_range")


def range_prefixes(low: str, high: str) -> list[str]:
    """The fewest digit prefixes covering every number of ``len(low)`` digits in ``[low, high]``."""
    out: list[str] = []

    def cover(prefix: str, lo: str, hi: str) -> None:
        if lo == "0" * len(lo) and hi == "9" * len(hi):
            out.append(prefix)
            return
        a, b = lo[0], hi[0]
        if a == b:
            cover(prefix + a, lo[1:], hi[1:])
            return
        cover(prefix + a, lo[1:], "9" * (len(lo) - 1))
        out.extend(prefix + str(d) for d in range(int(a) + 1, int(b)))
        cover(prefix + b, "0" * (len(hi) - 1), hi[1:])

    cover("", low, high)
    return out


@dataclass(frozen=True)
class TenantDirectory:
    """Compiled ranges: ``identify(imsi, msisdn)`` -> tenant id."""

    default_tenant: str
    by_imsi: dict[str, str]
    by_msisdn: dict[str, str]

    def tenants(self) -> set[str]:
        return {self.default_tenant, *self.by_imsi.values(), *self.by_msisdn.values()}

    def compile(self) -> Callable[[str, str], str]:
        """A fast ``(imsi, msisdn) -> tenant`` function."""
        default = self.default_tenant
        imsi_table, msisdn_table = self.by_imsi, self.by_msisdn
        imsi_lengths = sorted({len(p) for p in imsi_table}, reverse=True)
        msisdn_lengths = sorted({len(p) for p in msisdn_table}, reverse=True)

        memo: dict[str, str] = {}   # MSISDN -> tenant for records without IMSI (bounded)

        def identify(imsi: str, msisdn: str) -> str:
            if imsi:
                for n in imsi_lengths:
                    tenant = imsi_table.get(imsi[:n])
                    if tenant is not None:
                        return tenant
            if msisdn:
                for n in msisdn_lengths:
                    tenant = msisdn_table.get(msisdn[:n])
                    if tenant is not None:
                        break
                else:
                    tenant = default
                if not imsi:
                    if len(memo) >= 200_000:
                        memo.clear()
                    memo[msisdn] = tenant
                return tenant
            return default

        def fill(msisdns: Iterable[str]) -> None:
            """Memoise the tenants of many MSISDNs (records without IMSI) at once."""
            msisdns = list(msisdns)
            if len(memo) + len(msisdns) >= 200_000:
                memo.clear()
            for msisdn in msisdns:
                tenant = default
                if msisdn:
                    for n in msisdn_lengths:
                        found = msisdn_table.get(msisdn[:n])
                        if found is not None:
                            tenant = found
                            break
                memo[msisdn] = tenant

        slicers = [itemgetter(slice(n)) for n in sorted(msisdn_lengths)]
        gets = msisdn_table.get

        def column(msisdns: Sequence[str]) -> list[str]:
            """``identify("", m)`` for a whole column in C-level maps over the (small) prefix table:
            shortest prefixes first, each longer one that is found replaces it (longest wins, as above)."""
            if not slicers:
                return [default] * len(msisdns)
            found: Iterable[str] = repeat(default)
            for cut in slicers:
                found = map(gets, map(cut, msisdns), found)
            return list(found)

        identify.memo = memo  # type: ignore[attr-defined]
        identify.column = column  # type: ignore[attr-defined]
        identify.fill = fill  # type: ignore[attr-defined]
        return identify


DEFAULT_DIRECTORY = TenantDirectory("", {}, {})


def parse_tenants(node: Any, file: str, problems: list[Problem]) -> TenantDirectory:
    f = Fields(node, "tenants file", problems)
    default = f.required("default_tenant", str) or ""
    ranges = f.optional("ranges", list, [])
    f.done()
    if default and not TENANT_ID.match(default):
        problems.append(Problem.at(f.node.mark_of("default_tenant"), "tenants.bad-id", f"tenant id {default!r} is not valid"))
    tables: dict[str, dict[str, tuple[str, Mark]]] = {"imsi": {}, "msisdn": {}}
    for i, entry in enumerate(ranges):
        where = f"ranges[{i}]"
        e = Fields(entry, where, problems, ranges.mark_of(i))
        tenant = e.required("tenant", str)
        specs = {k: e.optional(k, (str, list)) for k in KINDS}
        e.done()
        given = [k for k, v in specs.items() if v is not None]
        if tenant is not None and not TENANT_ID.match(tenant):
            problems.append(Problem.at(e.node.mark_of("tenant"), "tenants.bad-id", f"{where}: tenant id {tenant!r} is not valid"))
        if len(given) != 1:
            problems.append(Problem.at(e.mark, "tenants.one-of", f"{where}: give exactly one of {', '.join(KINDS)}"))
            continue
        kind = given[0]
        mark = e.node.mark_of(kind)
        prefixes = _entry_prefixes(kind, specs[kind], where, mark, problems)
        if tenant is None or prefixes is None:
            continue
        table = tables[kind.split("_")[0]]
        for p in prefixes:
            table[p] = _claim(table.get(p), tenant, mark, p, where, problems)
    # a prefix nested inside another tenant's prefix is an overlap too (reported once per pair of entries)
    reported: set[tuple[Mark, Mark]] = set()
    for table in tables.values():
        for p, (tenant, mark) in sorted(table.items()):
            for n in range(1, len(p)):
                outer = table.get(p[:n])
                if outer is not None and outer[0] != tenant:
                    if (mark, outer[1]) not in reported:
                        reported.add((mark, outer[1]))
                        problems.append(
                            Problem.at(mark, "tenants.overlap", f"{p} of {tenant} lies inside {p[:n]} of {outer[0]} (line {outer[1].line})")
                        )
                    break
    return TenantDirectory(
        default,
        {p: t for p, (t, _) in tables["imsi"].items()},
        {p: t for p, (t, _) in tables["msisdn"].items()},
    )


def _claim(existing: tuple[str, Mark] | None, tenant: str, mark: Mark, prefix: str, where: str, problems: list[Problem]) -> tuple[str, Mark]:
    if existing is not None and existing[0] != tenant:
        problems.append(Problem.at(mark, "tenants.overlap", f"{where}: {prefix} already belongs to {existing[0]} (line {existing[1].line})"))
        return existing
    return (tenant, mark)


def _entry_prefixes(kind: str, value: Any, where: str, mark: Mark, problems: list[Problem]) -> list[str] | None:
    if kind.endswith("_prefix"):
        if not (isinstance(value, str) and value.isdigit()):
            problems.append(Problem.at(mark, "tenants.bad-range", f"{where}: {kind} must be a digit string"))
            return None
        return [value]
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v.isdigit() for v in value)):
        problems.append(Problem.at(mark, "tenants.bad-range", f"{where}: {kind} must be [first, last] as digit strings"))
        return None
    low, high = value
    if len(low) != len(high) or low > high:
        problems.append(Problem.at(mark, "tenants.bad-range", f"{where}: {kind} needs first <= last with the same number of digits"))
        return None
    return range_prefixes(low, high)


def load_tenants(path: Path | str, problems: list[Problem]) -> TenantDirectory:
    node = load_file(path, problems)
    if node is None:
        return DEFAULT_DIRECTORY
    return parse_tenants(node, str(path), problems)
