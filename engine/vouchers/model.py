"""Voucher batches and vouchers as the engine sees them (no storage types here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from engine.vouchers.profile import SerialFormat


class VoucherState(str, Enum):
    """A voucher's states in the operator's words (rules/lifecycle/README.md); which moves are allowed lives in ``rules/lifecycle/voucher.yaml``."""

    GENERATED = "generated"  # created, not yet on sale
    ACTIVE = "active"  # on sale / distributed: redeemable
    RESERVED = "reserved"  # a redemption is in progress
    PENDING = "pending"  # a reservation that was never committed
    USED = "used"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    DAMAGED = "damaged"
    STOLEN = "stolen"
    PURGED = "purged"


class BatchState(str, Enum):
    """Names of ``rules/lifecycle/voucher_batch.yaml``; the rules decide the moves."""

    GENERATED = "generated"
    ACTIVE = "active"
    BLOCKED = "blocked"
    EXHAUSTED = "exhausted"  # every voucher used, expired or purged
    EXPIRED = "expired"
    PURGED = "purged"


BATCH_ID = re.compile(r"^vb-[0-9a-f]{16}$")

# Column order of a generated voucher row (a plain tuple: cheap to build, ready for executemany).
# ``sealed`` is the 12-byte nonce followed by the AEAD ciphertext (crypto.split_sealed): one column, not two.
ROW_COLUMNS = ("batch_id", "serial", "lookup_hash", "sealed")
VoucherRow = tuple[str, int, bytes, bytes]


@dataclass(frozen=True)
class VoucherBatch:
    """One generation run: every voucher of it shares these values unless amended one by one."""

    batch_id: str
    profile_id: str
    owner: str  # tenant (MNO or MVNO) the vouchers belong to
    dealer: str  # distributor / dealer id, "" when none
    currency: str
    face_value_micros: int
    count: int
    first_serial: int
    serial: SerialFormat
    pin_length: int
    created_at: datetime
    expires_at: datetime
    recharge_extension_days: int
    state: BatchState
    pin_cipher: str
    key_wrap: str
    wrapped_data_key: bytes | None  # None once destroyed (crypto-shredded)
    master_key_version: int
    lookup_key_version: int
    created_by: str = ""
    # the batch's state as the vouchers the operator gave to other tenants than its owner see it, "" when as ``state``:
    # the owner's block, unblock or purge moves only its own vouchers' batch (vouchers_0005, engine.vouchers.desk)
    others_state: str = ""

    @property
    def last_serial(self) -> int:
        return self.first_serial + self.count - 1

    def state_for(self, owner: str) -> str:
        """The batch state a voucher owned by ``owner`` is redeemed (or moved) under."""
        return self.others_state if self.others_state and owner != self.owner else self.state.value

    def as_audit(self) -> dict[str, object]:
        # names avoid the audit log's secret markers ("pin", "key"): these values are not secrets and must be kept
        return {
            "batch_id": self.batch_id, "profile_id": self.profile_id, "owner": self.owner, "dealer": self.dealer,
            "currency": self.currency, "face_value_micros": self.face_value_micros, "count": self.count,
            "first_serial": self.first_serial, "last_serial": self.last_serial, "expires_at": self.expires_at,
            "state": self.state.value, "cipher": self.pin_cipher, "wrap": self.key_wrap,
            "master_version": self.master_key_version, "lookup_version": self.lookup_key_version,
            "shredded": self.wrapped_data_key is None,
        }


@dataclass(frozen=True)
class Voucher:
    """One stored voucher; the PIN exists only as lookup hash and ciphertext."""

    batch_id: str
    serial: int
    state: VoucherState
    currency: str
    face_value_micros: int
    expires_at: datetime
    owner: str
    dealer: str = ""
    nonce: bytes = field(default=b"", repr=False)
    ciphertext: bytes = field(default=b"", repr=False)
    redeemed_by: str = ""  # MSISDN
    redeemed_at: datetime | None = None
    redemption_request_id: str = ""
    updated_at: datetime | None = None

    def as_audit(self) -> dict[str, object]:
        return {
            "batch_id": self.batch_id, "serial": self.serial, "state": self.state.value, "currency": self.currency,
            "face_value_micros": self.face_value_micros, "expires_at": self.expires_at, "owner": self.owner,
            "dealer": self.dealer, "redeemed_by": self.redeemed_by,
        }
