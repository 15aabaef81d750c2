"""A batch is complete or absent, even when the generating process is killed mid-insert (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.clock import SystemClock
from engine.errors import FailedPrecondition
from engine.identity import Principal, Role
from engine.tenancy import TenantAdmin
from engine.vouchers import BatchRequest, StaticKeyProvider, VoucherDesk, VoucherSettings, load_profiles
from engine.vouchers.rules import load_voucher_rules
from store.db import make_engine
from store.uow import SqlUnitOfWorkFactory
from store.vouchers import SqlVoucherUnitOfWorkFactory, voucher_batches, vouchers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent('''
    import sys
    from datetime import timezone, datetime
    from pathlib import Path
    from engine.clock import SystemClock
    from engine.identity import Principal, Role
    from engine.tenancy import TenantAdmin
    from engine.vouchers import BatchRequest, StaticKeyProvider, VoucherDesk, VoucherSettings, load_profiles
    from engine.vouchers.rules import load_voucher_rules
    from store.db import make_engine
    from store.uow import SqlUnitOfWorkFactory
    from store.vouchers import SqlVoucherUnitOfWorkFactory

    db = make_engine(sys.argv[1])
    base = SqlUnitOfWorkFactory(db)
    TenantAdmin(base, SystemClock()).create_mno("mno", "Operator", "EUR")
    profiles = load_profiles([Path("plans/vouchers")])
    desk = VoucherDesk(SqlVoucherUnitOfWorkFactory(base), profiles, StaticKeyProvider.random(),
                       load_voucher_rules(Path("rules")).lifecycle, SystemClock(),
                       VoucherSettings(chunk_size=5000))
    admin = Principal("killer", "mno", Role.OPERATOR_ADMIN, is_operator=True)

    def progress(done, total):
        print(done, flush=True)

    desk.generate_batch(admin, BatchRequest("vp-mno-eur-10", 400_000), progress)
    print("committed", flush=True)
''')


def test_killed_generation_leaves_no_batch_and_no_vouchers(db_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT, db_url], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:  # wait until a good part of the rows is in the open transaction
            lines.append(line.strip())
            if line.strip().isdigit() and int(line) >= 50_000:
                break
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
    assert "committed" not in lines and any(x.isdigit() for x in lines), lines
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(voucher_batches)).scalar() == 0
            assert conn.execute(select(func.count()).select_from(vouchers)).scalar() == 0
    finally:
        engine.dispose()


class _StuckSerial:
    """A unit of work whose next free serial is always 1: what a batch sees when another batch takes the serial
    range it planned between its plan and its insert (the race ``VoucherDesk.generate_batch`` retries on)."""

    def __init__(self, uow: Any) -> None:
        self.uow = uow

    def __enter__(self) -> Any:
        entered = self.uow.__enter__()
        entered.vouchers.next_serial = lambda: 1
        return entered

    def __exit__(self, *exc: Any) -> Any:
        return self.uow.__exit__(*exc)


def test_a_batch_whose_serials_are_taken_is_refused_and_stores_nothing(db_url: str) -> None:
    """The store recognises the driver's unique violation on a raw insert (psycopg's COPY, sqlite3's packed insert)
    as the serial range being taken: the desk plans again, and after its retries refuses with SERIALS_BUSY; the
    batch that holds the serials is untouched and the refused one left no row."""
    db = make_engine(db_url)
    try:
        base = SqlUnitOfWorkFactory(db)
        TenantAdmin(base, SystemClock()).create_mno("mno", "Operator", "EUR")
        vouchers_uow = SqlVoucherUnitOfWorkFactory(base)
        desk_args = (load_profiles([REPO / "plans" / "vouchers"]), StaticKeyProvider.random(),
                     load_voucher_rules(REPO / "rules").lifecycle, SystemClock(), VoucherSettings(chunk_size=50))
        admin = Principal("admin", "mno", Role.OPERATOR_ADMIN, is_operator=True)
        first = VoucherDesk(vouchers_uow, *desk_args).generate_batch(admin, BatchRequest("vp-mno-eur-10", 120))
        assert first.first_serial == 1
        stuck = VoucherDesk(lambda: _StuckSerial(vouchers_uow()), *desk_args)
        with pytest.raises(FailedPrecondition) as info:
            stuck.generate_batch(admin, BatchRequest("vp-mno-eur-10", 120))
        assert info.value.reason == "SERIALS_BUSY"
        with db.connect() as conn:
            assert conn.execute(select(voucher_batches.c.batch_id)).scalars().all() == [first.batch_id]
            assert conn.execute(select(func.count()).select_from(vouchers)).scalar() == 120
            assert set(conn.execute(select(vouchers.c.batch_id)).scalars()) == {first.batch_id}
    finally:
        db.dispose()
