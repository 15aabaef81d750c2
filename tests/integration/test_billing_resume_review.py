"""A review bill run (``--review``: drafts only) killed in the middle of its batches and resumed the way docs/BILLING.md
says -- ``StartBillRun(resume_run_id=...)`` or ``rulebill bills run --resume RUN_ID``, without naming ``review`` again --
still stops at drafts: no invoice is issued and no invoice number is taken, on SQLite and PostgreSQL.  (The resume
used to hand the batches the caller's request, whose ``review`` is false.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import func, select

from clients.cli import main
from engine.identity import Role
from servers.app import create_server, graceful_stop
from servers.root import Root
from store.billing import billing_invoices, billing_series
from tests.integration.test_billing_crash import KILLER, WHEN, seeded_root

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
HALF = 60   # the seeded 120 accounts: the first half resumed over gRPC, the second from the command line

# a fresh review run of the given accounts (batches of 5, three at once), killed by KILLER at a chosen statement
REVIEW_RUN = r"""
import sys
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path
from engine.billing.ports import RunMode
from engine.billing.runs import RunRequest
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.root import build_root

url, home, when, first, last = sys.argv[1:6]
# billing_workers: batches in parallel, each on its own connection (on PostgreSQL in as many worker processes)
root = build_root(Settings(home=Path(home), database_url=url, billing_workers=3), FixedClock(datetime.fromisoformat(when)))
desk = root.billing
desk.runs.batch_size = 5
desk.runs.process_min_accounts = 0
accounts = tuple(f"ACC-{i:05d}" for i in range(int(first), int(last)))
request = RunRequest("mno", RunMode.MANUAL, date(2026, 3, 1), accounts, review=True)
for run in desk.runs.start(replace(SYSTEM, tenant_id="mno", subject="worker"), request):
    print("run", run.run_id, flush=True)
print("done", flush=True)
"""
KILL_AT = {"sqlite": 40, "postgresql": 14}   # after some batches committed (see test_billing_crash.KILL_AT)


@pytest.fixture(scope="module")
def served(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Root, str, Path, str]]:
    home = tmp_path_factory.mktemp("resume")
    root = seeded_root(db_url, home)
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    try:
        yield root, db_url, home, f"127.0.0.1:{port}"
    finally:
        graceful_stop(server, root, 1.0).wait()
        root.close()


def _killed_review_run(url: str, home: Path, first: int, last: int) -> str:
    killer = home / "killer"
    killer.mkdir(exist_ok=True)
    (killer / "sitecustomize.py").write_text(KILLER)
    env = dict(os.environ, PYTHONPATH=f"{killer}{os.pathsep}{REPO}", RULEBILL_TEST_KILL_AT=str(KILL_AT[url.split(":")[0].split("+")[0]]))
    env.pop("RULEBILL_TEST_RUN_PID", None)
    with subprocess.Popen([sys.executable, "-c", REVIEW_RUN, url, str(home), WHEN.isoformat(), str(first), str(last)], cwd=REPO, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        out, err = child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL, f"the review run ended before it was killed: {out}{err}"
    words = out.split()
    assert words[:1] == ["run"], err
    return words[1]


def _invoices(root: Root, run_id: str) -> list[tuple[str, str]]:
    with root.db.connect() as conn:
        return [(r[0], r[1] or "") for r in conn.execute(select(billing_invoices.c.state, billing_invoices.c.number)
                                                          .where(billing_invoices.c.run_id == run_id))]


def _numbers_taken(root: Root) -> int:
    with root.db.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(billing_series.c.next_number), 1))).scalar_one()) - 1


def _resumed_as_drafts(root: Root, run_id: str, before: list[tuple[str, str]]) -> None:
    assert 0 < len(before) < HALF, f"the kill did not land in the middle of the run: {len(before)} drafts"
    after = _invoices(root, run_id)
    assert len(after) == HALF
    assert {state for state, _ in after} == {"draft"}, "a resumed review run issued invoices"
    assert {number for _, number in after} == {""}
    assert _numbers_taken(root) == 0, "a resumed review run took invoice numbers"


def test_a_killed_review_run_resumed_over_grpc_stays_drafts(served: tuple[Root, str, Path, str]) -> None:
    root, url, home, address = served
    run_id = _killed_review_run(url, home, 0, HALF)
    before = _invoices(root, run_id)
    _, bearer = root.tokens.issue(None, "resume", "mno", Role("operator_admin"), 3600)
    from clients.client import RulebillClient

    with RulebillClient(address, bearer) as client:
        runs = list(client.billing.run(resume_run_id=run_id))
    assert runs[-1].drafts == HALF and runs[-1].issued == 0
    _resumed_as_drafts(root, run_id, before)


def test_a_killed_review_run_resumed_from_the_command_line_stays_drafts(served: tuple[Root, str, Path, str],
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    root, url, home, address = served
    run_id = _killed_review_run(url, home, HALF, 2 * HALF)
    before = _invoices(root, run_id)
    _, bearer = root.tokens.issue(None, "resume-cli", "mno", Role("operator_admin"), 3600)
    code = main(["bills", "run", "--resume", run_id, "--server", address, "--token", bearer])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert f"{run_id}: 0 issued, {HALF} drafts" in out.out, out.out
    _resumed_as_drafts(root, run_id, before)
