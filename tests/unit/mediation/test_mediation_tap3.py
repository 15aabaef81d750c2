"""TAP files through the mediation store: tenants by the same identification as CSV files, the MVNO
restriction, and refusals that say every reason (issue 15; issue 9, item 6)."""

from __future__ import annotations

import hashlib
from typing import Sequence

from engine.mediation import MemoryMediationStore, row_to_cdr
from engine.mediation.tap3 import mediate_tap3
from engine.mediation.tenants import load_tenants
from tests import tap3_writer as W

from .conftest import RULES


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
