"""MediationService: rating a stored mediation, and TAP 3.12 files, over a real port (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from tests import tap3_writer as writer
from tests.integration.test_mediation_service import FIXTURES, _mediate

pytestmark = pytest.mark.integration
C = grpc.StatusCode
CONFORMANCE = Path(os.environ.get("RULEBILL_CONFORMANCE_DIR", Path(__file__).resolve().parents[3] / "shared" / "conformance"))


def _rate(stub, data: bytes, layout: str = "asterisk", name: str = "Master.csv", source: str = "london-pbx"):  # type: ignore[no-untyped-def]
    header = pb.MediateFileHeader(layout=layout, file_name=name, rate=True, source=source)
    requests = [pb.MediateFileRequest(header=header), pb.MediateFileRequest(data=data)]
    return list(stub.MediateFile(iter(requests)))[-1].summary


def test_rate_flag_rates_every_normalised_cdr_once(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = (FIXTURES / "asterisk_sample.csv").read_bytes() + b"\n"   # other content than the plain service tests' file
    summary = _rate(stub, data)
    assert summary.file_error.code == "" and summary.normalised == 3
    assert summary.rated + summary.unrated == summary.normalised   # no plan set in this database: all unrated, none lost
    stored = stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)).summary
    assert (stored.rated, stored.unrated) == (summary.rated, summary.unrated)
    again = _rate(stub, data, name="again.csv")
    assert again.already_ingested and (again.rated, again.unrated) == (summary.rated, summary.unrated)


def test_without_the_flag_nothing_is_rated(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    _, summary = _mediate(stub, (FIXTURES / "msc_sample.csv").read_bytes() + b"\n", "msc_generic", return_cdrs=False)
    assert (summary.rated, summary.unrated) == (0, 0) and summary.normalised + summary.duplicates == 6


def _tap_batch(charge_total: int | None = None) -> bytes:
    events = [
        writer.mo_call("234990100000001", "447700900001", "4930123456", "20240102100000", 60, 1500),
        writer.mt_call("234990100000002", "447700900002", "4930999999", "20240102110000", 30, 700),
        writer.gprs_call("234990100000003", "447700900003", "internet", "20240102120000", 600, 1000, 2000, 300),
    ]
    return writer.transfer_batch(events, total_charge=charge_total)


def test_tap3_file_is_stored_as_normalised_cdrs_and_recognised_again(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = _tap_batch()
    cdrs, summary = _mediate(stub, data, "tap3", name="CDDEUXXGBRYY00001")
    assert summary.file_error.code == "" and summary.layout == "tap3" and summary.complete
    assert (summary.records_in, summary.normalised, summary.duplicates) == (3, 3, 0) and not summary.rejected
    assert len(cdrs) == 3 and {c.service for c in cdrs} == {pb.CDR_SERVICE_KIND_VOICE, pb.CDR_SERVICE_KIND_DATA}
    assert all(c.HasField("charge") and c.visited_network for c in cdrs)
    again_cdrs, again = _mediate(stub, data, "tap3", name="renamed", return_cdrs=False)
    assert again.already_ingested and again.normalised == 3 and again.file_id == summary.file_id


def test_tap3_audit_mismatch_refuses_the_whole_file_naming_the_field(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    cdrs, summary = _mediate(stub, _tap_batch(charge_total=1), "tap3", name="bad-audit")
    assert summary.file_error.code and "totalCharge" in summary.file_error.message
    assert (summary.records_in, summary.normalised) == (0, 0) and cdrs == []
    assert stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)).summary.file_error.code == summary.file_error.code


def test_tap3_conformance_trailing_bytes_file_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    path = CONFORMANCE / "tap3" / "tap_3_12_trailing_eoc_invalid.ber"
    if not path.is_file():
        pytest.skip("conformance corpus absent")
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = path.read_bytes()
    cdrs, summary = _mediate(stub, data, "tap3", name=path.name)
    assert summary.file_error.code == "trailing-bytes" and summary.file_error.byte_offset > 0
    assert summary.normalised == 0 and cdrs == []


def test_tap3_conformance_sample_with_stale_audit_is_refused(stack) -> None:  # type: ignore[no-untyped-def]
    path = CONFORMANCE / "tap3" / "tap_3_12_valid.ber"   # its audit block does not match its events (see the tap3 conformance tests)
    if not path.is_file():
        pytest.skip("conformance corpus absent")
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    _, summary = _mediate(stub, path.read_bytes(), "tap3", name=path.name, return_cdrs=False)
    assert summary.file_error.code == "audit-mismatch" and "auditControlInfo" in summary.file_error.message
    assert summary.normalised == 0


def test_tap3_record_rejects_keep_their_original_bytes(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    good = writer.mo_call("234990100000011", "447700900011", "4930123456", "20240103100000", 60, 1500)
    bad = writer.mo_call("234990100000012", "447700900012", "4930123456", "20240103110000", -5, 100)
    data = writer.transfer_batch([good, bad], sequence="00002")
    _, summary = _mediate(stub, data, "tap3", name="with-reject", return_cdrs=False)
    assert summary.file_error.code == "" and (summary.records_in, summary.normalised) == (2, 1)
    assert dict(summary.rejected) == {"negative-duration": 1}
    [reject] = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id)).rejects
    assert reject.field.endswith("totalCallEventDuration") and reject.record_no == 2
    assert data[reject.byte_offset : reject.byte_offset + len(reject.raw)] == reject.raw == bad.ber


def test_tap3_is_isolated_per_tenant(stack) -> None:  # type: ignore[no-untyped-def]
    alpha = stack.client("mvno-alpha").stub(rpc.MediationServiceStub)
    beta = stack.client("mvno-beta").stub(rpc.MediationServiceStub)
    _, summary = _mediate(alpha, _tap_batch() + b"", "tap3", name="alpha", return_cdrs=False)
    err = None
    try:
        beta.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id))
    except grpc.RpcError as exc:
        err = exc
    assert err is not None and err.code() == C.NOT_FOUND
