"""Bill run on PostgreSQL: N accounts x M rated CDRs each, end to end including the UBL XML, against the floor of
reading the period's rated CDRs.

    python -m bench.bench_billing                          # 100,000 accounts x 200 CDRs (RULEBILL_TEST_POSTGRES_URL)
    python -m bench.bench_billing --accounts 10000         # scaled down
    python -m bench.bench_billing --quick                  # 300 accounts x 50 CDRs (smoke)
    python -m bench.bench_billing --workers 1              # batches one after the other (default 2, the billing_workers setting)
    python -m bench.bench_billing --in-process             # several batches in threads of this process, not worker processes
    python -m bench.bench_billing --profile /tmp/prof      # cProfile each worker process (its stats in /tmp/prof/worker-<pid>.prof)
    python -m bench.bench_billing --digest                 # and a SHA-256 over what was stored (old and new code compared)
    python -m bench.bench_billing --no-references          # the floor without its two reference reads (quicker pairs)
    python -m bench.bench_billing --cdr-ids sequential     # the CDR ids of the sessions before the seventh (see below)
    python -m bench.bench_billing --database NAME          # seed database NAME once and keep it; later runs bill it again
    python -m bench.bench_billing --ledger-order arrival   # the ledger's rows in start-time order, as rating stores them
    python -m bench.bench_billing --stage off              # the batches read the ledger even in a large run (no staged usage)

Setup (not timed): a fresh database, migrated; the sample plan set of plans/ active from 1 January 2026; N accounts
(FR, anchor 1) with one Smart S subscriber each, active all February; M rated CDRs per subscriber in the usage
ledger (what RatingService stores with counters), written with COPY.  The CDR ids are random 32 hex digits, as
mediation's ids are (the first 128 bits of a SHA-256), as they are in production; ``--cdr-ids sequential`` gives the
ids of the benchmarks before the seventh session (account and CDR number, in key order), which understated what a
per-CDR key of frozen CDRs cost (before billing_0008).

* **floor** -- the period's rated CDRs read with the same per-batch SQL the bill run's usage adapter runs
  (``SqlRatedUsage.blocks``: the account batch's numbers, the period, minus what is billed; each number's CDRs as
  binary arrays, summed per invoice line and written as usage.csv rows by engine.billing.usagecsv), one batch after the other in this process; for reference
  the same rows read one by one into ``RatedUsage`` values (``SqlRatedUsage.for_period``, what the bill run did
  before blocks and still does for accounts a block does not fit) and one ``COPY ... TO STDOUT`` of the rows.
* **rulebill** -- ``BillRunner.start`` (what ``StartBillRun`` and ``rulebill bills run`` call) for the cycle of
  1 March 2026: plan, per batch read accounts / assignments / subscribers / usage blocks / charges / advance fees /
  credits, compute every bill, render its UBL 2.1 document (with the per-CDR usage attachment), claim the periods,
  take the invoice numbers, store invoices + lines + documents, freeze every CDR (one row per invoice and number), in one
  transaction per batch (a run of ``STAGE_MIN_ACCOUNTS`` or more whose ledger sample shows an account's rows scattered first copies the period's usage once, ``store.usage_stage``,
  and its batches read the copy: in the run's time; ``--stage on|off`` forces it either way); the
  batches in ``--workers`` worker processes (``BillRunner.batch_workers``, as the server runs them on PostgreSQL), started
  before the run and kept (``BillRunner.warm_workers``, what the server does as it starts): their start-up (imports,
  runner, plan set compiled) is reported apart, not in the run's time.
* **validation** (reported apart) -- per invoice, of a sample of the issued documents: lxml against the OASIS
  UBL 2.1 XSD, and saxonche running the EN 16931 validation XSLT (needs ../shared/conformance).

Reported: wall time; CPU time of this process, of its worker processes (read from /proc while they live), and of the PostgreSQL server (its
postmaster and backends, read from /proc when the data directory's postmaster.pid is readable); invoices/s,
CDRs/s; load average before each part.
"""

from __future__ import annotations

import argparse

import os
import random
import shutil
import sys
import time
import uuid
import zlib
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
UTC = timezone.utc
FEB = datetime(2026, 1, 31, 23, 0, tzinfo=UTC)   # 1 February 00:00 in Paris


def load() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def fresh_database(admin_url: str, name: str = "") -> tuple[str, object, bool]:
    """A database for the run: a new one, or ``name`` (created when missing, else reused: True)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from store.db import normalise_url

    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        existed = bool(name) and conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first() is not None
        name = name or f"rb_bench_{uuid.uuid4().hex[:10]}"
        if not existed:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    return make_url(normalise_url(admin_url)).set(database=name).render_as_string(hide_password=False), admin, existed


# what a bill run writes: emptied before a kept database is billed again (its accounts, subscribers and ledger stay)
BILL_RUN_TABLES = ("billing_periods", "billing_invoices", "billing_invoice_lines", "billing_frozen_usage", "billing_ledger",
                   "billing_outbox", "billing_runs", "billing_series")


def seeded(root: object, accounts: int, cdrs: int) -> bool:
    """Whether a kept database holds this size's seed (then its bill run's tables are emptied for the next run)."""
    from sqlalchemy import text

    with root.db.connect() as conn:  # type: ignore[attr-defined]
        have = conn.execute(text("SELECT count(*) FROM billing_accounts WHERE tenant_id = 'mno'")).scalar_one()
        rows = conn.execute(text("SELECT count(*) FROM usage_ledger WHERE tenant_id = 'mno'")).scalar_one() if have == accounts else -1
    if rows != accounts * cdrs:
        return False
    raw = root.db.raw_connection()  # type: ignore[attr-defined]
    try:
        driver = raw.dbapi_connection
        driver.autocommit = True  # type: ignore[union-attr]
        try:
            driver.execute(f"TRUNCATE {', '.join(BILL_RUN_TABLES)}")  # type: ignore[union-attr]
            driver.execute("CHECKPOINT")  # type: ignore[union-attr]
        finally:
            driver.autocommit = False  # type: ignore[union-attr]   # back to the pool as it came
    finally:
        raw.close()
    return True


def seed(root: object, accounts: int, cdrs: int, random_ids: bool = True, arrival: bool = False) -> None:
    """Accounts, subscribers, assignments and ledger rows, by COPY: the rows account by account (each account's CDRs
    together on a few heap pages), or (``arrival``) in the order of their start times, as rating writes them."""
    rng = random.Random(11)
    db = root.db  # type: ignore[attr-defined]
    raw = db.raw_connection()
    now = datetime(2026, 1, 15, tzinfo=UTC)
    try:
        cur = raw.cursor()
        with cur.copy("COPY billing_accounts (tenant_id, account_id, name, address_json, currency, anchor_day, time_zone, language, "
                      "delivery, email, vat_id, company_id, payment_terms_days, tax_exemption, discount_plans, buyer_reference, status, "
                      "create_time, update_time) FROM STDIN") as cp:
            for i in range(accounts):
                cp.write_row(("mno", f"B{i:07d}", f"Customer {i}", '{"lines": ["1 rue A"], "city": "Lyon", "postal_code": "69001", '
                              '"country": "FR", "region": ""}', "EUR", 1, "Europe/Paris", "fr", "download", "", "", "", 14, "", "", "",
                              "active", now, now))
        with cur.copy("COPY subscribers (subscriber_id, tenant_id, msisdn, imsi, billing_account, payment_type, status, tariff_plan, "
                      "create_time, update_time, activate_time, barring_flags, credit_currency) FROM STDIN") as cp:
            for i in range(accounts):
                cp.write_row((f"sub_b{i:08d}", "mno", f"3369{i:07d}", f"20801{i:010d}", f"B{i:07d}", "postpaid", "active", "TP_SMART_S",
                              now, now, FEB, "", ""))
        with cur.copy("COPY billing_assignments (tenant_id, subscriber_id, valid_from, account_id, msisdn) FROM STDIN") as cp:
            for i in range(accounts):
                cp.write_row(("mno", f"sub_b{i:08d}", FEB, f"B{i:07d}", f"3369{i:07d}"))
        raw.commit()
        step = 27 * 86400 // max(cdrs, 1)
        groups = ("DST_NATIONAL_MOBILE", "DST_NATIONAL_FIXED", "DST_EU", "DST_ONNET")

        def row(i: int, k: int) -> tuple[object, ...]:
            return ("mno", f"{rng.getrandbits(128):032x}" if random_ids else f"{i:09d}{k:05d}", f"3369{i:07d}", "2026-02", "EUR",
                    20_000 + (i * 7 + k * 13) % 900_000, "[]", FEB + timedelta(seconds=3600 + k * step), "voice" if k % 5 else "sms",
                    groups[k % 4], "TP_SMART_S", 1, 60 + k % 300)

        copy = ("COPY usage_ledger (tenant_id, cdr_id, msisdn, cycle, currency, charge_micros, bundles_json, start_time, service, "
                "destination_group, tariff_plan, plan_set_version, units) FROM STDIN")
        if arrival:
            # as rating stores them: in the order the calls were made, every account's k-th CDR before any (k+1)-th, the
            # accounts in another random order at each step (calls do not come in account order), so one account's CDRs
            # lie on as many heap pages as it has CDRs, and the accounts of a bill run's batch share none of them
            order = list(range(accounts))
            steps = max(1, cdrs * 5000 // max(accounts, 1))
            for first in range(0, cdrs, steps):
                with cur.copy(copy) as cp:
                    for k in range(first, min(first + steps, cdrs)):
                        rng.shuffle(order)
                        for i in order:
                            cp.write_row(row(i, k))
                raw.commit()
        else:
            for first in range(0, accounts, 5000):
                with cur.copy(copy) as cp:
                    for i in range(first, min(first + 5000, accounts)):
                        for k in range(cdrs):
                            cp.write_row(row(i, k))
                raw.commit()
        raw.commit()
        # the state of a ledger written long before its bill run: vacuumed and analysed (not autovacuum's work
        # landing in the middle of the measured run)
        driver = raw.dbapi_connection
        driver.autocommit = True  # type: ignore[union-attr]
        try:
            driver.execute("VACUUM ANALYZE")  # type: ignore[union-attr]
        finally:
            driver.autocommit = False  # type: ignore[union-attr]
    finally:
        raw.close()


def floor(root: object, accounts: int, batch: int,
          references: bool = True) -> tuple[tuple[float, float, float, int], tuple[float, float, float, int] | None, float | None]:
    """The period's rated CDRs read batch by batch with the bill run's own usage SQL (blocks), then (``references``)
    one by one as values and by one COPY TO STDOUT.  Each: (wall, client CPU, PostgreSQL CPU, CDRs)."""
    from store.billing import SqlRatedUsage

    db = root.db  # type: ignore[attr-defined]
    since = FEB - timedelta(days=62)
    until = datetime(2026, 2, 28, 23, 0, tzinfo=UTC)
    out = []
    for how in ("blocks", "for_period") if references else ("blocks",):
        w0, c0, p0 = time.perf_counter(), time.process_time(), pg_cpu(root)
        rows = 0
        with db.connect() as conn:
            usage = SqlRatedUsage(conn)
            for first in range(0, accounts, batch):
                numbers = [f"3369{i:07d}" for i in range(first, min(first + batch, accounts))]
                if how == "blocks":
                    rows += sum(g.cdrs for b in usage.blocks("mno", numbers, since, until) for g in b.groups)
                else:
                    rows += len(usage.for_period("mno", numbers, since, until))
        out.append((time.perf_counter() - w0, time.process_time() - c0, pg_cpu(root) - p0, rows))
    if not references:
        return out[0], None, None
    raw = db.raw_connection()
    w1 = time.perf_counter()
    try:
        cur = raw.cursor()
        sink = 0
        with cur.copy("COPY (SELECT cdr_id, msisdn, start_time, service, destination_group, charge_micros, currency, tariff_plan, "
                      "plan_set_version, units FROM usage_ledger WHERE tenant_id = 'mno') TO STDOUT") as cp:
            for block in cp:
                sink += len(block)
    finally:
        raw.close()
    return out[0], out[1], time.perf_counter() - w1


def pg_cpu(root: object) -> float:
    """CPU seconds the PostgreSQL server has used (postmaster, its exited children and its live backends); nan when
    its data directory cannot be read (another machine, another user)."""
    return sum(pg_cpu_split(root))


def pg_cpu_split(root: object) -> tuple[float, float]:
    """``pg_cpu`` as user and system (kernel: page copies from the OS cache, disk reads, writes) CPU seconds."""
    from sqlalchemy import text

    try:
        with root.db.connect() as conn:  # type: ignore[attr-defined]
            data = conn.execute(text("SHOW data_directory")).scalar_one()
        postmaster = int(Path(data, "postmaster.pid").read_text().split()[0])
        tick = os.sysconf("SC_CLK_TCK")
        user = system = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            pid, ppid = int(entry.name), int(fields[1])
            if pid == postmaster:
                user += int(fields[11]) + int(fields[13])          # utime, cutime
                system += int(fields[12]) + int(fields[14])        # stime, cstime
            elif ppid == postmaster:
                user += int(fields[11])
                system += int(fields[12])
        return user / tick, system / tick
    except (OSError, ValueError, IndexError):
        return float("nan"), float("nan")


def children_cpu() -> float:
    """CPU seconds of this process's exited children (the bill run's worker processes, once the pool has ended)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def live_children_cpu() -> float:
    """CPU seconds of this process's live children (the bill run's worker processes, kept from run to run)."""
    me, tick, total = os.getpid(), os.sysconf("SC_CLK_TCK"), 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                total += int(fields[11]) + int(fields[12])
    return total / tick


def workers_cpu() -> float:
    """CPU seconds of this process's children, live (the kept worker pool) and exited (a worker that died and was
    replaced; the pools of the code before the kept pool, one per run)."""
    return children_cpu() + live_children_cpu()


def _profiled_worker(factory: object, folder: str) -> object:
    """A bill-run worker's runner built by ``factory``, with cProfile (CPU time) on from here to the worker's exit (its stats
    written to ``folder``/worker-<pid>.prof then)."""
    import atexit
    import cProfile

    profile = cProfile.Profile(time.process_time)   # CPU time: the figures hold on a loaded machine

    def write() -> None:
        profile.disable()
        profile.dump_stats(f"{folder}/worker-{os.getpid()}.prof")

    atexit.register(write)
    profile.enable()
    return factory()  # type: ignore[operator]


def bill_run(root: object, batch: int, workers: int, in_process: bool, profile: str = "",
             stage: str = "auto") -> tuple[float, float, object, float]:
    """The run's wall and CPU time (this process), its last state, and the CPU time its worker processes took to start
    (before the run)."""
    from engine.billing.ports import RunMode
    from engine.billing.runs import RunRequest
    from engine.identity import SYSTEM
    
    desk = root.billing
    desk.runs.batch_size = batch
    desk.runs.workers = workers
    if in_process:
        desk.runs.batch_workers = None
    elif profile:
        from functools import partial

        from servers.adapters.bill_run_processes import BillRunProcesses

        Path(profile).mkdir(parents=True, exist_ok=True)
        desk.runs.batch_workers = BillRunProcesses(partial(_profiled_worker, desk.runs.batch_workers.factory, profile), workers)
    desk.runs.process_min_accounts = 0   # worker processes whatever the size (started below, as the server starts them)
    if stage != "auto":   # the usage staged once at the run's start (store.usage_stage) whatever the size and layout, or never
        desk.runs.stage_min_accounts = 1 if stage == "on" else 1 << 62
        if stage == "on":   # also on a ledger laid out by number, which the product's sample would leave unstaged
            import store.usage_stage

            store.usage_stage.SCATTERED_PAGES_PER_CDR = -1.0
    principal = replace(SYSTEM, tenant_id="mno", subject="bench")
    # the catalogue (parse + compile of the stored plan set) is built once per process: not part of the run's rate
    desk.runs._catalogues("mno", datetime(2026, 3, 1, tzinfo=UTC))  # noqa: SLF001
    started = 0.0
    if not in_process:
        # the worker processes start as the server starts (servers.app.start_scheduler), not in a run:
        # started here, before the run, and their start-up reported apart
        k0, s0 = workers_cpu(), time.perf_counter()
        assert desk.runs.warm_workers(wait=True), "the worker processes did not start"
        started = workers_cpu() - k0
        print(f"  worker processes' start-up (BillRunner.warm_workers: imports, runner, plan set compiled; before the run, "
              f"as the server does at its start): {time.perf_counter() - s0:.2f} s wall, {started:.2f} s CPU for {workers} workers")
    w0, c0 = time.perf_counter(), time.process_time()
    last = None
    for last in desk.runs.start(principal, RunRequest("mno", RunMode.MANUAL, date(2026, 3, 1))):
        pass
    return time.perf_counter() - w0, time.process_time() - c0, last, started


def digest(root: object) -> tuple[str, int]:
    """SHA-256 over what the run stored for each account, in account order: its document (the invoice number, which
    depends on the order the batches committed in, written as N), its bill's JSON and its invoice lines (without the
    random invoice id); with how many invoices.  Equal digests from two versions of the code: the same bytes."""
    import hashlib

    from sqlalchemy import select

    from store.billing import billing_invoice_lines, billing_invoices

    t, ln = billing_invoices, billing_invoice_lines
    per_account: dict[str, str] = {}
    with root.db.connect() as conn:  # type: ignore[attr-defined]
        lines: dict[str, list[str]] = {}
        for r in conn.execute(select(ln).order_by(ln.c.invoice_id, ln.c.line_id)):
            lines.setdefault(r.invoice_id, []).append(repr(tuple(r)[1:]))
        for r in conn.execute(select(t.c.invoice_id, t.c.account_id, t.c.number, t.c.document, t.c.bill)):
            h = hashlib.sha256(zlib.decompress(r.document).replace(r.number.encode(), b"N"))
            h.update(zlib.decompress(r.bill))
            h.update("\n".join(lines.get(r.invoice_id, [])).encode())
            per_account[r.account_id] = h.hexdigest()
    total = hashlib.sha256("".join(per_account[a] for a in sorted(per_account)).encode())
    return total.hexdigest(), len(per_account)


def validation_cost(root: object, sample: int) -> tuple[float, float, int, list[str]] | None:
    sys.path.insert(0, str(REPO))
    try:
        from tests.ubl_conformance import schematron_failures, xsd_errors
        from tests.conftest import conformance_dir
    except ImportError:
        return None
    if not (conformance_dir() / "invoice" / "en16931").is_dir():
        return None
    from sqlalchemy import select

    from store.billing import billing_invoices

    with root.db.connect() as conn:  # type: ignore[attr-defined]
        docs = [zlib.decompress(d) for (d,) in conn.execute(select(billing_invoices.c.document).limit(sample))]
    xsd_errors(docs[0]), schematron_failures(docs[0])  # load the schema and compile the XSLT first (once per process)
    t0 = time.perf_counter()
    bad: list[str] = []
    for d in docs:
        bad += xsd_errors(d)
    xsd = (time.perf_counter() - t0) / len(docs)
    t1 = time.perf_counter()
    for d in docs:
        bad += [r for r, flag in schematron_failures(d)]
    sch = (time.perf_counter() - t1) / len(docs)
    return xsd, sch, len(docs), bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--cdrs", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2, help="batches in parallel (the billing_workers setting)")
    parser.add_argument("--in-process", action="store_true", help="parallel batches in threads of this process (no worker processes)")
    parser.add_argument("--sample", type=int, default=200, help="documents whose validation is timed")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--cdr-ids", choices=("random", "sequential"), default="random",
                        help="random 32 hex digits as mediation's (default), or in key order as before the seventh session")
    parser.add_argument("--profile", default="", metavar="DIR", help="cProfile each worker process; its stats to DIR/worker-<pid>.prof")
    parser.add_argument("--no-references", action="store_true",
                        help="the floor's blocks read only (not the CDR-by-CDR read nor the COPY TO STDOUT: before/after pairs)")
    parser.add_argument("--digest", action="store_true", help="print a SHA-256 over every stored document, bill and line (see digest)")
    parser.add_argument("--ledger-order", choices=("account", "arrival"), default="account",
                        help="the ledger's rows written account by account (default, as every session measured) or in the order of "
                             "their start times, as rating stores them (one account's CDRs on as many heap pages as CDRs)")
    parser.add_argument("--database", default="", metavar="NAME",
                        help="seed database NAME once and keep it: a later run with the same size bills it again (its bill run's "
                             "tables emptied first), so old and new code are measured on the same rows")
    parser.add_argument("--stage", choices=("auto", "on", "off"), default="auto",
                        help="the run's usage staged once at its start (store.usage_stage): as the product decides (runs of "
                             "STAGE_MIN_ACCOUNTS or more whose ledger sample shows an account's rows scattered), always (whatever the "
                             "size and layout), or never")
    parser.add_argument("--postgres", default=os.environ.get("RULEBILL_TEST_POSTGRES_URL", ""))
    args = parser.parse_args(argv)
    if args.quick:
        args.accounts, args.cdrs, args.sample = 300, 50, 20
    if not args.postgres:
        print("needs PostgreSQL: --postgres URL or RULEBILL_TEST_POSTGRES_URL (tests/with-postgres.sh starts one)")
        return 2
    sys.path.insert(0, str(REPO))
    from engine.clock import FixedClock
    from engine.settings import Settings
    from servers.bootstrap import bootstrap
    from servers.root import build_root
    from store.migrate import upgrade

    url, admin, existed = fresh_database(args.postgres, args.database)
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="rb-bench-billing-"))
    try:
        upgrade(url)
        settings = Settings(home=home, database_url=url, billing_workers=args.workers)   # as many worker processes
        root = build_root(settings, FixedClock(datetime(2026, 1, 1, 9, 0, tzinfo=UTC)))
        bootstrap(settings, root, load_plans=True)
        print(f"bill run bench: {args.accounts:,} accounts x {args.cdrs} CDRs = {args.accounts * args.cdrs:,} rated CDRs, "
              f"batch {args.batch}, {args.workers} workers, {args.cdr_ids} CDR ids, ledger in {args.ledger_order} order, "
              f"usage staged: {args.stage}, PostgreSQL; "
              f"{os.cpu_count()} cores; {load()}")
        t0 = time.perf_counter()
        if existed and seeded(root, args.accounts, args.cdrs):
            print(f"  setup: database {args.database} kept from an earlier run, its bill run's tables emptied")
        else:
            assert not existed, f"database {args.database} holds another size: drop it or name another"
            seed(root, args.accounts, args.cdrs, args.cdr_ids == "random", args.ledger_order == "arrival")
            print(f"  setup (COPY of accounts, subscribers, ledger; not timed): {time.perf_counter() - t0:.1f} s")
        root.clock._at = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)  # type: ignore[attr-defined]  # noqa: SLF001
        print(f"  [{load()}]")
        (fw, fc, fp, rows), values, copy_wall = floor(root, args.accounts, args.batch, not args.no_references)
        assert rows == args.accounts * args.cdrs, rows
        n = args.accounts
        print(f"  floor: read the period's rated CDRs with the bill run's usage SQL (SqlRatedUsage.blocks, {args.batch} accounts a "
              f"query, one after the other): {fw:.2f} s wall = {n / fw:,.0f} accounts/s; CPU {fc:.2f} s here + {fp:.2f} s PostgreSQL "
              f"= {(fc + fp) / n * 1000:.2f} ms per account")
        if values is not None and copy_wall is not None:
            vw, vc, vp, vrows = values
            assert vrows == rows, (rows, vrows)
            print(f"  reference: the same CDRs one by one into RatedUsage (SqlRatedUsage.for_period): {vw:.2f} s wall = {n / vw:,.0f} "
                  f"accounts/s; CPU {vc:.2f} s here + {vp:.2f} s PostgreSQL = {(vc + vp) / n * 1000:.2f} ms per account")
            print(f"  reference: the same rows by one COPY TO STDOUT: {copy_wall:.2f} s, {rows / copy_wall:,.0f} rows/s")
        print(f"  [{load()}]")
        k0, (pu0, ps0) = workers_cpu(), pg_cpu_split(root)
        wall, cpu, run, started = bill_run(root, args.batch, args.workers, args.in_process, args.profile, args.stage)
        pu1, ps1 = pg_cpu_split(root)
        p0, p1 = pu0 + ps0, pu1 + ps1
        kids = workers_cpu() - k0 - started
        assert run is not None and run.issued == args.accounts and run.failed == 0, run  # type: ignore[attr-defined]
        total = cpu + kids + (p1 - p0)
        print(f"  rulebill bill run (StartBillRun's BillRunner.start, UBL XML included): {wall:.2f} s wall, {n / wall:,.0f} invoices/s, "
              f"{rows / wall:,.0f} CDRs/s; ratio run/floor {wall / fw:.1f}x")
        print(f"    CPU: {cpu:.2f} s this process + {kids:.2f} s worker processes + {p1 - p0:.2f} s PostgreSQL = {total:.2f} s "
              f"({total / wall:.2f} of {os.cpu_count()} cores over the run's wall time); per invoice {(cpu + kids) / n * 1000:.2f} ms "
              f"Python + {(p1 - p0) / n * 1000:.2f} ms PostgreSQL ({(pu1 - pu0) / n * 1000:.2f} user + {(ps1 - ps0) / n * 1000:.2f} "
              f"system)")
        print(f"  [{load()}]")
        if args.digest:
            sha, count = digest(root)
            print(f"  SHA-256 of the {count:,} invoices' documents, bills and lines: {sha}")
        cost = validation_cost(root, args.sample)
        if cost is None:
            print("  validation: ../shared/conformance absent, not measured")
        else:
            xsd, sch, n, bad = cost
            print(f"  validation of {n} issued documents, per invoice: OASIS UBL 2.1 XSD (lxml) {xsd * 1000:.2f} ms, "
                  f"EN 16931 Schematron (saxonche XSLT) {sch * 1000:.2f} ms; problems found: {len(bad)}")
        root.close()  # type: ignore[attr-defined]
    finally:
        from sqlalchemy import text
        from sqlalchemy.engine import make_url

        if not args.database:
            with admin.connect() as conn:  # type: ignore[attr-defined]
                conn.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
        admin.dispose()  # type: ignore[attr-defined]
        shutil.rmtree(home, ignore_errors=True)   # the run's keyring and signing key: nothing to keep
    return 0


if __name__ == "__main__":
    sys.exit(main())

