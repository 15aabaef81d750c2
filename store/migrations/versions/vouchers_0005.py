"""Vouchers: a batch owner's block, unblock or purge moves only its own vouchers' batch.

The operator may give vouchers of an MVNO's batch to another tenant (amend owner).  A voucher is redeemed only
while its batch is active, and before this revision the owner's block (or purge) of the batch stopped the other
tenant's vouchers too.  ``voucher_batches.others_state`` holds the batch state the vouchers of other owners than
the batch's see ('' = the batch's state): a tenant's block, unblock or purge keeps it at what they saw, the
operator's changes (and every other event) clear it (engine.vouchers.desk ``change_batch``).

* a column ``others_state`` ('' for every batch there is: nothing changes for them);
* PostgreSQL: ``voucher_pin_attempt`` and ``voucher_reservation_step`` read a voucher's batch state through it
  (the expression of store/voucher_recharge.py ``BATCH_STATE_FOR_VOUCHER``, which the SQLite path reads).

Downgrading restores the functions of ``vouchers_0004`` and drops the column (an owner's block then stops every
voucher of the batch again).

Revision ID: vouchers_0005
Revises: vouchers_0004
Create Date: 2026-12-07
"""

import importlib.util
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa
from alembic import op

revision = "vouchers_0005"
down_revision = "vouchers_0004"
branch_labels = None
depends_on = None


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{name}_for_0005", Path(__file__).with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _functions() -> tuple[list[str], list[str]]:
    """(vouchers_0004's attempt and step functions, the same reading the batch state for the voucher's owner)."""
    v4, v3 = _load("vouchers_0004"), _load("vouchers_0003")
    old = [v4._attempt(v3), v4._step(v3)]
    attempt, step = (sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) for sql in old)
    attempt = v4._swap(attempt, "               b.state AS batch_state, b.recharge_extension_days",
                       "               CASE WHEN b.others_state <> '' AND vv.tenant_id <> b.tenant_id THEN b.others_state ELSE b.state END\n"
                       "                   AS batch_state, b.recharge_extension_days")
    attempt = v4._swap(attempt, "WHERE b.batch_id = v.batch_id AND b.state = v.batch_state);",
                       "WHERE b.batch_id = v.batch_id\n"
                       "                   AND CASE WHEN b.others_state <> '' AND v.tenant_id <> b.tenant_id THEN b.others_state "
                       "ELSE b.state END = v.batch_state);")
    step = v4._swap(step, "SELECT vv.serial, vv.batch_id, vv.state, vv.expires_at, vv.redeemed_by, b.state AS batch_state",
                    "SELECT vv.serial, vv.batch_id, vv.state, vv.expires_at, vv.redeemed_by,\n"
                    "           CASE WHEN b.others_state <> '' AND vv.tenant_id <> b.tenant_id THEN b.others_state ELSE b.state END "
                    "AS batch_state")
    restore = [sql.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION", 1) for sql in old]
    return restore, [attempt, step]


def upgrade() -> None:
    op.add_column("voucher_batches", sa.Column("others_state", sa.String(16), nullable=False, server_default=""))
    if op.get_bind().dialect.name == "postgresql":
        for sql in _functions()[1]:
            op.execute(sql)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for sql in _functions()[0]:
            op.execute(sql)
    with op.batch_alter_table("voucher_batches") as batch:
        batch.drop_column("others_state")
