"""The golden mediation folders through MediationService over a real port: the stored summary and
CDRs equal the expectations on SQLite and PostgreSQL (identities carry the submitting tenant)."""

from __future__ import annotations

from typing import Iterator

import pytest

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from engine.cdr import cdr_identity, read_cdrs
from tests.unit.mediation.golden import Case, cases, expected

pytestmark = pytest.mark.integration
CASES = cases()
SERVICE = {pb.CDR_SERVICE_KIND_VOICE: "voice", pb.CDR_SERVICE_KIND_SMS: "sms", pb.CDR_SERVICE_KIND_DATA: "data",
           pb.CDR_SERVICE_KIND_SUPPLEMENTARY: "supplementary", pb.CDR_SERVICE_KIND_MMS: "mms"}


def _upload(case: Case) -> Iterator[pb.MediateFileRequest]:
    yield pb.MediateFileRequest(header=pb.MediateFileHeader(layout=case.layout, file_name=case.input.name, return_cdrs=True,
                                                            source=case.source))
    data = case.input.read_bytes()
    for i in range(0, len(data), 1000):
        yield pb.MediateFileRequest(data=data[i:i + 1000])


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_golden_case_over_the_service(stack, case: Case) -> None:  # type: ignore[no-untyped-def]
    import io
    import json

    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    replies = list(stub.MediateFile(_upload(case)))
    summary = replies[-1].summary
    cdrs = [c for r in replies if r.WhichOneof("part") == "cdrs" for c in r.cdrs.cdrs]
    want_summary, want_cdrs, _ = expected(case)
    want = json.loads(want_summary)
    got = (summary.records_in, summary.normalised, dict(summary.filtered), dict(summary.rejected), summary.duplicates,
           summary.aggregated, summary.non_billable_legs, summary.content_sha256, summary.layout, summary.source)
    assert got == (want["records_in"], want["normalised"], want["filtered"], want["rejected"], want["duplicates"],
                   want["aggregated"], want["non_billable_legs"], want["content_sha256"], want["layout"], want["source"])
    assert summary.records_in == summary.normalised + sum(summary.filtered.values()) + sum(summary.rejected.values()) \
        + summary.duplicates + summary.aggregated + summary.non_billable_legs
    expected_cdrs = [c for c in read_cdrs(io.StringIO(want_cdrs)) if not hasattr(c, "reason")]
    assert len(cdrs) == len(expected_cdrs)
    for got_cdr, want_cdr in zip(cdrs, expected_cdrs):
        assert got_cdr.cdr_id == cdr_identity(want_cdr.source, want_cdr.origin_id, "mno")   # the submitter's own
        assert (got_cdr.source, got_cdr.origin_id, SERVICE[got_cdr.service], got_cdr.start_time.ToJsonString(), got_cdr.a_number,
                got_cdr.b_number, got_cdr.imsi, got_cdr.duration_seconds, got_cdr.volume_up_bytes + got_cdr.volume_down_bytes,
                got_cdr.tenant_id, dict(got_cdr.attributes)) == (
            want_cdr.source, want_cdr.origin_id, want_cdr.service.value, want_cdr.start_time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            want_cdr.a_number, want_cdr.b_number, want_cdr.imsi, want_cdr.duration_seconds, want_cdr.volume_bytes,
            want_cdr.tenant, want_cdr.attributes)
        assert (got_cdr.charge.amount_micros if got_cdr.HasField("charge") else None) == want_cdr.charge_micros
    stored = stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)).summary
    assert (stored.records_in, stored.normalised, stored.non_billable_legs) == (summary.records_in, summary.normalised, summary.non_billable_legs)
    rejects = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, page_size=100)).rejects
    assert sorted(r.code for r in rejects) == sorted(code for code, n in want["rejected"].items() for _ in range(n))
    data = case.input.read_bytes()
    assert all(data[r.byte_offset:r.byte_offset + len(r.raw)] == r.raw for r in rejects)
