"""VoMS: voucher profiles, PIN generation and crypto, batch generation, lifecycle, recharge, distribution.

The curated public API; everything else in the package is an implementation detail.
"""

from engine.vouchers.crypto import PIN_CIPHERS, KEY_WRAPS, CryptoSettings, KeyProvider, LookupHasher, PinSealer
from engine.vouchers.desk import RevealedVoucher, VoucherAmendment, VoucherDesk
from engine.vouchers.distribution import DistributionSealer, Distributor, ExportReceipt, SealReport
from engine.vouchers.generation import BatchProducer, BatchRequest, plan_batch
from engine.vouchers.keyring import (
    KeyringError,
    ReloadableKeyProvider,
    StaticKeyProvider,
    keyring_from_document,
    keys_from_environment,
)
from engine.vouchers.model import ROW_COLUMNS, BatchState, Voucher, VoucherBatch, VoucherRow, VoucherState
from engine.vouchers.moves import Move, MoveTable, compile_moves
from engine.vouchers.pins import generate_pins, luhn_check_digit, luhn_valid
from engine.vouchers.ports import VoucherRepository, VoucherSelection, VoucherUnitOfWork, VoucherUnitOfWorkFactory
from engine.vouchers.profile import ProfileCatalogue, SerialFormat, VoucherProfile, load_profiles
from engine.vouchers.recharge import Recharger, RechargeRefused
from engine.vouchers.redemption import RechargeGuard, Redemption, Reservation
from engine.vouchers.rules import VoucherRules, VoucherRulesMissing, load_voucher_rules
from engine.vouchers.settings import VoucherSettings
from engine.vouchers.transitions import BulkOutcome, RefusedGroup

__all__ = [
    "KEY_WRAPS", "PIN_CIPHERS", "ROW_COLUMNS",
    "BatchProducer", "BatchRequest", "BatchState", "BulkOutcome", "CryptoSettings", "DistributionSealer",
    "Distributor", "ExportReceipt", "KeyProvider", "KeyringError", "LookupHasher", "Move", "MoveTable",
    "PinSealer", "ProfileCatalogue", "RechargeGuard", "RechargeRefused", "Recharger", "Redemption",
    "RefusedGroup", "ReloadableKeyProvider", "Reservation", "RevealedVoucher", "SealReport", "SerialFormat", "StaticKeyProvider",
    "Voucher", "VoucherAmendment", "VoucherBatch", "VoucherDesk", "VoucherProfile", "VoucherRepository", "VoucherRow", "VoucherRules",
    "VoucherRulesMissing", "VoucherSelection", "VoucherSettings", "VoucherState", "VoucherUnitOfWork", "VoucherUnitOfWorkFactory",
    "generate_pins", "keyring_from_document", "keys_from_environment", "load_profiles",
    "load_voucher_rules", "luhn_check_digit", "luhn_valid", "plan_batch", "compile_moves",
]
