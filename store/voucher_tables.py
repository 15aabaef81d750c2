"""The voucher tables (schema: migrations vouchers_0001..0004).

Other modules of the store read and write them: ``store/vouchers.py`` (batches,
bulk generation, state changes) and ``store/voucher_recharge.py`` (redemption
and reservations).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, Index, Integer, LargeBinary, PrimaryKeyConstraint, String, Table
from sqlmodel import SQLModel

TS = DateTime(timezone=True)
meta = SQLModel.metadata

voucher_batches = Table(
    "voucher_batches", meta,
    Column("batch_id", String(19), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.tenant_id"), nullable=False),
    Column("profile_id", String(64), nullable=False),
    Column("dealer", String(64), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("face_value_micros", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("first_serial", BigInteger, nullable=False),
    Column("serial_prefix", String(8), nullable=False),
    Column("serial_digits", Integer, nullable=False),
    Column("pin_length", Integer, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("recharge_extension_days", Integer, nullable=False),
    Column("state", String(16), nullable=False),
    Column("pin_cipher", String(32), nullable=False),
    Column("key_wrap", String(32), nullable=False),
    Column("wrapped_data_key", LargeBinary, nullable=True),
    Column("master_key_version", Integer, nullable=False),
    Column("lookup_key_version", Integer, nullable=False),
    Column("created_by", String(200), nullable=False),
    # vouchers_0005: the batch state the vouchers of other owners than the batch's see ("": the batch's state)
    Column("others_state", String(16), nullable=False, server_default=""),
    Index("ix_voucher_batches_tenant", "tenant_id", "batch_id"),
    Index("ix_voucher_batches_master_version", "master_key_version"),
)

vouchers = Table(
    "vouchers", meta,
    Column("serial", BigInteger, primary_key=True, autoincrement=False),
    # no foreign key on PostgreSQL since vouchers_0002 (a per-row trigger that doubled bulk COPY time): only
    # create_batch_atomically writes vouchers, right after their batch row; batches are never deleted
    Column("batch_id", String(19), nullable=False),
    # first 16 bytes of the HMAC (engine.vouchers.crypto.LOOKUP_HASH_BYTES); NULL once purged: a purged
    # voucher's PIN may be drawn again
    Column("lookup_hash", LargeBinary, nullable=True),
    # nonce + AEAD ciphertext of the PIN (engine.vouchers.crypto.split_sealed); empty once purged
    Column("sealed", LargeBinary, nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("dealer", String(64), nullable=False),
    Column("state", String(16), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("face_value_micros", BigInteger, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("redeemed_by", String(15), nullable=False, server_default=""),
    Column("redeemed_at", TS, nullable=True),
    Column("redemption_request_id", String(80), nullable=False, server_default=""),
    # deliberately ONE secondary index: each one costs bulk generation dearly (measured: a tenant and an
    # expiry index together doubled SQLite insert time; the (batch_id, serial) index dropped in
    # vouchers_0002 took a million-row PostgreSQL COPY from 4.3 s to 7.7 s without the lookup index).
    # A batch is a contiguous serial range, so batch filters ride on the primary key (see _where);
    # tenant and expiry filters ride on the serial / batch ranges, and the nightly expiry job may scan
    Index("uq_vouchers_lookup_hash", "lookup_hash", unique=True),
)

voucher_redemptions = Table(
    "voucher_redemptions", meta,
    Column("request_id", String(80), nullable=False),
    Column("msisdn", String(15), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("batch_id", String(19), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("credited_micros", BigInteger, nullable=False),
    Column("balance_micros", BigInteger, nullable=False),
    Column("valid_until", TS, nullable=False),
    Column("redeemed_at", TS, nullable=False),
    Column("transaction_id", String(40), nullable=False),
    # vouchers_0003: the voucher's state after the credit, and how it was made (redeem: PIN entry; commit: reservation)
    Column("voucher_state", String(16), nullable=False, server_default="used"),
    Column("kind", String(8), nullable=False, server_default="redeem"),
    Index("ix_voucher_redemptions_msisdn", "msisdn", "redeemed_at"),
    # vouchers_0004: request ids are the caller's, per tenant (the subscriber's): two MVNOs may both send "r-1"
    PrimaryKeyConstraint("request_id", "tenant_id"),
)

voucher_reservations = Table(
    "voucher_reservations", meta,
    Column("reservation_id", String(80), nullable=False),
    Column("msisdn", String(15), nullable=False),
    Column("serial", BigInteger, nullable=False),
    Column("batch_id", String(19), nullable=False),
    Column("tenant_id", String(40), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("face_value_micros", BigInteger, nullable=False),
    Column("validity_extension_days", Integer, nullable=False),
    Column("reserved_at", TS, nullable=False),
    Column("status", String(16), nullable=False),
    Column("settled_at", TS, nullable=True),
    # vouchers_0004: per tenant, like request ids; the id first, so a commit naming only the id rides on the key
    PrimaryKeyConstraint("reservation_id", "tenant_id"),
)

prepaid_balances = Table(
    "prepaid_balances", meta,
    Column("msisdn", String(15), primary_key=True),
    Column("currency", String(3), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("balance_micros", BigInteger, nullable=False),
    Column("valid_until", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
)

recharge_guards = Table(
    "recharge_guards", meta,
    Column("msisdn", String(15), primary_key=True),
    Column("failed_attempts", Integer, nullable=False),
    Column("barred_until", TS, nullable=True),
    Column("last_failure_at", TS, nullable=True),
)
