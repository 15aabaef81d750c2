"""Mediation: normalised CDRs (unique cdr_id), rejects with original bytes, files with checkpoints and summaries.

Revision ID: mediation_0001
Revises: 0001_foundation
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "mediation_0001"
down_revision = "0001_foundation"
branch_labels = ("mediation",)
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "mediated_cdrs",
        sa.Column("cdr_id", sa.String(32), primary_key=True),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("origin_id", sa.String(255), nullable=False),
        sa.Column("service", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(16), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("a_number", sa.String(64), nullable=False),
        sa.Column("b_number", sa.String(255), nullable=False),
        sa.Column("imsi", sa.String(15), nullable=False),
        sa.Column("duration_seconds", sa.BigInteger(), nullable=False),
        sa.Column("volume_up_bytes", sa.BigInteger(), nullable=False),
        sa.Column("volume_down_bytes", sa.BigInteger(), nullable=False),
        sa.Column("event_count", sa.BigInteger(), nullable=False),
        sa.Column("visited_network", sa.String(16), nullable=False),
        sa.Column("supplementary_code", sa.String(16), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=True),
        sa.Column("charge_currency", sa.String(3), nullable=False),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("attributes", sa.Text(), nullable=False),
        sa.Column("file_tenant_id", sa.String(40), nullable=False),
        sa.Column("file_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_mediated_cdrs_tenant_start", "mediated_cdrs", ["tenant_id", "start_time"])
    op.create_index("ix_mediated_cdrs_file", "mediated_cdrs", ["file_tenant_id", "file_id"])
    op.create_table(
        "mediation_rejects",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("record_no", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("raw_truncated", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "mediation_files",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("file_id", sa.String(64), primary_key=True),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("layout", sa.String(64), nullable=False),
        sa.Column("byte_offset", sa.BigInteger(), nullable=False),
        sa.Column("record_no", sa.BigInteger(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("checkpoint", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("mediation_files")
    op.drop_table("mediation_rejects")
    op.drop_index("ix_mediated_cdrs_file", table_name="mediated_cdrs")
    op.drop_index("ix_mediated_cdrs_tenant_start", table_name="mediated_cdrs")
    op.drop_table("mediated_cdrs")
