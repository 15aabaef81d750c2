"""What the voucher service needs before it serves: its rule files (no built-in stand-in), private key and
database files; and the proof that the YAML lifecycle, not code, decides what the store does on redemption."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Iterator

import grpc
import pytest

from billing.v1 import voucher_pb2 as pb
from engine.identity import SYSTEM
from engine.settings import Settings
from engine.subscribers import NewSubscriber, PaymentType
from servers.bootstrap import bootstrap
from servers.root import build_root
from store.db import make_engine
from store.migrate import upgrade
from tests.integration.conftest import Stack
from tests.integration.helpers import precondition_reason, rpc_error
from tests.integration.test_vouchers import activate, generate, lifecycle_changed, pins_of, vs
from tests.integration.conftest import running_stack

pytestmark = [pytest.mark.integration, pytest.mark.event_rules]
REPO = Path(__file__).resolve().parents[2]


def _home(tmp_path: Path, rules: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'rulebill.db'}"
    upgrade(url)
    return Settings(home=tmp_path, database_url=url, rules_dir=rules)


def test_no_lifecycle_folder_stops_the_start_with_one_line_naming_it(tmp_path: Path) -> None:
    """Issue #9 item 2: no silent built-in copy."""
    (tmp_path / "rules").mkdir()
    env = {**os.environ, "RULEBILL_HOME": str(tmp_path), "RULEBILL_RULES_DIR": str(tmp_path / "rules"),
           "RULEBILL_LISTEN_ADDRESS": "127.0.0.1:0", "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-m", "servers.admin", "db", "upgrade"], cwd=REPO, env=env, capture_output=True, check=True, timeout=120)
    proc = subprocess.run([sys.executable, "-m", "servers.admin", "serve"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1] == f"cannot start the voucher service: {tmp_path / 'rules' / 'lifecycle'}: no such folder; the voucher service " \
                        "needs its lifecycle rules there (voucher.yaml, voucher_batch.yaml, recharge_lockout.yaml; see rules/README.md)"


def _start_refused(tmp_path: Path, rules: Path) -> str:
    """Why the server would not start with these rules (it must not)."""
    with pytest.raises(SystemExit) as stop:
        build_root(_home(tmp_path, rules)).close()
    return str(stop.value)


@pytest.mark.parametrize(("drop", "expected"), [
    ("recharge_lockout.yaml", "no recharge_lockout file"),
    ("voucher_batch.yaml", "no lifecycle for entity voucher_batch"),
])
def test_an_incomplete_rule_folder_stops_the_start(tmp_path: Path, drop: str, expected: str) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules" / "lifecycle", rules / "lifecycle")
    (rules / "lifecycle" / drop).unlink()
    why = _start_refused(tmp_path, rules)
    assert str(rules / "lifecycle") in why and expected in why


def test_an_invalid_rule_file_stops_the_start_with_file_line_col(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(REPO / "rules" / "lifecycle", rules / "lifecycle")
    path = rules / "lifecycle" / "voucher.yaml"
    path.write_text(path.read_text().replace("    to: used\n", "    to: spent\n", 1))
    why = _start_refused(tmp_path, rules)
    assert f"{path}:" in why and "lifecycle.unknown-state" in why


def test_database_and_key_files_are_private_and_checked_at_start(tmp_path: Path) -> None:
    """Issue #13 item 9."""
    settings = _home(tmp_path, REPO / "rules")
    root = build_root(settings)
    try:
        bootstrap(settings, root, load_plans=False)
    finally:
        root.close()
    for name in ("rulebill.db", "keyring.json", "voucher-signing-key.asc", "bootstrap-admin.token"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    (tmp_path / "voucher-signing-key.asc").chmod(0o644)
    with pytest.raises(SystemExit) as stop:
        build_root(settings).close()
    assert "voucher-signing-key.asc" in str(stop.value) and "chmod 600" in str(stop.value)
    (tmp_path / "voucher-signing-key.asc").chmod(0o600)
    (tmp_path / "keyring.json").chmod(0o640)
    with pytest.raises(SystemExit) as stop:
        build_root(settings).close()
    assert "keyring.json" in str(stop.value) and "chmod 600" in str(stop.value)
    (tmp_path / "rulebill.db").chmod(0o644)
    with pytest.raises(SystemExit) as stop:
        make_engine(settings.effective_database_url)
    assert "rulebill.db" in str(stop.value) and "chmod 600" in str(stop.value)


@pytest.fixture(scope="module")
def relaxed(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A server whose rules/lifecycle lets blocked vouchers be redeemed: a data change only."""
    home = tmp_path_factory.mktemp("relaxed")
    old = "  - event: redeem              # one atomic recharge: active -> used\n    from: [active]\n"
    rules = lifecycle_changed(home, old, old.replace("from: [active]", "from: [active, blocked]"))
    with running_stack(Settings(home=home, database_url=db_url, rules_dir=rules)) as s:
        yield s


def test_the_yaml_lifecycle_decides_the_stores_redemption(relaxed: Stack) -> None:
    """The store's conditional update follows rules/lifecycle/voucher.yaml: here blocked vouchers redeem too,
    while the rest of the file (e.g. redeem needs an active batch) still holds -- on SQLite and PostgreSQL."""
    op, csr = vs(relaxed), vs(relaxed, "mno", "csr")
    batch = activate(op, generate(op, count=3).batch_id)
    pins = pins_of(relaxed, batch)
    first = batch.first_serial
    op.ChangeVouchers(pb.ChangeVouchersRequest(selection=pb.VoucherSelection(first_serial=first, last_serial=first + 1),
                                               event=pb.VOUCHER_EVENT_BLOCK))
    msisdn = relaxed.unique_msisdn()
    relaxed.root.subscribers.provision(replace(SYSTEM, tenant_id="mno"), NewSubscriber(
        "mno", msisdn, relaxed.unique_imsi(), "ACC", PaymentType.PREPAID, "TP_PREPAID_FLEX"))
    done = csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[first], request_id=f"blk-{msisdn}"))
    assert done.serial == first and op.GetVoucher(pb.GetVoucherRequest(serial=first)).voucher.state == pb.VOUCHER_STATE_USED
    op.ChangeBatch(pb.ChangeBatchRequest(batch_id=batch.batch_id, event=pb.BATCH_EVENT_BLOCK))
    err = rpc_error(lambda: csr.Redeem(pb.RedeemRequest(msisdn=msisdn, pin=pins[first + 1], request_id=f"blk2-{msisdn}")),
                    grpc.StatusCode.FAILED_PRECONDITION)
    assert precondition_reason(err) == "BATCH_NOT_ACTIVE"
