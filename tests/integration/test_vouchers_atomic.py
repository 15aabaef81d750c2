"""A batch is complete or absent, even when the generating process is killed mid-insert (SIGKILL)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import func, select

from store.db import make_engine
from store.vouchers import voucher_batches, vouchers

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
