"""The mediation ports (engine/mediation/ports.py: SeenCdrIds, MediationSink, and the reads of
engine/mediation/desk.py) through the in-memory store (engine/mediation/memory.py) and the SQL store
(store/mediation.py) on SQLite and PostgreSQL: the golden mediation cases run through the product's desk in small
chunks (many commits each), then the ports are asked directly -- the answers must be the same."""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.engine import Engine

from engine.identity import Principal, Role
from engine.mediation import MediationDesk, MemoryMediationStore
from engine.mediation.ports import MediationChunk
from engine.model import Tenant, TenantKind, TenantStatus
from store.db import make_engine
from store.mediation import SqlMediationStore
from store.uow import SqlUnitOfWorkFactory
from tests.conftest import REPO
from tests.integration.contract import Steps, assert_same

pytestmark = pytest.mark.integration
GOLDEN = REPO / "tests" / "golden" / "mediation"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "case.yaml").is_file() and yaml.safe_load((p / "case.yaml").read_text())["layout"] != "tap3")
MNO = Principal("contract-mediation", "mno", Role.OPERATOR_ADMIN, is_operator=True)


def scenario(store_for: Any) -> list[tuple[str, Any]]:
    desk = MediationDesk(REPO / "rules" / "mediation", store_for, chunk_size=3)
    step = Steps()
    store = store_for("mno")
    file_ids = []
    for case in CASES:
        spec = yaml.safe_load((GOLDEN / case / "case.yaml").read_text())
        data = (GOLDEN / case / spec["input"]).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        summary = step(f"{case}: mediate", lambda: desk.mediate(MNO, spec["layout"], io.BytesIO(data), sha, spec["input"],
                                                                source=spec.get("source") or ""))
        file_id = summary.file_id
        file_ids.append(file_id)
        step(f"{case}: again", lambda: desk.mediate(MNO, spec["layout"], io.BytesIO(data), sha, "renamed.csv",
                                                    source=spec.get("source") or "").already_ingested)
        step(f"{case}: checkpoint", lambda: store.checkpoint(file_id))
        step(f"{case}: summary", lambda: store.summary(file_id))
        step(f"{case}: cdrs in pages of 4", lambda: list(store.cdrs_of_file(file_id, 4)))
        step(f"{case}: rejects", lambda: store.rejects_of_file(file_id))
        step(f"{case}: rejects after the first, two at most", lambda: store.rejects_of_file(file_id, after=1, limit=2))
        cdr_ids = [row[0] for page in store.cdrs_of_file(file_id) for row in page]
        step(f"{case}: seen", lambda: sorted(store.seen(cdr_ids + ["not-a-cdr"])))
    first = file_ids[0]
    step("record rating", lambda: store.record_rating(first, 4, 2))
    step("rated summary", lambda: (store.summary(first).rated, store.summary(first).unrated, store.checkpoint(first).summary.rated))
    step("record rating of an unknown file", lambda: store.record_rating("f" * 64, 1, 1))
    step("unknown file", lambda: (store.summary("f" * 64), store.checkpoint("f" * 64), list(store.cdrs_of_file("f" * 64)),
                                  store.rejects_of_file("f" * 64)))
    stored = next(store.cdrs_of_file(first))
    checkpoint = store.checkpoint(first)
    clash = MediationChunk("e" * 64, [stored[0]], [], replace(checkpoint, file_id="e" * 64, done=False))
    step("a chunk with a stored CDR", lambda: store.commit(clash))
    step("nothing of it kept", lambda: (store.checkpoint("e" * 64), store.summary("e" * 64)))
    step("another tenant's store", lambda: (store_for("mvno-alpha").summary(first), list(store_for("mvno-alpha").cdrs_of_file(first))))
    return step.out


def _tenants(db: Engine) -> None:
    with SqlUnitOfWorkFactory(db)() as unit:
        for tid, parent in (("mno", ""), ("mvno-alpha", "mno"), ("mvno-beta", "mno")):
            t0 = __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").timezone.utc)
            unit.tenants.add(Tenant(tid, tid, TenantKind.MVNO if parent else TenantKind.MNO, TenantStatus.ACTIVE, parent, "EUR", t0, t0))
        unit.commit()


def test_memory_and_sql_mediation_stores_agree(db_url: str) -> None:
    memory: dict[str, MemoryMediationStore] = {}
    expected = scenario(lambda tenant: memory.setdefault(tenant, MemoryMediationStore(tenant)))
    db = make_engine(db_url)
    try:
        _tenants(db)
        got = scenario(lambda tenant: SqlMediationStore(db, tenant))
    finally:
        db.dispose()
    assert_same(expected, got, db_url.split(":")[0])
    answers = dict(expected)
    assert len(CASES) >= 8 and all(answers[f"{c}: again"] for c in CASES)
    assert sum(len(answers[f"{c}: rejects"]) for c in CASES) > 0 and sum(len(answers[f"{c}: seen"]) for c in CASES) > 20
    assert answers["rated summary"] == (4, 2, 4)
    assert answers["a chunk with a stored CDR"] == ("FailedPrecondition", "MEDIATION_CONFLICT", "")
    assert answers["nothing of it kept"] == (None, None)
    assert answers["another tenant's store"] == (None, [])
