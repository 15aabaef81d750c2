"""MediationService over a real port, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import grpc
import pytest

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from tests.integration.helpers import field_violations, rpc_error
from tests.unit.mediation.conftest import SOURCE_OF

pytestmark = pytest.mark.integration
C = grpc.StatusCode
FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "mediation" / "fixtures"


def _upload(data: bytes, layout: str, name: str = "Master.csv", return_cdrs: bool = True, chunk: int = 700,
            source: str | None = None) -> Iterator[pb.MediateFileRequest]:
    """``source``: the file's source; by default the one the unit tests read that layout's files as from."""
    yield pb.MediateFileRequest(header=pb.MediateFileHeader(layout=layout, file_name=name, return_cdrs=return_cdrs,
                                                            source=SOURCE_OF.get(layout, "") if source is None else source))
    for i in range(0, len(data), chunk):
        yield pb.MediateFileRequest(data=data[i : i + chunk])


def _mediate(stub, data: bytes, layout: str = "asterisk", **kw):  # type: ignore[no-untyped-def]
    replies = list(stub.MediateFile(_upload(data, layout, **kw)))
    cdrs = [c for r in replies if r.WhichOneof("part") == "cdrs" for c in r.cdrs.cdrs]
    assert replies[-1].WhichOneof("part") == "summary"
    return cdrs, replies[-1].summary


def test_mediate_file_streams_cdrs_and_a_reconciled_summary(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = (FIXTURES / "msc_sample.csv").read_bytes()
    cdrs, summary = _mediate(stub, data, "msc_generic", name="msc.csv")
    assert (summary.records_in, summary.normalised, summary.aggregated, summary.tenant_id) == (11, 6, 2, "mno")
    assert dict(summary.filtered) == {"unsuccessful": 1} and dict(summary.rejected) == {"partial.incomplete": 1, "value.unmapped": 1}
    assert summary.records_in == summary.normalised + sum(summary.filtered.values()) + sum(summary.rejected.values()) + summary.duplicates + summary.aggregated
    by_origin = {c.origin_id: c for c in cdrs}
    assert len(by_origin) == 6
    assert by_origin["R4"].service == pb.CDR_SERVICE_KIND_DATA and by_origin["R4"].volume_down_bytes == 5242880
    assert by_origin["R2"].direction == pb.CDR_DIRECTION_TERMINATING and by_origin["R2"].tenant_id == "mvno-beta"
    assert by_origin["C5"].duration_seconds == 9000 and by_origin["C5"].start_time.ToJsonString() == "2026-11-27T08:04:00Z"
    assert not by_origin["R1"].HasField("charge")
    again = stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)).summary
    assert again.normalised == 6 and again.complete
    page = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, page_size=1))
    assert [r.code for r in page.rejects] == ["partial.incomplete"] and page.next_page_token
    rest = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, page_size=1, page_token=page.next_page_token))
    assert [r.code for r in rest.rejects] == ["value.unmapped"] and rest.rejects[0].raw.startswith(b"R11;")
    assert rest.rejects[0].byte_offset == data.index(b"R11;")


def test_the_same_file_twice_creates_nothing_new(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = (FIXTURES / "asterisk_sample.csv").read_bytes()
    _, first = _mediate(stub, data, return_cdrs=False)
    cdrs, second = _mediate(stub, data, name="renamed.csv")
    assert second.already_ingested and second.normalised == first.normalised == 3 and second.file_id == first.file_id
    assert len(cdrs) == 3    # the file's CDRs, stored once


def test_refused_file_and_bad_requests(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    _, summary = _mediate(stub, (FIXTURES / "freeswitch_sample.csv").read_bytes(), "asterisk")
    assert summary.file_error.code == "read.column-count" and summary.file_error.line == 1 and summary.normalised == 0
    err = rpc_error(lambda: list(stub.MediateFile(_upload(b"x", "no-such-layout"))), C.INVALID_ARGUMENT)
    assert "header.layout" in field_violations(err)
    err = rpc_error(lambda: list(stub.MediateFile(iter([pb.MediateFileRequest(data=b"x")]))), C.INVALID_ARGUMENT)
    assert "header" in field_violations(err)
    names = {layout.name for layout in stub.ListLayouts(pb.ListLayoutsRequest()).layouts}
    assert {"asterisk", "freeswitch", "cisco_cucm", "msc_generic"} <= names


def test_tenants_see_only_their_files_and_csr_may_not_mediate(stack) -> None:  # type: ignore[no-untyped-def]
    alpha = stack.client("mvno-alpha").stub(rpc.MediationServiceStub)
    beta = stack.client("mvno-beta").stub(rpc.MediationServiceStub)
    data = (FIXTURES / "cucm_sample.csv").read_bytes()
    _, summary = _mediate(alpha, data, "cisco_cucm")
    # the sample's callers are the MNO's own (US) subscribers: an MVNO's file may not carry them
    assert summary.tenant_id == "mvno-alpha" and summary.normalised == 0 and summary.rejected["record.foreign-tenant"] == 3
    foreign = alpha.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id)).rejects
    assert [r.code for r in foreign].count("record.foreign-tenant") == 3 and all(r.raw for r in foreign)
    rpc_error(lambda: beta.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)), C.NOT_FOUND)
    rpc_error(lambda: beta.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id)), C.NOT_FOUND)
    # naming the owner does not help another MVNO; the operator reads the file by naming its tenant
    rpc_error(lambda: beta.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id, tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
    rpc_error(lambda: beta.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, tenant_id="mvno-alpha")), C.PERMISSION_DENIED)
    operator = stack.client("mno").stub(rpc.MediationServiceStub)
    rpc_error(lambda: operator.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)), C.NOT_FOUND)   # not the MNO's own
    seen = operator.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id, tenant_id="mvno-alpha")).summary
    assert (seen.tenant_id, seen.file_id, seen.rejected["record.foreign-tenant"]) == ("mvno-alpha", summary.file_id, 3)
    first = operator.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, tenant_id="mvno-alpha", page_size=2))
    rest = operator.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, tenant_id="mvno-alpha", page_token=first.next_page_token))
    assert [r.record_no for r in list(first.rejects) + list(rest.rejects)] == [r.record_no for r in foreign]
    csr = stack.client("mvno-alpha", "csr").stub(rpc.MediationServiceStub)
    rpc_error(lambda: list(csr.MediateFile(_upload(data, "cisco_cucm"))), C.PERMISSION_DENIED)
    rpc_error(lambda: csr.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)), C.PERMISSION_DENIED)


ROW = ('"{acct}","07700900123","07700900555","ctx","clid","SIP/a","SIP/b","Dial","x",'
       '"2026-11-27 10:00:00","2026-11-27 10:00:05","2026-11-27 10:01:05",65,{billsec},"ANSWERED","BILLING","{uid}",""\n')


def test_an_out_of_range_field_rejects_its_record_not_the_file(stack) -> None:  # type: ignore[no-untyped-def]
    """Regression (issue 13, item 16): a billsec of 10^30 was INTERNAL for the whole file on SQLite, forever."""
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = "".join(ROW.format(acct="oor", billsec=b, uid=f"oor-{i}") for i, b in enumerate([60, 10**30, 2**63, 61])).encode()
    cdrs, summary = _mediate(stub, data, name="huge.csv")
    assert summary.file_error.code == "" and summary.complete
    assert (summary.records_in, summary.normalised, dict(summary.rejected)) == (4, 2, {"value.out-of-range": 2})
    assert sorted(c.duration_seconds for c in cdrs) == [60, 61]
    rejects = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, page_size=10)).rejects
    assert [(r.record_no, r.field) for r in rejects] == [(2, "duration_seconds"), (3, "duration_seconds")]
    assert b"1" + b"0" * 30 in rejects[0].raw


def test_attribute_values_keep_their_separators_over_the_wire(stack) -> None:  # type: ignore[no-untyped-def]
    """Regression (issue 9, item 1): a value 'a;b=c' came back as two attributes."""
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    cdrs, _ = _mediate(stub, ROW.format(acct="a;b=c%", billsec=60, uid="attr-1").encode(), name="attrs.csv")
    assert [dict(c.attributes) for c in cdrs] == [{"accountcode": "a;b=c%"}]


def test_an_unknown_source_refuses_the_file_with_the_reason(stack) -> None:  # type: ignore[no-untyped-def]
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = ROW.format(acct="src", billsec=60, uid="src-1").encode()
    _, summary = _mediate(stub, data, name="src.csv", source="atlantis")
    assert summary.file_error.code == "source.unknown" and summary.normalised == 0
    _, summary = _mediate(stub, data, name="src.csv", source="")
    assert summary.file_error.code == "source.required"
    _, summary = _mediate(stub, data, name="src.csv")      # sent again with its source: mediated, not "already ingested"
    assert summary.file_error.code == "" and summary.normalised == 1 and not summary.already_ingested


def test_a_file_refused_for_the_wrong_layout_can_be_sent_again_with_the_right_one(stack) -> None:  # type: ignore[no-untyped-def]
    """Regression (issue 13, item 15): the file's identity is its content, the layout and its version, the source."""
    stub = stack.client("mno").stub(rpc.MediationServiceStub)
    data = ROW.format(acct="lay", billsec=60, uid="lay-1").encode()
    _, refused = _mediate(stub, data, "freeswitch", name="x.csv")
    assert refused.file_error.code == "read.column-count"
    _, summary = _mediate(stub, data, "asterisk", name="x.csv")
    assert summary.file_error.code == "" and summary.normalised == 1 and summary.file_id != refused.file_id
    assert summary.content_sha256 == refused.content_sha256 and summary.layout_version
