"""Settings of the voucher domain (the composition root fills them from ``engine.settings``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Mapping

from engine.vouchers.crypto import CryptoSettings
from engine.vouchers.generation import DEFAULT_CHUNK_SIZE


@dataclass(frozen=True)
class VoucherSettings:
    max_batch: int = 1_000_000  # largest batch one request may create
    chunk_size: int = DEFAULT_CHUNK_SIZE  # rows per insert chunk / progress step
    crypto: CryptoSettings = field(default_factory=CryptoSettings)
    serial_retries: int = 3  # another batch took our serial range meanwhile: plan again
    # a reservation not committed or released within this time is moved on by the recovery job
    reservation_timeout: timedelta = timedelta(minutes=15)
    # currency -> the highest face value (micros) a CSR may give a voucher; a currency not listed: CSRs
    # change expiry dates only (value changes are an administrator's)
    csr_face_value_limits: Mapping[str, int] = field(default_factory=dict)
