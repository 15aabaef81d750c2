"""Settings of the voucher domain (the composition root fills them from ``engine.settings``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from engine.vouchers.crypto import CryptoSettings
from engine.vouchers.generation import DEFAULT_CHUNK_SIZE
from engine.vouchers.lockout import DEFAULT_BAR, DEFAULT_MAX_FAILURES


@dataclass(frozen=True)
class VoucherSettings:
    max_batch: int = 1_000_000  # largest batch one request may create
    chunk_size: int = DEFAULT_CHUNK_SIZE  # rows per insert chunk / progress step
    crypto: CryptoSettings = field(default_factory=CryptoSettings)
    lockout_failures: int = DEFAULT_MAX_FAILURES
    lockout_period: timedelta = DEFAULT_BAR
    serial_retries: int = 3  # another batch took our serial range meanwhile: plan again
