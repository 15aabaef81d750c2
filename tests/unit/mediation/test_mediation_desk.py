"""The use cases behind MediationService, on the in-memory store: permissions and tenant isolation."""

from __future__ import annotations

import hashlib
import io

import pytest

from engine.errors import InvalidArgument, NotFound, PermissionDenied
from engine.identity import Principal, Role
from engine.mediation import MediationDesk, MemoryMediationStore

from .conftest import FIXTURES, RULES


def _desk() -> tuple[MediationDesk, dict[str, MemoryMediationStore]]:
    stores: dict[str, MemoryMediationStore] = {}
    return MediationDesk(RULES, lambda tenant: stores.setdefault(tenant, MemoryMediationStore())), stores


def _who(tenant: str, role: Role = Role.MVNO_ADMIN) -> Principal:
    return Principal(subject=f"{tenant}-user", tenant_id=tenant, role=role, is_operator=tenant == "mno")


def test_mediate_then_read_back_own_file_only() -> None:
    desk, stores = _desk()
    data = (FIXTURES / "asterisk_sample.csv").read_bytes()
    file_id = hashlib.sha256(data).hexdigest()
    summary = desk.mediate(_who("mvno-alpha"), "asterisk", io.BytesIO(data), file_id, "Master.csv", source="london-pbx")
    assert summary.content_sha256 == file_id and summary.file_id != file_id   # one mediation of that content
    file_id = summary.file_id
    assert summary.normalised == 1 and set(stores) == {"mvno-alpha"}
    assert desk.summary(_who("mvno-alpha"), file_id).records_in == 9
    assert [row[17] for page in desk.cdrs(_who("mvno-alpha"), file_id) for row in page] == ["mvno-alpha"]
    assert [r.record_no for r in desk.rejects(_who("mvno-alpha"), file_id, after=8, limit=10)] == [9]
    with pytest.raises(NotFound):
        desk.summary(_who("mvno-beta"), file_id)
    assert ("asterisk", "Asterisk cdr_csv Master.csv (18 columns, or 21 with newcdrcolumns=yes)") in desk.layouts(_who("mno", Role.OPERATOR_ADMIN))


def test_csr_may_not_mediate_and_unknown_layout_is_invalid() -> None:
    desk, _ = _desk()
    with pytest.raises(PermissionDenied):
        desk.mediate(_who("mvno-alpha", Role.CSR), "asterisk", io.BytesIO(b""), "0" * 64, "x")
    with pytest.raises(InvalidArgument) as info:
        desk.mediate(_who("mvno-alpha"), "nope", io.BytesIO(b""), "0" * 64, "x")
    assert info.value.violations[0].field == "header.layout"


def test_an_mvno_file_holds_only_its_own_subscribers() -> None:
    """Records the ranges give to another tenant are rejected with their bytes, not stored under that tenant."""
    desk, _ = _desk()
    data = (FIXTURES / "asterisk_sample.csv").read_bytes()
    file_id = hashlib.sha256(data).hexdigest()
    summary = desk.mediate(_who("mvno-alpha"), "asterisk", io.BytesIO(data), file_id, "Master.csv", source="london-pbx")
    file_id = summary.file_id
    assert summary.rejected["record.foreign-tenant"] == 2 and summary.records_in == summary.accounted
    foreign = [r for r in desk.rejects(_who("mvno-alpha"), file_id, after=0, limit=20) if r.code == "record.foreign-tenant"]
    assert [r.record_no for r in foreign] == [3, 7]
    assert all("'mvno-beta'" in r.reason and r.raw and r.raw in data for r in foreign)


def test_tenants_submitting_the_same_cdrs_neither_see_nor_pre_empt_each_other() -> None:
    """CDR identities carry the submitting tenant: an MVNO that sends copies of the MNO's CDRs first learns
    nothing (no duplicates) and takes nothing away from the MNO's own ingestion."""
    desk, stores = _desk()
    store = MemoryMediationStore()       # one store for both, as the SQL store is one table
    desk.store_for = lambda tenant: store
    data = (FIXTURES / "asterisk_sample.csv").read_bytes()
    file_id = hashlib.sha256(data).hexdigest()
    alpha = desk.mediate(_who("mvno-alpha"), "asterisk", io.BytesIO(data), file_id, "Master.csv", source="london-pbx")
    mno = desk.mediate(_who("mno", Role.OPERATOR_ADMIN), "asterisk", io.BytesIO(data + b"\n"), file_id[:-1] + "0", "Master.csv", source="london-pbx")
    assert (alpha.normalised, alpha.duplicates) == (1, 1)     # the one in-file repeat only
    assert (mno.normalised, mno.duplicates) == (3, 1)
    assert len(store.cdrs) == 4
    by_origin: dict[str, set[str]] = {}
    for row in store.cdrs.values():
        by_origin.setdefault(row[2], set()).add(row[0])
    (shared,) = [ids for ids in by_origin.values() if len(ids) == 2]   # alpha's call, stored once for each submitter
    assert len(shared) == 2
