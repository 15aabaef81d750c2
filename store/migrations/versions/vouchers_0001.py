"""Vouchers: batches, vouchers, redemptions, prepaid balances, recharge guards.

Revision ID: vouchers_0001
Revises: 0001_foundation
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "vouchers_0001"
down_revision = "0001_foundation"
branch_labels = ("vouchers",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "voucher_batches",
        sa.Column("batch_id", sa.String(19), primary_key=True),
        sa.Column("tenant_id", sa.String(40), sa.ForeignKey("tenants.tenant_id"), nullable=False),
        sa.Column("profile_id", sa.String(64), nullable=False),
        sa.Column("dealer", sa.String(64), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_value_micros", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("first_serial", sa.BigInteger(), nullable=False),
        sa.Column("serial_prefix", sa.String(8), nullable=False),
        sa.Column("serial_digits", sa.Integer(), nullable=False),
        sa.Column("pin_length", sa.Integer(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("recharge_extension_days", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("pin_cipher", sa.String(32), nullable=False),
        sa.Column("key_wrap", sa.String(32), nullable=False),
        sa.Column("wrapped_data_key", sa.LargeBinary(), nullable=True),
        sa.Column("master_key_version", sa.Integer(), nullable=False),
        sa.Column("lookup_key_version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_voucher_batches_tenant", "voucher_batches", ["tenant_id", "batch_id"])
    op.create_index("ix_voucher_batches_master_version", "voucher_batches", ["master_key_version"])
    op.create_table(
        "vouchers",
        sa.Column("serial", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("batch_id", sa.String(19), sa.ForeignKey("voucher_batches.batch_id"), nullable=False),
        sa.Column("lookup_hash", sa.LargeBinary(), nullable=True),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("dealer", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("face_value_micros", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("redeemed_by", sa.String(15), nullable=False, server_default=""),
        sa.Column("redeemed_at", TS, nullable=True),
        sa.Column("redemption_request_id", sa.String(80), nullable=False, server_default=""),
    )
    # unique across every live voucher of the operator; purged vouchers have NULL here
    op.create_index("uq_vouchers_lookup_hash", "vouchers", ["lookup_hash"], unique=True)
    # only two secondary indexes: every further one slows bulk generation (see store/vouchers.py)
    op.create_index("ix_vouchers_batch", "vouchers", ["batch_id", "serial"])
    op.create_table(
        "voucher_redemptions",
        sa.Column("request_id", sa.String(80), primary_key=True),
        sa.Column("msisdn", sa.String(15), nullable=False),
        sa.Column("serial", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(19), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("credited_micros", sa.BigInteger(), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("redeemed_at", TS, nullable=False),
        sa.Column("transaction_id", sa.String(40), nullable=False),
    )
    op.create_index("ix_voucher_redemptions_msisdn", "voucher_redemptions", ["msisdn", "redeemed_at"])
    op.create_table(
        "prepaid_balances",
        sa.Column("msisdn", sa.String(15), primary_key=True),
        sa.Column("currency", sa.String(3), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("balance_micros", sa.BigInteger(), nullable=False),
        sa.Column("valid_until", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "recharge_guards",
        sa.Column("msisdn", sa.String(15), primary_key=True),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("barred_until", TS, nullable=True),
        sa.Column("last_failure_at", TS, nullable=True),
    )


def downgrade() -> None:
    op.drop_table("recharge_guards")
    op.drop_table("prepaid_balances")
    op.drop_table("voucher_redemptions")
    op.drop_table("vouchers")
    op.drop_table("voucher_batches")
