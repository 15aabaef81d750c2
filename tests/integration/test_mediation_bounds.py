"""The work of one mediation call is bounded, over a real port on SQLite and PostgreSQL: an upload past
``max_mediation_upload_bytes`` is refused on ``data`` while it is spooled (the spool, past its in-memory part a
temporary file, deleted); a TAP file, decoded whole in memory, past the far smaller ``max_tap3_bytes`` is refused
before it is read, nothing stored; ListRejects reads one page of rejects from the database, not the whole file's."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from billing.v1 import mediation_pb2 as pb
from billing.v1 import mediation_pb2_grpc as rpc
from engine.mediation.tap3 import tap3_file_id
from engine.settings import Settings
from servers.mediation_service import SPOOL_IN_MEMORY
from tests.integration.conftest import Stack, running_stack
from tests.integration.helpers import field_violations, rpc_error
from tests import tap3_writer as writer
from tests.integration.test_mediation_service import ROW, _mediate, _upload

pytestmark = pytest.mark.integration
CAP = SPOOL_IN_MEMORY + (1 << 20)   # past the in-memory part: the spool is a file on disk when the cap is reached
TAP_CAP = 4096


@pytest.fixture(scope="module")
def small_stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = Settings(home=Path(tmp_path_factory.mktemp("home")), database_url=db_url, shutdown_grace_seconds=2.0,
                        max_mediation_upload_bytes=CAP, max_tap3_bytes=TAP_CAP)
    with running_stack(settings) as s:
        yield s


def _temporary_files() -> set[str]:
    """The files under the temporary folder this process holds open (a spool's file is unlinked but stays open)."""
    where = os.path.realpath(tempfile.gettempdir())
    out = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(where + "/"):
            out.add(target)
    return out


def test_an_upload_past_the_cap_is_refused_on_data_and_its_spool_deleted(small_stack: Stack) -> None:
    stub = small_stack.client("mno").stub(rpc.MediationServiceStub)
    before = _temporary_files()
    data = ROW.format(acct="big", billsec=60, uid="big-0").encode() * (CAP // 100 + 1000)
    assert len(data) > CAP
    err = rpc_error(lambda: list(stub.MediateFile(_upload(data, "asterisk", name="big.csv", chunk=1 << 20))), grpc.StatusCode.INVALID_ARGUMENT)
    assert "data" in field_violations(err) and "max_mediation_upload_bytes" in field_violations(err)["data"]
    assert _temporary_files() == before, "the refused upload's spool is still open"
    # exactly the cap is taken (and mediated)
    fits = data[:CAP - CAP % len(data.splitlines(keepends=True)[0])]
    _, summary = _mediate(stub, fits, return_cdrs=False, name="fits.csv")
    assert summary.complete and summary.bytes_in == len(fits)


def test_rejects_are_read_a_page_at_a_time_in_record_order(small_stack: Stack) -> None:
    stub = small_stack.client("mno").stub(rpc.MediationServiceStub)
    bills = [60 if i % 3 == 0 else 10**30 for i in range(40)]     # 26 out-of-range records among 40
    data = "".join(ROW.format(acct="pages", billsec=b, uid=f"pages-{i}") for i, b in enumerate(bills)).encode()
    _, summary = _mediate(stub, data, return_cdrs=False, name="pages.csv")
    want = [i + 1 for i, b in enumerate(bills) if b != 60]
    seen: list[int] = []
    token = ""
    for _ in range(len(want)):   # bounded: a store that ignored the position would hand the first page forever
        page = stub.ListRejects(pb.ListRejectsRequest(file_id=summary.file_id, page_size=4, page_token=token))
        assert len(page.rejects) <= 4
        seen += [r.record_no for r in page.rejects]
        if not page.next_page_token:
            break
        token = page.next_page_token
    assert seen == want


def _tap_file(events: int) -> bytes:
    return writer.transfer_batch([writer.mo_call("234990100000001", "447700900001", f"4930{i:07d}", "20240102100000", 60, 1500)
                                  for i in range(events)])


def test_a_tap_file_past_its_own_cap_is_refused_before_it_is_read_and_nothing_is_stored(small_stack: Stack) -> None:
    stub = small_stack.client("mno").stub(rpc.MediationServiceStub)
    big, small = _tap_file(60), _tap_file(3)
    assert len(small) <= TAP_CAP < len(big) < CAP                     # within the upload's cap, past the TAP file's
    err = rpc_error(lambda: list(stub.MediateFile(_upload(big, "tap3", name="CDBIG"))), grpc.StatusCode.INVALID_ARGUMENT)
    assert "max_tap3_bytes" in field_violations(err)["data"] and f"{TAP_CAP:,}" in field_violations(err)["data"]
    rpc_error(lambda: stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=tap3_file_id(hashlib.sha256(big).hexdigest()))),
              grpc.StatusCode.NOT_FOUND)
    # a file within it is mediated and stored under the same kind of id
    _, summary = _mediate(stub, small, "tap3", return_cdrs=False, name="CDSMALL")
    assert summary.complete and summary.normalised == 3
    assert summary.file_id == tap3_file_id(hashlib.sha256(small).hexdigest())
    assert stub.GetFileSummary(pb.GetFileSummaryRequest(file_id=summary.file_id)).summary.normalised == 3
