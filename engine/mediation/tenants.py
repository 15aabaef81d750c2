"""Which tenant (the MNO or one of its MVNOs) a CDR belongs to: its subscriber's identification.

Declared in ``rules/mediation/tenants.yaml``::

    default_tenant: mno
    home_imsi_prefixes: ["23499"]          # optional: the operator's own SIMs (MCC + MNC)
    ranges:
      - {tenant: mvno-alpha, msisdn_range: ["447700900000", "447700900499"]}
      - {tenant: mvno-beta,  msisdn_prefix: "4477009005"}
      - {tenant: mvno-alpha, imsi_prefix: "23491"}

The same identification serves CSV layouts and TAP/RAP files, in this order:

1. the IMSI ranges (the IMSI identifies the SIM, which is what an MVNO buys from the MNO);
2. the subscriber store, when the server gives one (:class:`SubscriberTenants`): the live
   subscriber with that IMSI, then with that MSISDN;
3. the MSISDN ranges;
4. an IMSI outside ``home_imsi_prefixes`` (when declared) is nobody's subscriber here:
   the record is rejected (``record.unknown-imsi``), never billed to the default tenant;
5. the default tenant.

Ranges are turned into the smallest set of digit prefixes that covers them, so a
lookup is a handful of dict probes however many ranges there are.  Ranges of
different tenants must not overlap (that would make the owner ambiguous);
overlaps are reported with both locations.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol, Sequence

from engine.mediation.problems import FieldError
from engine.tenancy import TENANT_ID
from engine.yamlio import Fields, Mark, Problem, load_file


class SubscriberTenants(Protocol):
    """The subscriber store's answer: the tenant of the live subscriber with an IMSI or MSISDN."""

    def tenants_by_imsi(self, imsis: Sequence[str]) -> dict[str, str]: ...

    def tenants_by_msisdn(self, msisdns: Sequence[str]) -> dict[str, str]: ...


_MEMO_LIMIT = 200_000

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
    home_imsi_prefixes: tuple[str, ...] = ()

    def tenants(self) -> set[str]:
        return {self.default_tenant, *self.by_imsi.values(), *self.by_msisdn.values()}

    def compile(self, store: SubscriberTenants | None = None) -> Callable[[str, str], str]:
        """A fast ``(imsi, msisdn) -> tenant`` function (see the module doc for the order); it raises
        :class:`FieldError` (``record.unknown-imsi``) for an IMSI that is nobody's here."""
        default = self.default_tenant
        imsi_table, msisdn_table = self.by_imsi, self.by_msisdn
        imsi_lengths = sorted({len(p) for p in imsi_table}, reverse=True)
        msisdn_lengths = sorted({len(p) for p in msisdn_table}, reverse=True)
        home = self.home_imsi_prefixes
        stored = _StoredTenants(store) if store is not None else None

        memo: dict[str, str] = {}   # MSISDN -> tenant for records without IMSI (bounded)

        def identify(imsi: str, msisdn: str) -> str:
            if imsi:
                for n in imsi_lengths:
                    tenant = imsi_table.get(imsi[:n])
                    if tenant is not None:
                        return tenant
                if stored is not None and (tenant := stored.of_imsi(imsi)) is not None:
                    return tenant
                if home and not imsi.startswith(home):
                    raise FieldError("imsi", "record.unknown-imsi",
                                     f"IMSI {imsi[:15]} is in no range of rules/mediation/tenants.yaml, under none of the home "
                                     f"IMSI prefixes ({', '.join(home)}), and no subscriber has it")
            if msisdn:
                tenant = stored.of_msisdn(msisdn) if stored is not None else None
                if tenant is None:
                    for n in msisdn_lengths:
                        tenant = msisdn_table.get(msisdn[:n])
                        if tenant is not None:
                            break
                    else:
                        tenant = default
                if not imsi:
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    memo[msisdn] = tenant
                return tenant
            return default

        def fill(msisdns: Iterable[str]) -> None:
            """Memoise the tenants of many MSISDNs (records without IMSI) at once."""
            msisdns = list(msisdns)
            if stored is not None:
                stored.prefetch((), msisdns)
                for msisdn in msisdns:
                    identify("", msisdn)
                return
            if len(memo) + len(msisdns) >= _MEMO_LIMIT:
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

        def column(msisdns: Sequence[str]) -> list[str] | None:
            """``identify("", m)`` for a whole column in C-level maps over the (small) prefix table:
            shortest prefixes first, each longer one that is found replaces it (longest wins, as above).
            None when a subscriber store takes part (then per value, after one prefetch)."""
            if stored is not None:
                stored.prefetch((), msisdns)
                return None
            if not slicers:
                return [default] * len(msisdns)
            found: Iterable[str] = repeat(default)
            for cut in slicers:
                found = map(gets, map(cut, msisdns), found)
            return list(found)

        def prefetch(imsis: Sequence[str], msisdns: Sequence[str]) -> None:
            """Ask the subscriber store about many identities at once (one query per kind, not per record)."""
            if stored is not None:
                stored.prefetch(imsis, msisdns)

        identify.memo = memo  # type: ignore[attr-defined]
        identify.column = column  # type: ignore[attr-defined]
        identify.fill = fill  # type: ignore[attr-defined]
        identify.prefetch = prefetch  # type: ignore[attr-defined]
        return identify


class _StoredTenants:
    """The subscriber store behind a bounded memo: each identity asked once (and in bulk when prefetched)."""

    def __init__(self, store: SubscriberTenants) -> None:
        self.store = store
        self.imsi: dict[str, str | None] = {}
        self.msisdn: dict[str, str | None] = {}

    def prefetch(self, imsis: Iterable[str], msisdns: Iterable[str]) -> None:
        for memo, values, ask in ((self.imsi, imsis, self.store.tenants_by_imsi), (self.msisdn, msisdns, self.store.tenants_by_msisdn)):
            new = sorted({v for v in values if v and v not in memo})
            if not new:
                continue
            if len(memo) + len(new) > _MEMO_LIMIT:
                memo.clear()
            found = ask(new)
            memo.update((v, found.get(v)) for v in new)

    def of_imsi(self, imsi: str) -> str | None:
        if imsi not in self.imsi:
            self.prefetch((imsi,), ())
        return self.imsi.get(imsi)

    def of_msisdn(self, msisdn: str) -> str | None:
        if msisdn not in self.msisdn:
            self.prefetch((), (msisdn,))
        return self.msisdn.get(msisdn)


DEFAULT_DIRECTORY = TenantDirectory("", {}, {})


def parse_tenants(node: Any, file: str, problems: list[Problem]) -> TenantDirectory:
    f = Fields(node, "tenants file", problems)
    default = f.required("default_tenant", str) or ""
    home_node = f.optional("home_imsi_prefixes", list, [])
    ranges = f.optional("ranges", list, [])
    f.done()
    home: list[str] = []
    for i, prefix in enumerate(home_node or []):
        if not (isinstance(prefix, str) and prefix.isdigit() and 3 <= len(prefix) <= 15):
            problems.append(Problem.at(home_node.mark_of(i), "tenants.bad-range", f"home_imsi_prefixes[{i}]: an IMSI prefix is 3-15 digits (MCC + MNC ...)"))
            continue
        home.append(prefix)
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
        tuple(home),
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
