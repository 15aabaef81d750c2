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
    summary = desk.mediate(_who("mvno-alpha"), "asterisk", io.BytesIO(data), file_id, "Master.csv")
    assert summary.normalised == 3 and set(stores) == {"mvno-alpha"}
    assert desk.summary(_who("mvno-alpha"), file_id).records_in == 9
    assert sum(len(page) for page in desk.cdrs(_who("mvno-alpha"), file_id)) == 3
    assert [r.record_no for r in desk.rejects(_who("mvno-alpha"), file_id, after=8, limit=10)] == [9]
    with pytest.raises(NotFound):
        desk.summary(_who("mvno-beta"), file_id)
    assert ("asterisk", "Asterisk cdr_csv Master.csv (18 columns, uniqueid and userfield logged)") in desk.layouts(_who("mno", Role.OPERATOR_ADMIN))


def test_csr_may_not_mediate_and_unknown_layout_is_invalid() -> None:
    desk, _ = _desk()
    with pytest.raises(PermissionDenied):
        desk.mediate(_who("mvno-alpha", Role.CSR), "asterisk", io.BytesIO(b""), "0" * 64, "x")
    with pytest.raises(InvalidArgument) as info:
        desk.mediate(_who("mvno-alpha"), "nope", io.BytesIO(b""), "0" * 64, "x")
    assert info.value.violations[0].field == "header.layout"
