"""TAP and RAP files through the mediation store: tenants by the same identification as CSV files, the MVNO
restriction, and refusals that say every reason (issue 15; issue 9, item 6)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import pytest

from engine.mediation import MemoryMediationStore, row_to_cdr
from engine.mediation.tap3 import mediate_tap3
from engine.mediation.tenants import load_tenants
from tests import tap3_writer as W

from .conftest import REPO, RULES


def _tenants():  # type: ignore[no-untyped-def]
    problems: list[object] = []
    tenants = load_tenants(RULES / "tenants.yaml", problems)
    assert not problems
    return tenants


def _batch() -> bytes:
    return W.transfer_batch([
        W.mo_call("234990100000001", "447700900001", "4930123456", "20261201100000", 60, 1500),   # mvno-alpha
        W.mo_call("234990200000002", "447700900502", "4930123456", "20261201101000", 60, 1500),   # mvno-beta
        W.mo_call("234990000000003", "447911000003", "4930123456", "20261201102000", 60, 1500),   # mno
        W.mo_call("262011234567890", "491701234567", "4930123456", "20261201103000", 60, 1500),   # nobody's here
    ])


def _run(data: bytes, **kw):  # type: ignore[no-untyped-def]
    store = MemoryMediationStore()
    summary = mediate_tap3(store, data, hashlib.sha256(data).hexdigest(), "t.ber", tenants=_tenants(), **kw)
    return summary, store


def test_tap_cdrs_carry_their_tenant_and_a_foreign_imsi_is_rejected_with_its_bytes() -> None:
    data = _batch()
    summary, store = _run(data)
    assert [row_to_cdr(r).tenant for r in store.cdrs.values()] == ["mvno-alpha", "mvno-beta", "mno"]
    assert summary.rejected == {"record.unknown-imsi": 1} and summary.records_in == summary.accounted == 4
    (rej,) = store.rejects
    assert rej.record_no == 4 and data[rej.byte_offset:rej.byte_offset + len(rej.raw)] == rej.raw


def test_an_mvno_tap_file_may_hold_only_its_own_subscribers() -> None:
    summary, store = _run(_batch(), namespace="mvno-alpha", only_tenant="mvno-alpha")
    assert [row_to_cdr(r).tenant for r in store.cdrs.values()] == ["mvno-alpha"]
    assert summary.rejected == {"record.foreign-tenant": 2, "record.unknown-imsi": 1}


class _Subscribers:
    """A subscriber store that knows one IMSI outside every range."""

    def __init__(self) -> None:
        self.asked: list[Sequence[str]] = []

    def tenants_by_imsi(self, imsis: Sequence[str]) -> dict[str, str]:
        self.asked.append(imsis)
        return {"262011234567890": "mvno-beta"} if "262011234567890" in imsis else {}

    def tenants_by_msisdn(self, msisdns: Sequence[str]) -> dict[str, str]:
        return {}


def test_the_subscriber_store_comes_after_the_imsi_ranges_and_is_asked_once_per_batch() -> None:
    subscribers = _Subscribers()
    summary, store = _run(_batch(), subscribers=subscribers)
    assert [row_to_cdr(r).tenant for r in store.cdrs.values()] == ["mvno-alpha", "mvno-beta", "mno", "mvno-beta"]
    assert summary.rejected == {} and len(subscribers.asked) == 1


def test_a_refused_file_carries_every_fatal_reason() -> None:
    data = W.transfer_batch([W.mo_call("234990100000001", "447700900001", "4930", "20261201100000", 60, 1500)],
                            total_charge=1, count=7)
    store = MemoryMediationStore()
    summary = mediate_tap3(store, data, hashlib.sha256(data).hexdigest(), "t.ber")
    assert summary.file_error is not None and summary.records_in == 0
    checkpoint = store.checkpoints[summary.file_id]
    assert checkpoint.done and checkpoint.summary.file_error == summary.file_error
    reasons = store.file_problems[summary.file_id]
    assert reasons[0] == summary.file_error and {p.code for p in reasons} == {"audit-mismatch"} and len(reasons) == 2


def test_a_csv_given_as_tap_is_not_a_tap_file() -> None:
    summary, _ = _run(b'"acct1","07700900123","07700900555"\n')
    assert summary.file_error is not None and summary.file_error.code == "not-tap"
    assert summary.file_error.message.startswith("not a TAP/RAP/Notification file: first tag [UNIVERSAL 2]")


# ---------------------------------------------------------------- RAP: the events a ReturnBatch returns


def _events() -> list[W.Event]:
    return [
        W.mo_call("234990100000001", "447700900001", "4930123456", "20261201100000", 60, 1500),   # mvno-alpha
        W.mo_call("234990200000002", "447700900502", "4930123456", "20261201101000", 60, 1500),   # mvno-beta
        W.mt_call("234990000000003", "447911000003", "4930123456", "20261201102000", 45, 900),    # mno
        W.mo_call("262011234567890", "491701234567", "4930123456", "20261201103000", 60, 1500),   # nobody's here
    ]


def _rap(events: list[W.Event]) -> bytes:
    # an error detail the reader does not need rides in each return, and a fatal return names no event
    details = [W.severe_return(e, extra=W.tlv(600, W.encode_integer(30), cls=1)) for e in events]
    return W.return_batch(details + [W.tlv(522, W._text(109, "00002"), constructed=True)])


def test_rap_returned_events_get_their_tenants_by_the_same_identification_as_tap() -> None:
    tap_summary, tap_store = _run(_batch())
    data = _rap(_events())
    summary, store = _run(data)
    returned = [row_to_cdr(r) for r in store.cdrs.values()]
    assert [c.tenant for c in returned] == [row_to_cdr(r).tenant for r in tap_store.cdrs.values()][:2] + ["mno"]
    assert [c.tenant for c in returned] == ["mvno-alpha", "mvno-beta", "mno"]
    # each one marked as returned, with the TAP file it came in, and an identity of its own (not the TAP CDR's)
    assert {c.attributes["rap_return"] for c in returned} == {"severeReturn"}
    assert {(c.source, c.attributes["file_sequence_number"], c.attributes["rap_file_sequence_number"]) for c in returned} == {
        ("rap:GBRYY", "00001", "00007")}
    assert [c.origin_id for c in returned] == ["00007:0", "00007:1", "00007:2"] and not set(store.cdrs) & set(tap_store.cdrs)
    assert returned[2].direction.value == "terminating" and returned[2].b_number == "447911000003"
    # the IMSI that is nobody's: rejected with the bytes of its whole return, as for TAP
    assert summary.rejected == tap_summary.rejected == {"record.unknown-imsi": 1}
    (rej,) = store.rejects
    assert rej.record_no == 4 and rej.raw.startswith(b"\x7f\x84\x0c") and data[rej.byte_offset:rej.byte_offset + len(rej.raw)] == rej.raw
    assert summary.records_in == summary.accounted == 4 and summary.file_error is None


def test_an_mvno_rap_file_may_hold_only_its_own_subscribers() -> None:
    summary, store = _run(_rap(_events()), namespace="mvno-alpha", only_tenant="mvno-alpha")
    assert [row_to_cdr(r).tenant for r in store.cdrs.values()] == ["mvno-alpha"]
    assert summary.rejected == {"record.foreign-tenant": 2, "record.unknown-imsi": 1}
    assert sorted(r.record_no for r in store.rejects) == [2, 3, 4]


def test_rap_returned_events_ask_the_subscriber_store_after_the_ranges() -> None:
    subscribers = _Subscribers()
    summary, store = _run(_rap(_events()), subscribers=subscribers)
    assert [row_to_cdr(r).tenant for r in store.cdrs.values()] == ["mvno-alpha", "mvno-beta", "mno", "mvno-beta"]
    assert summary.rejected == {} and len(subscribers.asked) == 1


def test_a_returned_event_that_cannot_be_placed_in_time_is_rejected_with_its_bytes() -> None:
    event = _events()[0]
    data = W.return_batch([W.severe_return(event, utc_offset=None)])
    summary, store = _run(data)
    assert store.cdrs == {} and summary.rejected == {"unknown-utc-offset-code": 1} and summary.records_in == 1
    assert store.rejects[0].raw == data[store.rejects[0].byte_offset:][:len(store.rejects[0].raw)]


def test_the_same_rap_file_again_stores_nothing_new() -> None:
    data = _rap(_events())
    store = MemoryMediationStore()
    sha = hashlib.sha256(data).hexdigest()
    first = mediate_tap3(store, data, sha, "r.ber", tenants=_tenants())
    again = mediate_tap3(store, data, sha, "r.ber", tenants=_tenants())
    assert again.already_ingested and again.normalised == first.normalised == 3 and len(store.cdrs) == 3


_CONFORMANCE = Path(os.environ.get("RULEBILL_CONFORMANCE_DIR", str(REPO / ".." / "shared" / "conformance"))) / "tap3"


def _real(name: str) -> bytes:
    path = _CONFORMANCE / name
    if not path.is_file():
        pytest.skip(f"conformance file {path} not found")
    return path.read_bytes()


def test_real_rap_files_go_through_the_same_path() -> None:
    """The corpus's RAP files (written outside Rulebill): an Acknowledgement returns no events, and a ReturnBatch
    without its mandatory returnDetails is refused with the reason, with its tenants' directory in place."""
    ack, ack_store = _run(_real("rap_ack.ber"), namespace="mvno-alpha", only_tenant="mvno-alpha")
    assert ack.file_error is None and ack.records_in == ack.accounted == 0 and ack_store.cdrs == {}
    mini, mini_store = _run(_real("rap_mini.ber"))
    assert mini.file_error is not None and mini.file_error.code == "missing-field" and mini_store.cdrs == {}
    assert {p.message.split(":")[0] for p in mini_store.file_problems[mini.file_id]} == {
        "ReturnBatch.returnDetails", "ReturnBatch.rapAuditControlInfo"}
