"""The long loops stop when their call ends (issue #13 item 5): validation, what-if, mediation and the progress
stream check the current call's scope; a scope whose time is up stops them at their next checkpoint.  Time is
a counter here: each reading of the scope's clock advances it, so "after N checks" is exact, never a wait."""

from __future__ import annotations

import hashlib
import io
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest

from engine.cancellation import CallScope, checkpoint, current, scope
from engine.cdr import Direction, MediatedCdr, Service
from engine.errors import Cancelled, DeadlineExceeded
from engine.identity import Principal, Role
from engine.mediation import MediationDesk, MemoryMediationStore
from engine.plans import load_plan_set
from engine.plans.catalogue import validate_files
from engine.plans.compiler import compile_plan_set
from engine.plans.loader import plan_files
from engine.rating.whatif import what_if
from servers.progress import progress_stream

REPO = Path(__file__).resolve().parents[3]


class Ticks:
    """A clock that moves one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0
        self.readings = 0

    def __call__(self) -> float:
        self.readings += 1
        self.now += 1.0
        return self.now


def ends_after(checks: int) -> CallScope:
    """A scope whose deadline passes at its ``checks``-th checkpoint."""
    return CallScope(deadline=float(checks), now=Ticks())


def test_validating_a_plan_set_stops_at_the_calls_deadline() -> None:
    files = plan_files(REPO / "plans")
    with scope(ends_after(1)), pytest.raises(DeadlineExceeded):
        validate_files({**files, "rates/many.yaml": "".join(f"k{i}: 1\n" for i in range(5000))})
    cancelled = CallScope()
    cancelled.cancel()
    with scope(cancelled), pytest.raises(Cancelled):
        validate_files({"rates/many.yaml": "".join(f"k{i}: 1\n" for i in range(5000))})


def test_what_if_stops_at_the_calls_deadline_and_not_before(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.rating.whatif as whatif_module

    monkeypatch.setattr(whatif_module, "CHUNK", 5)   # what-if checks once per chunk of rows: 5 rows a chunk here
    plan_set, problems = load_plan_set([REPO / "plans"], root=REPO)
    assert plan_set is not None, problems
    compiled = compile_plan_set(plan_set)
    start = datetime(2026, 11, 27, 10, tzinfo=timezone.utc)
    cdrs = [MediatedCdr(cdr_id=f"c{i}", source="t", origin_id=str(i), service=Service.VOICE, direction=Direction.ORIGINATING,
                        start_time=start, a_number="33612345678", b_number="33612000000", duration_seconds=60)
            for i in range(100)]
    consumed: list[int] = []

    def counted() -> Iterator[MediatedCdr]:
        for i, cdr in enumerate(cdrs):
            consumed.append(i)
            yield cdr

    with scope(ends_after(10)) as call, pytest.raises(DeadlineExceeded):
        what_if(counted(), compiled, compiled, lambda cdr: "TP_SMART_M")
    assert len(consumed) == 50 and call.checks == 10   # the 10th chunk's check stops it, before that chunk is rated
    with scope(ends_after(10_000)):
        report = what_if(cdrs, compiled, compiled, lambda cdr: "TP_SMART_M")
    assert sum(line.cdrs for line in report.lines) + report.rejected == 100


def test_mediation_stops_between_blocks_and_keeps_what_it_committed() -> None:
    rows = "".join(f'"a","0770090{i:04d}","07700900555","ctx","c","SIP/a","SIP/b","Dial","x","2026-11-27 10:00:00",'
                   f'"2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","{i}.1",""\n' for i in range(30_000))
    data = rows.encode()
    stores: dict[str, MemoryMediationStore] = {}
    desk = MediationDesk(REPO / "rules" / "mediation", lambda tenant: stores.setdefault(tenant, MemoryMediationStore()),
                         chunk_size=1000)
    who = Principal("ops", "mno", Role.OPERATOR_ADMIN, is_operator=True)
    file_id = hashlib.sha256(data).hexdigest()
    with scope(ends_after(2)), pytest.raises(DeadlineExceeded):
        desk.mediate(who, "asterisk", io.BytesIO(data), file_id, "Master.csv", source="london-pbx")
    checkpointed = stores["mno"].checkpoint(file_id)
    assert checkpointed is None or not checkpointed.done   # stopped part-way: nothing, or a resumable part
    summary = desk.mediate(who, "asterisk", io.BytesIO(data), file_id, "Master.csv", source="london-pbx")   # sent again: it resumes
    assert summary.complete and summary.records_in == 30_000


def test_a_progress_stream_runs_its_work_inside_the_calls_scope() -> None:
    class Context:
        def __init__(self) -> None:
            self.callbacks: list[Any] = []

        def add_callback(self, fn: Any) -> bool:
            self.callbacks.append(fn)
            return True

    seen: list[CallScope] = []
    release = threading.Event()

    def work(progress: Any) -> int:
        seen.append(current())
        progress(1, 2)
        release.wait(10)
        checkpoint()
        return 2

    call = CallScope()
    context = Context()
    with scope(call):
        stream = progress_stream(context, work, lambda done, total: ("progress", done), lambda made: ("done", made))  # type: ignore[arg-type]
        assert next(stream) == ("progress", 1)
    assert seen == [call]
    call.cancel()   # the client went away: the work's next checkpoint raises, and the stream raises it
    release.set()
    with pytest.raises(Cancelled):
        next(stream)
