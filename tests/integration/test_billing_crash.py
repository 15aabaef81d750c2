"""Bill runs that are killed (SIGKILL, at chosen SQL statements of their batches) and resumed, and bill runs racing each other, on SQLite and
PostgreSQL: the result is always that of one clean run -- one invoice per account and period, gapless numbers, each
CDR billed once -- and every document is valid."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import pytest
from sqlalchemy import func, insert, select

from engine.billing.ports import RunMode
from engine.billing.runs import RunRequest
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.billing import billing_accounts, billing_assignments, billing_invoices, billing_frozen_usage
from store.plans import usage_ledger
from store.tables import SubscriberRow
from tests.integration.billing_support import validate_all_documents

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
UTC = timezone.utc
ACCOUNTS = 120
CDRS_PER_ACCOUNT = 6
CYCLE = date(2026, 3, 1)
WHEN = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

WORKER = r"""
import sys
from dataclasses import replace
from datetime import date, datetime
from engine.billing.ports import RunMode
from engine.billing.runs import RunRequest
from engine.clock import FixedClock
from engine.identity import SYSTEM
from engine.settings import Settings
from pathlib import Path
from servers.root import build_root

url, home, run_id, when, batch = sys.argv[1:6]
# billing_workers: batches in parallel, each on its own connection (on PostgreSQL in as many worker processes)
root = build_root(Settings(home=Path(home), database_url=url, billing_workers=3), FixedClock(datetime.fromisoformat(when)))
desk = root.billing
desk.runs.batch_size = int(batch)
desk.runs.process_min_accounts = 0   # on PostgreSQL in worker processes (they stop when this process is killed)
desk.runs.stage_min_accounts = 1     # on PostgreSQL the usage staged at each start (store.usage_stage), read by the batches
import store.usage_stage
store.usage_stage.SCATTERED_PAGES_PER_CDR = -1.0   # though the seed's ledger lies account by account
principal = replace(SYSTEM, tenant_id="mno", subject="worker")
request = RunRequest("mno", RunMode.MANUAL, date(2026, 3, 1), resume_run_id=run_id)
for run in desk.runs.start(principal, request):
    print("run", run.run_id, run.issued, flush=True)
print("done", flush=True)
"""

# Loaded by every Python process of the killed run (the run and its spawned worker processes, through PYTHONPATH):
# counts the SQL statements the run's batches execute on the billing tables (statements of a worker process, or of a
# thread other than the run's main thread) and, just before the statement number KILL_AT, SIGKILLs the run's main
# process and itself -- a crash at a chosen point inside a batch (reading, computing, inside its transaction), not at
# a moment chosen by a timer.  Each process counts its own statements.
KILLER = r"""
import os, signal, threading
from sqlalchemy import event
from sqlalchemy.engine import Engine

os.environ.setdefault("RULEBILL_TEST_RUN_PID", str(os.getpid()))
_main = int(os.environ["RULEBILL_TEST_RUN_PID"])
_at = int(os.environ["RULEBILL_TEST_KILL_AT"])
_count = [0]
_lock = threading.Lock()


@event.listens_for(Engine, "before_cursor_execute")
def _kill_at(conn, cursor, statement, parameters, context, executemany):
    if "billing_" not in statement or (os.getpid() == _main and threading.current_thread() is threading.main_thread()):
        return
    with _lock:
        _count[0] += 1
        hit = _count[0] == _at
    if hit:
        if os.getpid() != _main:
            os.kill(_main, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)
"""

# the statement each killed attempt dies at: on SQLite the batches are threads of one process sharing one count (about
# 12 statements a batch, three batches at once), on PostgreSQL worker processes counting each their own (about 9 a
# batch).  The first kill lands before any batch committed, the second and third after some did (the runs go on from
# there), the last one early in a batch of the resumed run.
KILL_AT = {"sqlite": (3, 40, 50, 10), "postgresql": (3, 14, 20, 6)}


def _seed(root: Root) -> None:
    """ACCOUNTS accounts with one Smart S subscriber each (active all February) and rated CDRs in the usage ledger."""
    now = datetime(2026, 1, 15, tzinfo=UTC)
    feb = datetime(2026, 2, 1, 0, 0, tzinfo=UTC)
    accounts, assignments, subscribers, ledger = [], [], [], []
    for i in range(ACCOUNTS):
        acc = f"ACC-{i:05d}"
        sid = f"sub_crash{i:06d}"
        msisdn = f"336{20000000 + i:08d}"
        accounts.append(dict(tenant_id="mno", account_id=acc, name=f"Customer {i}", address_json='{"lines": ["1 rue A"], "city": "Lyon", '
                             '"postal_code": "69001", "country": "FR", "region": ""}', currency="EUR", anchor_day=1, time_zone="Europe/Paris",
                             language="en", delivery="download", email="", vat_id="", company_id="", payment_terms_days=14, tax_exemption="",
                             discount_plans="", buyer_reference="", status="active", create_time=now, update_time=now, close_time=None))
        assignments.append(dict(tenant_id="mno", subscriber_id=sid, valid_from=feb - timedelta(hours=1), account_id=acc, msisdn=msisdn,
                                valid_to=None))
        subscribers.append(dict(subscriber_id=sid, tenant_id="mno", msisdn=msisdn, imsi=f"20801{i:010d}", billing_account=acc,
                                payment_type="postpaid", status="active", tariff_plan="TP_SMART_S", create_time=now, update_time=now,
                                activate_time=feb - timedelta(hours=1), deactivate_time=None, barring_flags="", credit_limit_micros=None,
                                credit_currency=""))
        for k in range(CDRS_PER_ACCOUNT):
            ledger.append(dict(tenant_id="mno", cdr_id=f"{i:06d}{k:04d}" + "0" * 22, msisdn=msisdn, cycle="2026-02", currency="EUR",
                               charge_micros=100_000 + 1_234 * k + i, bundles_json="[]", start_time=feb + timedelta(days=k + 1, hours=i % 20),
                               service="voice", destination_group="DST_NATIONAL_MOBILE", tariff_plan="TP_SMART_S", plan_set_version=1,
                               units=60 + k))
    with root.db.begin() as conn:
        conn.execute(insert(billing_accounts), accounts)
        conn.execute(insert(billing_assignments), assignments)
        conn.execute(insert(SubscriberRow.__table__), subscribers)  # type: ignore[attr-defined]
        conn.execute(insert(usage_ledger), ledger)


def seeded_root(db_url: str, home: Path) -> Root:
    """A stack on 2 March 2026 with the sample plan set and ACCOUNTS accounts to bill for February."""
    settings = Settings(home=home, database_url=db_url)
    root = build_root(settings, FixedClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC)))
    bootstrap(settings, root, load_plans=True)
    _seed(root)
    root.clock._at = WHEN  # type: ignore[attr-defined]  # noqa: SLF001
    return root


@pytest.fixture(scope="module")
def crash_root(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Root, str, Path]]:
    home = tmp_path_factory.mktemp("crash")
    root = seeded_root(db_url, home)
    try:
        yield root, db_url, home
        validate_all_documents(root)
    finally:
        root.close()


def _invariants(root: Root, previews: dict[str, int]) -> None:
    with root.db.connect() as conn:
        rows = conn.execute(select(billing_invoices.c.account_id, billing_invoices.c.number, billing_invoices.c.tax_inclusive)
                            .where(billing_invoices.c.kind == "invoice")).all()
        frozen = _frozen_ids(conn)
    accounts = [r[0] for r in rows]
    assert len(accounts) == len(set(accounts)) == ACCOUNTS, "one invoice per account and period"
    assert sorted(int(r[1].split("-")[1]) for r in rows) == list(range(1, ACCOUNTS + 1)), "gapless numbers"
    assert {r[0]: int(r[2]) for r in rows} == previews, "the totals of one clean run"
    assert len(frozen) == len(set(frozen)) == ACCOUNTS * CDRS_PER_ACCOUNT, "each CDR billed once"


def test_a_bill_run_killed_inside_its_batches_and_resumed_gives_one_clean_run(crash_root: tuple[Root, str, Path]) -> None:
    root, url, home = crash_root
    desk = root.billing
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    previews = {f"ACC-{i:05d}": desk.runs.preview(principal, "mno", f"ACC-{i:05d}", CYCLE)[0].totals.tax_inclusive
                for i in range(ACCOUNTS)}
    killer = home / "killer"
    killer.mkdir(exist_ok=True)
    (killer / "sitecustomize.py").write_text(KILLER)
    plain = dict(os.environ, PYTHONPATH=str(REPO))
    plain.pop("RULEBILL_TEST_RUN_PID", None)
    run_id = ""
    kills = 0
    seen: list[int] = []
    points = KILL_AT["sqlite" if url.startswith("sqlite") else "postgresql"]
    for attempt in range(len(points) + 1):
        env = plain if attempt == len(points) else dict(plain, PYTHONPATH=f"{killer}{os.pathsep}{REPO}", RULEBILL_TEST_KILL_AT=str(points[attempt]))
        with subprocess.Popen([sys.executable, "-c", WORKER, url, str(home), run_id, WHEN.isoformat(), "7"], cwd=REPO, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
            out, err = child.communicate(timeout=300)
            first = out.split()
            assert first[:1] == ["run"], err
            run_id = first[1]
            if attempt < len(points):
                assert child.returncode == -signal.SIGKILL, f"attempt {attempt}: the run ended before statement {points[attempt]}: {out}{err}"
                kills += 1
                with root.db.connect() as conn:
                    seen.append(conn.execute(select(func.count()).select_from(billing_invoices)).scalar_one())
                continue
            assert child.returncode == 0, err
            assert out.strip().endswith("done")
    assert kills == 4
    assert seen == sorted(seen), f"a killed run lost invoices it had issued: {seen}"
    assert sum(0 < n < ACCOUNTS for n in seen) >= 2, f"the kills did not land in the middle of the run: {seen}"
    _invariants(root, previews)
    run = desk.get_run(principal, run_id)
    assert run.state.value == "done"
    # each batch adds its count in its own transaction: a killed batch adds nothing, so the count is exact
    assert run.issued == ACCOUNTS, run


def test_concurrent_runs_and_credit_notes_keep_numbers_gapless(crash_root: tuple[Root, str, Path]) -> None:
    root, _url, _home = crash_root
    desk = root.billing
    principal = replace(SYSTEM, tenant_id="mno", subject="test")
    # a second run of the same cycle racing a third one: nothing is billed twice, nothing is numbered twice
    errors: list[BaseException] = []

    def rerun() -> None:
        try:
            for _ in desk.runs.start(principal, RunRequest("mno", RunMode.MANUAL, CYCLE)):
                pass
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rerun) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    invoices = desk.invoices.list(principal, _filter(), _page())
    assert len(invoices) == ACCOUNTS
    # credit notes from several threads at once: their own series, gapless
    targets = [i.invoice_id for i in invoices[:24]]

    def credit(ids: list[str]) -> None:
        try:
            for invoice_id in ids:
                desk.invoices.credit_note(principal, "mno", invoice_id, "goodwill", None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=credit, args=(targets[k::4],)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with root.db.connect() as conn:
        numbers = sorted(int(n.rsplit("-", 1)[1]) for (n,) in conn.execute(select(billing_invoices.c.number)
                                                                           .where(billing_invoices.c.kind == "credit_note")))
    assert numbers == list(range(1, 25))


def _filter() -> Any:
    from engine.billing.ports import InvoiceFilter

    return InvoiceFilter(kind="invoice")


def _page() -> Any:
    from engine.paging import Page

    return Page(1000)


def _frozen_ids(conn: object) -> list[str]:
    """Every frozen CDR id, once per time it is frozen."""
    return [c for (ids,) in conn.execute(select(billing_frozen_usage.c.cdr_ids)) for c in ids.split("\n")]  # type: ignore[attr-defined]
