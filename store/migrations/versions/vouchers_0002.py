"""Vouchers: narrower rows for bulk generation -- 16-byte lookup hash, nonce and ciphertext in one column.

* ``lookup_hash`` keeps the first 16 bytes of the HMAC-SHA256 (see LOOKUP_HASH_BYTES in
  engine/vouchers/crypto.py for why that is safe).  The unique index on it is what a bulk
  insert of random keys pays for; half the key width is half the index.
* ``sealed`` = ``nonce || ciphertext`` replaces the two columns ``nonce`` and ``ciphertext``
  (one value fewer to bind, copy and store per voucher).
* The ``(batch_id, serial)`` index goes: a batch is a contiguous serial range (voucher_batches
  has first_serial and count), so the repository finds a batch's vouchers by primary-key range.
  One B-tree fewer to maintain per inserted voucher.
* PostgreSQL: the foreign key vouchers.batch_id -> voucher_batches goes.  Its check is a
  trigger per inserted row and doubled the time of a million-voucher COPY (measured 7 s -> 15 s).
  Nothing it guarded can happen: vouchers are only written by the bulk path right after their
  batch row, in the same transaction, and batches are never deleted (purge is a state).
  SQLite keeps its foreign key (dropping one means rebuilding the table; its check is a cheap
  in-process primary-key probe there).

Existing vouchers are converted in place (truncating a hash keeps it a prefix of the same HMAC,
so redemption of old PINs keeps working).  Not reversible: a truncated hash cannot be widened
without the PINs.

Revision ID: vouchers_0002
Revises: vouchers_0001
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "vouchers_0002"
down_revision = "vouchers_0001"
branch_labels = None
depends_on = None

LOOKUP_HASH_BYTES = 16  # = engine.vouchers.crypto.LOOKUP_HASH_BYTES at the time of this migration


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.drop_index("ix_vouchers_batch", table_name="vouchers")
    if dialect == "postgresql":
        for fk in sa.inspect(op.get_bind()).get_foreign_keys("vouchers"):
            if fk["referred_table"] == "voucher_batches" and fk["name"]:
                op.drop_constraint(fk["name"], "vouchers", type_="foreignkey")
    op.add_column("vouchers", sa.Column("sealed", sa.LargeBinary(), nullable=False, server_default=sa.text("x''")
                                        if dialect == "sqlite" else sa.text("''::bytea")))
    if dialect == "sqlite":
        # || on blobs yields text in SQLite; CAST gives the same bytes back as a blob
        op.execute("UPDATE vouchers SET sealed = CAST(nonce || ciphertext AS BLOB), "
                   f"lookup_hash = substr(lookup_hash, 1, {LOOKUP_HASH_BYTES})")
    else:
        op.execute(f"UPDATE vouchers SET sealed = nonce || ciphertext, lookup_hash = substring(lookup_hash from 1 for {LOOKUP_HASH_BYTES})")
        op.alter_column("vouchers", "sealed", server_default=None)
    # plain ALTER TABLE ... DROP COLUMN (SQLite >= 3.35): neither column is indexed
    op.execute("ALTER TABLE vouchers DROP COLUMN nonce")
    op.execute("ALTER TABLE vouchers DROP COLUMN ciphertext")


def downgrade() -> None:
    raise NotImplementedError("vouchers_0002 is not reversible: truncated lookup hashes cannot be widened without the PINs")
