"""Mediation: a small integer key per file and a per-file sequence number on each CDR.

The (file_tenant_id, file_id) index of mediated_cdrs held ~100 bytes of text per row
and cost about a third of the stored-ingestion time; it is replaced by an index on
(file_key, file_seq): two integers, appended in order as a file is read, which is
also the order a file's CDRs are paged back in.  Existing rows are numbered here.

Revision ID: mediation_0002
Revises: mediation_0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "mediation_0002"
down_revision = "mediation_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("mediation_files", sa.Column("file_key", sa.BigInteger(), nullable=True))
    op.add_column("mediated_cdrs", sa.Column("file_key", sa.BigInteger(), nullable=True))
    op.add_column("mediated_cdrs", sa.Column("file_seq", sa.BigInteger(), nullable=True))
    conn = op.get_bind()
    files = conn.execute(sa.text("SELECT tenant_id, file_id FROM mediation_files ORDER BY updated_at, tenant_id, file_id")).all()
    for key, (tenant_id, file_id) in enumerate(files, 1):
        params = {"k": key, "t": tenant_id, "f": file_id}
        conn.execute(sa.text("UPDATE mediation_files SET file_key = :k WHERE tenant_id = :t AND file_id = :f"), params)
        conn.execute(sa.text("UPDATE mediated_cdrs SET file_key = :k WHERE file_tenant_id = :t AND file_id = :f"), params)
    # existing CDRs are numbered in cdr_id order within their file (their reading order is not known any more)
    conn.execute(sa.text(
        "UPDATE mediated_cdrs SET file_seq = numbered.n FROM "
        "(SELECT cdr_id, row_number() OVER (PARTITION BY file_key ORDER BY cdr_id) AS n FROM mediated_cdrs) AS numbered "
        "WHERE mediated_cdrs.cdr_id = numbered.cdr_id"
    ))
    op.drop_index("ix_mediated_cdrs_file", table_name="mediated_cdrs")
    op.create_index("ix_mediated_cdrs_file_seq", "mediated_cdrs", ["file_key", "file_seq"], unique=True)
    op.create_index("ux_mediation_files_key", "mediation_files", ["file_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_mediation_files_key", table_name="mediation_files")
    op.drop_index("ix_mediated_cdrs_file_seq", table_name="mediated_cdrs")
    op.create_index("ix_mediated_cdrs_file", "mediated_cdrs", ["file_tenant_id", "file_id"])
    with op.batch_alter_table("mediated_cdrs") as batch:
        batch.drop_column("file_seq")
        batch.drop_column("file_key")
    with op.batch_alter_table("mediation_files") as batch:
        batch.drop_column("file_key")
