"""Mediation into the real store, on SQLite and PostgreSQL: reconciliation, duplicate files,
and kill -9 at random points followed by a rerun giving exactly one clean run's result."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.mediation import Mediator, MemoryMediationStore, find_layout
from engine.mediation.sources import find_source
from store.db import make_engine
from store.mediation import SqlMediationStore, mediated_cdrs, mediation_files, mediation_rejects
from tests.integration.helpers import kill_points

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules" / "mediation"

CHILD = r"""
import sys
from engine.mediation import Mediator, find_layout
from engine.mediation.sources import find_source
from store.db import make_engine
from store.mediation import SqlMediationStore

url, path, rules = sys.argv[1:4]
store = SqlMediationStore(make_engine(url), "mno")
commit = store.commit

def announced(chunk):
    commit(chunk)
    print("commit", chunk.checkpoint.record_no, flush=True)

store.commit = announced
summary = Mediator(find_layout(rules, "asterisk"), store, store, chunk_size=250, block_size=8192,
                   source=find_source(rules, "london-pbx")).mediate_path(path)
print("done", summary.records_in, flush=True)
"""


def _asterisk():  # type: ignore[no-untyped-def]
    return find_layout(RULES, "asterisk").bind(find_source(RULES, "london-pbx"))


def _asterisk_file(path: Path, rows: int) -> None:
    """Good rows with some repeats, unanswered calls, bad dates and short rows mixed in."""
    lines = []
    for i in range(1, rows + 1):   # the first record is good: a bad first record would refuse the file
        uid = f"{1764000000 + i}.{i % 7}" if i % 97 else f"{1764000000 + i - 1}.{(i - 1) % 7}"   # every 97th repeats the previous id
        day = "31" if i % 211 == 0 else "27"                                                     # 2026-11-31 is no date
        disposition = "NO ANSWER" if i % 13 == 0 else "ANSWERED"
        line = (f'"acct{i % 5}","0770090{i % 10000:04d}","0033612{i % 99999:05d}","ctx","clid","SIP/a-{i}","SIP/b-{i}","Dial",'
                f'"x","2026-11-{day} 10:00:00","2026-11-{day} 10:00:05","2026-11-{day} 10:01:05",65,{i % 300},"{disposition}","BILLING","{uid}",""')
        if i % 389 == 0:
            line = line.rsplit(",", 3)[0]       # a short row
        lines.append(line + "\n")
    path.write_text("".join(lines), encoding="utf-8")


def _clean_run(path: Path) -> tuple[MemoryMediationStore, dict]:
    store = MemoryMediationStore()
    summary = Mediator(_asterisk(), store, store, chunk_size=250).mediate_path(path)
    return store, summary.as_dict()


def _stored(url: str, file_id: str) -> tuple[dict, list, dict]:
    engine = make_engine(url)
    sql = SqlMediationStore(engine, "mno")
    cdrs = {row[0]: row for page in sql.cdrs_of_file(file_id) for row in page}
    rejects = sql.rejects_of_file(file_id)
    summary = sql.summary(file_id)
    engine.dispose()
    assert summary is not None
    return cdrs, rejects, summary.as_dict()


def _wipe(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        for table in (mediated_cdrs, mediation_rejects, mediation_files):
            conn.execute(table.delete())
    engine.dispose()


def test_kill_minus_nine_at_random_points_then_rerun_equals_one_clean_run(db_url: str, tmp_path: Path) -> None:
    _wipe(db_url)
    path = tmp_path / "Master.csv"
    _asterisk_file(path, 6000)
    clean, clean_summary = _clean_run(path)
    assert clean_summary["rejected_total"] > 0 and clean_summary["duplicates"] > 0 and clean_summary["filtered_total"] > 0
    rng = kill_points()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    kills = 0
    for _ in range(4):
        child = subprocess.Popen([sys.executable, "-c", CHILD, db_url, str(path), str(RULES)], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True, cwd=REPO, env=env)
        assert child.stdout is not None
        target = rng.randint(1, 6)
        seen = 0
        for line in child.stdout:
            if line.startswith("commit"):
                seen += 1
                if seen >= target:
                    os.kill(child.pid, signal.SIGKILL)   # lands between, or inside, the next chunk's transaction
                    kills += 1
                    break
            if line.startswith("done"):
                break
        child.wait(timeout=60)
        child.stdout.close()
    assert kills >= 1
    resumed = SqlMediationStore(make_engine(db_url), "mno")
    summary = Mediator(_asterisk(), resumed, resumed, chunk_size=250).mediate_path(path)
    resumed.db.dispose()
    cdrs, rejects, stored_summary = _stored(db_url, summary.file_id)
    assert cdrs == clean.cdrs
    assert rejects == sorted(clean.rejects, key=lambda r: r.record_no)
    assert stored_summary == clean_summary
    summary_dict = summary.as_dict()
    summary_dict["already_ingested"] = False
    assert summary_dict == clean_summary


def test_same_file_twice_stores_nothing_new_and_other_files_see_duplicates(db_url: str, tmp_path: Path) -> None:
    _wipe(db_url)
    path = tmp_path / "a.csv"
    _asterisk_file(path, 800)
    engine = make_engine(db_url)
    store = SqlMediationStore(engine, "mno")
    first = Mediator(_asterisk(), store, store, chunk_size=100).mediate_path(path)
    first.check()
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(mediated_cdrs)).scalar()
        rejects = conn.execute(select(func.count()).select_from(mediation_rejects)).scalar()
    assert count == first.normalised and rejects == first.rejected_total
    again = Mediator(_asterisk(), store, store, chunk_size=100).mediate_path(path)
    assert again.already_ingested and again.normalised == first.normalised
    renamed = tmp_path / "b.csv"
    renamed.write_bytes(path.read_bytes() + b"\n")      # same records, different content hash
    other = Mediator(_asterisk(), store, store, chunk_size=100).mediate_path(renamed)
    assert other.normalised == 0 and other.duplicates == first.normalised + first.duplicates
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mediated_cdrs)).scalar() == count
        stored = json.loads(conn.execute(select(mediation_files.c.summary).where(mediation_files.c.file_id == first.file_id)).scalar())
    assert stored["records_in"] == first.records_in and stored["complete"] is True
    engine.dispose()


def test_a_racing_commit_of_the_same_cdrs_is_a_clean_conflict(db_url: str, tmp_path: Path) -> None:
    """Two runs of one file at once: the loser's chunk is refused whole (FAILED_PRECONDITION), nothing half-stored."""
    from engine.errors import FailedPrecondition
    from engine.mediation.ports import MediationChunk

    _wipe(db_url)
    path = tmp_path / "race.csv"
    _asterisk_file(path, 300)
    engine = make_engine(db_url)
    winner = SqlMediationStore(engine, "mno")
    captured: list[MediationChunk] = []

    class Recording(SqlMediationStore):
        def commit(self, chunk: MediationChunk) -> None:
            captured.append(chunk)
            super().commit(chunk)

    loser = Recording(engine, "mno")
    Mediator(_asterisk(), loser, loser, chunk_size=1000).mediate_path(path)
    with engine.begin() as conn:       # forget the file, keep its CDRs: a second run now collides with them
        conn.execute(mediation_files.delete())
        conn.execute(mediation_rejects.delete())
    with pytest.raises(FailedPrecondition) as info:
        winner.commit(captured[0])
    assert info.value.reason == "MEDIATION_CONFLICT"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(mediation_files)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(mediation_rejects)).scalar() == 0
    engine.dispose()
