"""Time zone and numbering per source, not per layout (rules/mediation/sources.yaml)."""

from __future__ import annotations

from pathlib import Path

from engine.mediation import find_layout, row_to_cdr, validate_directory
from engine.mediation.sources import Source, find_source, load_sources

from .conftest import RULES, mediate

ROW = ('"a","07700900123","0611223344","ctx","clid","SIP/a","SIP/b","Dial","x",'
       '"2026-07-14 10:00:00","2026-07-14 10:00:05","2026-07-14 10:01:05",65,60,"ANSWERED","BILLING","u1",""\n').encode()


def test_the_shipped_rules_are_valid() -> None:
    assert validate_directory(RULES) == []


def test_the_same_file_from_two_places_reads_in_each_places_zone_and_numbering() -> None:
    asterisk = find_layout(RULES, "asterisk")
    paris = Source("paris-pbx", zone="Europe/Paris", numbering={"country_code": "33", "national_prefix": "0"}, version="p")
    _, london = mediate(asterisk.bind(find_source(RULES, "london-pbx")), ROW)
    _, france = mediate(asterisk.bind(paris), ROW)
    (uk,) = [row_to_cdr(r) for r in london.cdrs.values()]
    (fr,) = [row_to_cdr(r) for r in france.cdrs.values()]
    assert (uk.start_time.isoformat(), uk.a_number, uk.b_number, uk.source) == (
        "2026-07-14T09:00:05+00:00", "447700900123", "44611223344", "london-pbx")
    assert (fr.start_time.isoformat(), fr.a_number, fr.b_number, fr.source) == (
        "2026-07-14T08:00:05+00:00", "337700900123", "33611223344", "paris-pbx")
    assert uk.cdr_id != fr.cdr_id     # two switches reusing an id never collide


def test_a_source_without_the_country_code_the_layout_needs_refuses_the_file() -> None:
    summary, _ = mediate(find_layout(RULES, "asterisk").bind(Source("nowhere", zone="UTC")), ROW)
    assert summary.file_error is not None and summary.file_error.code == "source.incomplete"


def test_layouts_that_need_no_source_mediate_without_one() -> None:
    assert not find_layout(RULES, "msc_generic").needs_source
    assert find_layout(RULES, "asterisk").needs_source and find_layout(RULES, "cisco_cucm").needs_source


def test_sources_file_problems_are_located(tmp_path: Path) -> None:
    (tmp_path / "sources.yaml").write_text(
        "sources:\n  Bad Name: {zone: UTC}\n  ok:\n    zone: Mars/Olympus\n  fine:\n    numbering: {country_code: '044'}\n"
        "  extra: {zone: UTC, colour: red}\n", encoding="utf-8")
    problems: list[object] = []
    load_sources(tmp_path, problems)
    assert sorted((p.line, p.code) for p in problems) == [   # type: ignore[attr-defined]
        (2, "sources.bad-name"), (4, "sources.bad-zone"), (6, "numbering.bad-country-code"), (7, "schema.unknown-field")]


def test_an_unknown_source_name_is_kept_to_be_refused_with_its_name() -> None:
    source = find_source(RULES, "atlantis")
    assert source is not None and not source.known
    summary, _ = mediate(find_layout(RULES, "asterisk").bind(source), ROW)
    assert summary.file_error is not None and summary.file_error.code == "source.unknown" and "'atlantis'" in summary.file_error.message
    assert find_source(RULES, "") is None


class _Subscribers:
    """The subscriber store's part in telling a CSV record's tenant: it knows one number outside every range."""

    def __init__(self) -> None:
        self.asked = 0

    def tenants_by_imsi(self, imsis: list[str]) -> dict[str, str]:
        return {}

    def tenants_by_msisdn(self, msisdns: list[str]) -> dict[str, str]:
        self.asked += 1
        return {m: "mvno-beta" for m in msisdns if m == "442079460000"}


def test_csv_records_get_their_tenant_from_the_subscriber_store_after_the_ranges() -> None:
    from engine.mediation import Mediator, MemoryMediationStore

    row = ('"a","{src}","07700900555","ctx","clid","SIP/a","SIP/b","Dial","x",'
           '"2026-12-01 10:00:00","2026-12-01 10:00:05","2026-12-01 10:01:05",65,60,"ANSWERED","BILLING","{uid}",""\n')
    data = "".join(row.format(src=src, uid=f"s{i}") for i, src in enumerate(["02079460000", "07700900123", "02079460001"] * 40)).encode()
    for block_size in (1 << 20, 512):
        subscribers = _Subscribers()
        store = MemoryMediationStore()
        Mediator(find_layout(RULES, "asterisk"), store, store, source=find_source(RULES, "london-pbx"),
                 subscribers=subscribers, block_size=block_size).mediate_bytes(data)
        tenants = {row_to_cdr(r).a_number: row_to_cdr(r).tenant for r in store.cdrs.values()}
        assert tenants == {"442079460000": "mvno-beta", "447700900123": "mvno-alpha", "442079460001": "mno"}
        assert subscribers.asked <= 2 + len(data) // block_size   # the first record alone, then once per batch: never per record
