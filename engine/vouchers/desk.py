"""Use cases of VoucherService: generate, look up, change state, amend, rotate keys.

Recharge lives in :mod:`engine.vouchers.recharge`, distribution files in
:mod:`engine.vouchers.distribution`.  Every use case is one unit of work: the
change and its audit entry commit together or not at all.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Iterator, Protocol

from engine import audit
from engine.clock import Clock
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from engine.eventrules import Lifecycle
from engine.identity import Permission, Principal
from engine.tenancy import TENANT_ID
from engine.vouchers.crypto import KeyProvider, PinSealer, WrappedDataKey, rewrap_data_key, unwrap_data_key
from engine.vouchers.generation import BatchProducer, BatchRequest, Progress, plan_batch
from engine.vouchers.transitions import (
    BATCH_EVENTS,
    VOUCHER_BATCH,
    BulkOutcome,
    apply_by_owner,
    decide_batch,
    decide_voucher,
    merged,
    transition_refused,
    voucher_facts,
)
from engine.vouchers.model import BatchState, Voucher, VoucherBatch, VoucherState
from engine.vouchers.face_value import FaceValueError, format_face_value, parse_face_value
from engine.vouchers.ports import VoucherSelection, VoucherUnitOfWork, VoucherUnitOfWorkFactory
from engine.vouchers.profile import ProfileCatalogue
from engine.vouchers.scope import describe, scoped, visible_batch, visible_voucher
from engine.vouchers.settings import VoucherSettings

log = logging.getLogger("rulebill.vouchers")

OPERATOR_EVENTS = ("activate", "block", "unblock", "mark_damaged", "mark_stolen", "recover", "expire", "purge")
# events that put vouchers on sale (or take them off the books) move value: an administrator's
VALUE_EVENTS = frozenset({"activate", "unblock", "purge"})
# a tenant's batch events that stop (or start) only its own vouchers: vouchers of the batch the operator gave to other
# tenants keep the batch state they saw (VoucherBatch.others_state); the operator's cover every voucher of the batch
OWNER_EVENTS = frozenset({"block", "unblock", "purge"})
KEY_ROTATION_PAGE = 100


@dataclass(frozen=True)
class VoucherAmendment:
    """Fields an operator may change on one voucher; None = keep."""

    expires_at: datetime | None = None
    face_value: str | None = None  # decimal text in the voucher's currency
    owner: str | None = None
    dealer: str | None = None


@dataclass(frozen=True)
class RevealedVoucher:
    voucher: Voucher
    pin: str | None  # only for callers holding voucher.reveal_pin
    serial_text: str = ""  # the printed serial (prefix + zero-padded number)
    batch_state: str = ""  # the batch state this voucher is redeemed and exported under (VoucherBatch.state_for)


class MasterKeyFile(Protocol):
    """Where a new master key version is added (the key file); keys given as settings have none."""

    def add_master_key(self) -> int: ...


@dataclass(frozen=True)
class KeyRotation:
    batches_rewrapped: int
    master_key_version: int


class VoucherDesk:
    def __init__(self, uow: VoucherUnitOfWorkFactory, profiles: ProfileCatalogue, keys: KeyProvider, lifecycle: Lifecycle,
                 clock: Clock, settings: VoucherSettings | None = None, key_file: MasterKeyFile | None = None) -> None:
        self._uow = uow
        self._profiles = profiles
        self._keys = keys
        self._lifecycle = lifecycle
        self._clock = clock
        self.settings = settings or VoucherSettings()
        self._key_file = key_file

    # --- generation -------------------------------------------------------
    def generate_batch(self, principal: Principal, request: BatchRequest, progress: Progress | None = None) -> VoucherBatch:
        """Create a whole batch in one transaction: complete or absent."""
        principal.require(Permission.VOUCHER_ADMIN)
        profile = self._profiles.get(request.profile_id)
        # another tenant's profile is reported exactly like a missing one
        if profile is None or not principal.can_see_tenant(profile.owner):
            raise NotFound("voucher profile", request.profile_id)
        owner = request.owner or profile.owner
        principal.require_tenant(owner)
        if TENANT_ID.match(owner):  # a malformed id is reported with the request's other problems by plan_batch
            with self._uow() as uow:
                if uow.tenants.get(owner) is None:
                    raise InvalidArgument.field("tenant_id", f"there is no tenant {owner}")
        for attempt in range(self.settings.serial_retries):
            now = self._clock.now()
            with self._uow() as uow:
                batch, data_key = plan_batch(
                    profile, request, first_serial=uow.vouchers.next_serial(), now=now, keys=self._keys,
                    crypto=self.settings.crypto, max_count=self.settings.max_batch, created_by=principal.subject,
                )
                producer = BatchProducer(batch, data_key, self._keys)
                del data_key
                try:
                    uow.vouchers.create_batch_atomically(batch, producer.chunks(self.settings.chunk_size, progress), producer.replace)
                except AlreadyExists:
                    uow.rollback()
                    log.info("voucher batch %s lost its serial range to another batch; planning again", batch.batch_id)
                    continue
                uow.audit.append(audit.entry(principal, now, "voucher_batch.generate", VOUCHER_BATCH, batch.batch_id,
                                             {}, batch.as_audit(), batch.owner))
                uow.commit()
            log.info("generated voucher batch %s: %d vouchers, serials %d-%d, profile %s, owner %s", batch.batch_id,
                     batch.count, batch.first_serial, batch.last_serial, batch.profile_id, batch.owner)
            return batch
        raise FailedPrecondition("SERIALS_BUSY", "other batches kept taking the next serial numbers; try again", request.profile_id)

    # --- reading ----------------------------------------------------------
    def get_batch(self, principal: Principal, batch_id: str) -> VoucherBatch:
        """The batch as the caller sees it (:func:`as_seen_by`)."""
        principal.require(Permission.VOUCHER_READ)
        with self._uow() as uow:
            return as_seen_by(principal, visible_batch(principal, uow.vouchers.get_batch(batch_id), batch_id))

    def list_batches(self, principal: Principal, after: str | None = None, limit: int = 50) -> list[VoucherBatch]:
        principal.require(Permission.VOUCHER_READ)
        owners = None if principal.is_operator else frozenset({principal.tenant_id})
        with self._uow() as uow:
            return [as_seen_by(principal, b) for b in uow.vouchers.list_batches(owners, after, limit)]

    def get_voucher(self, principal: Principal, serial: int) -> RevealedVoucher:
        """One voucher with its printed serial (never its PIN)."""
        principal.require(Permission.VOUCHER_READ)
        with self._uow() as uow:
            # visible by the voucher's owner: the operator may have given it to another tenant than its batch's
            voucher = visible_voucher(principal, uow.vouchers.get_voucher(serial), serial)
            batch = _batch_of(uow, voucher)
        return RevealedVoucher(voucher, None, batch.serial.format(voucher.serial), batch.state_for(voucher.owner))

    def stream_vouchers(self, principal: Principal, selection: VoucherSelection, chunk_size: int = 1000,
                        reveal: bool = False) -> Iterator[list[RevealedVoucher]]:
        """Vouchers in chunks; PINs only with ``reveal`` and the reveal privilege (audited)."""
        principal.require(Permission.VOUCHER_READ)
        if reveal:
            principal.require(Permission.VOUCHER_REVEAL_PIN)
        selection = scoped(principal, selection)
        with self._uow() as uow:
            if selection.batch_id:  # a named batch of another tenant is reported like a missing one
                visible_batch(principal, uow.vouchers.get_batch(selection.batch_id), selection.batch_id)
            sealers: dict[str, PinSealer] = {}
            batches: dict[str, VoucherBatch] = {}
            revealed: dict[str, int] = {}  # per owner: each owner's auditor sees the reveal of its own PINs
            for chunk in uow.vouchers.stream_vouchers(selection, chunk_size):
                out = []
                for v in chunk:
                    batch = batches.get(v.batch_id)
                    if batch is None:  # the selection holds the caller's vouchers, whoever owns their batch
                        batch = batches[v.batch_id] = _batch_of(uow, v)
                    pin = None
                    if reveal:
                        sealer = sealers.get(v.batch_id) or sealers.setdefault(v.batch_id, self.sealer_for(uow, v.batch_id))
                        pin = sealer.open(v.serial, v.nonce, v.ciphertext).decode("ascii")
                    out.append(RevealedVoucher(v, pin, batch.serial.format(v.serial), batch.state_for(v.owner)))
                    if reveal:
                        revealed[v.owner] = revealed.get(v.owner, 0) + 1
                yield out
            if reveal:
                now = self._clock.now()
                for owner, n in sorted((revealed or {"": 0}).items()):  # nothing selected: one entry of 0, the caller's
                    uow.audit.append(audit.entry(principal, now, "voucher.reveal", "voucher_selection", describe(selection), {},
                                                 {"revealed": n}, owner))
                uow.commit()

    def sealer_for(self, uow: VoucherUnitOfWork, batch_id: str) -> PinSealer:
        batch = uow.vouchers.get_batch(batch_id)
        if batch is None:
            raise NotFound("voucher batch", batch_id)
        if batch.wrapped_data_key is None:
            raise FailedPrecondition("DATA_KEY_DESTROYED", f"the PINs of batch {batch_id} were destroyed and cannot be revealed",
                                     f"voucher-batch/{batch_id}")
        wrapped = WrappedDataKey(batch.wrapped_data_key, batch.key_wrap, batch.master_key_version)
        return PinSealer(batch.pin_cipher, unwrap_data_key(self._keys, wrapped, batch_id), batch_id)

    # --- state changes ----------------------------------------------------
    def change_vouchers(self, principal: Principal, event: str, selection: VoucherSelection, request_id: str = "",
                        reason: str = "", must_exist: bool = True) -> BulkOutcome:
        """Apply ``event`` to one voucher, a serial range or a batch, atomically.

        One voucher whose move the rules forbid is an error naming its state;
        for ranges the refused ones are reported by state and the rest change.
        """
        if event not in OPERATOR_EVENTS:
            raise InvalidArgument.field("event", f"must be one of {', '.join(OPERATOR_EVENTS)}")
        principal.require(Permission.VOUCHER_ADMIN if event in VALUE_EVENTS else Permission.VOUCHER_WRITE)
        selection = scoped(principal, selection)
        single = selection.first_serial is not None and selection.first_serial == selection.last_serial
        now = self._clock.now()
        with self._uow() as uow:
            by_owner = apply_by_owner(uow.vouchers, self._lifecycle, event, selection, now, principal.privileges)
            outcome = merged(event, by_owner.values())
            total = outcome.changed_count + outcome.refused_count
            if total == 0:
                if not must_exist:
                    return outcome  # a scheduled job with nothing due: success, nothing changed, nothing audited
                raise NotFound("voucher", str(selection.first_serial) if single else describe(selection))
            if single and outcome.refused:
                group = outcome.refused[0]
                raise transition_refused("voucher", str(selection.first_serial), group.state.value, event, group.reason)
            _audit_by_owner(uow, principal, now, event, selection, by_owner, reason, request_id)
            uow.commit()
        log.info("voucher %s on %s: %d changed, %d refused", event, describe(selection), outcome.changed_count, outcome.refused_count)
        return outcome

    def expire_due(self, principal: Principal) -> BulkOutcome:
        """The scheduled job: every voucher past its expiry moves as the rules allow (nothing due: a count of 0)."""
        return self.change_vouchers(principal, "expire", VoucherSelection(expired_by=self._clock.now()), must_exist=False)

    def recover_reservations(self, principal: Principal, older_than: timedelta | None = None) -> BulkOutcome:
        """The scheduled job of two-step recharge: reservations nobody committed or released within the timeout
        move on with the lifecycle's ``reservation_timeout`` (reserved -> pending in the shipped rules), where
        customer care commits or releases them."""
        principal.require(Permission.VOUCHER_WRITE)
        age = self.settings.reservation_timeout if older_than is None else older_than
        if age < timedelta(0):
            raise InvalidArgument.field("older_than", "must not be negative")
        now = self._clock.now()
        selection = scoped(principal, VoucherSelection(states=frozenset({VoucherState.RESERVED}), changed_by=now - age))
        with self._uow() as uow:
            by_owner = apply_by_owner(uow.vouchers, self._lifecycle, "reservation_timeout", selection, now, principal.privileges)
            for owner, part in by_owner.items():
                if part.changed_count or part.refused_count:
                    uow.audit.append(audit.entry(principal, now, "voucher.reservation_timeout", "voucher_selection",
                                                 describe(selection), {},
                                                 {"changed": part.changed_count, "refused": part.refused_count}, owner))
            uow.commit()
        return merged("reservation_timeout", by_owner.values())

    def change_batch(self, principal: Principal, batch_id: str, event: str, reason: str = "") -> VoucherBatch:
        """Move a batch; ``activate`` and ``purge`` also move its vouchers, in the same transaction."""
        if event not in BATCH_EVENTS:
            raise InvalidArgument.field("event", f"must be one of {', '.join(BATCH_EVENTS)}")
        principal.require(Permission.VOUCHER_ADMIN if event in VALUE_EVENTS else Permission.VOUCHER_WRITE)
        now = self._clock.now()
        with self._uow() as uow:
            batch = visible_batch(principal, uow.vouchers.get_batch(batch_id), batch_id)
            to_state, others = _batch_move(self._lifecycle, principal, event, batch, now)
            if not uow.vouchers.set_batch_state(batch_id, batch.state, to_state, others, batch.others_state):
                raise FailedPrecondition("BATCH_CHANGED", f"batch {batch_id} was changed by another request; try again", batch_id)
            moved = replace(batch, state=to_state, others_state=others)
            after = {"state": to_state.value}
            if others or batch.others_state:   # "": the other owners' vouchers see the batch's state again
                after["others_state"] = others
            by_owner: dict[str, BulkOutcome] = {}
            if event in ("activate", "purge"):
                # the caller's vouchers of the batch move (the operator's: all, by owner); one the operator gave
                # to another tenant (amend owner) is that tenant's to move (ChangeVouchers by serial)
                selection = scoped(principal, VoucherSelection(batch_id=batch_id))
                by_owner = apply_by_owner(uow.vouchers, self._lifecycle, event, selection, now, principal.privileges)
                own = by_owner.pop(batch.owner, None)
                after["vouchers_changed"] = own.changed_count if own else 0  # type: ignore[assignment]
            if reason:
                after["reason"] = reason
            uow.audit.append(audit.entry(principal, now, f"voucher_batch.{event}", VOUCHER_BATCH, batch_id,
                                         _seen_before(batch), after, batch.owner))
            # the vouchers of other owners that moved (an operator's call): one entry per owner, filed under it
            _audit_by_owner(uow, principal, now, event, VoucherSelection(batch_id=batch_id), by_owner, reason)
            # the batch state other owners' vouchers see changed with it (an operator's call): their auditors see it too
            for owner in uow.vouchers.owners(VoucherSelection(batch_id=batch_id)):
                if owner != batch.owner and owner not in by_owner and batch.state_for(owner) != moved.state_for(owner):
                    seen = {"state": moved.state_for(owner), **({"reason": reason} if reason else {})}
                    uow.audit.append(audit.entry(principal, now, f"voucher_batch.{event}", VOUCHER_BATCH, batch_id,
                                                 {"state": batch.state_for(owner)}, seen, owner))
            uow.commit()
        return as_seen_by(principal, moved)

    def amend(self, principal: Principal, serial: int, amendment: VoucherAmendment, request_id: str = "") -> RevealedVoucher:
        """Change expiry, value, owner or dealer of one voucher while its state allows it (rule event ``amend``).

        A CSR (``voucher.write``) changes expiry dates, and face values only up to the configured
        limit of the voucher's currency; the rest moves value and needs ``voucher.admin``.
        """
        principal.require(Permission.VOUCHER_WRITE)
        admin = principal.can(Permission.VOUCHER_ADMIN)
        if not admin and (amendment.owner is not None or amendment.dealer is not None):
            raise PermissionDenied(f"role {principal.role.value} may change a voucher's expiry (and value up to a limit), "
                                   f"not its owner or dealer: that needs {Permission.VOUCHER_ADMIN.value}")
        now = self._clock.now()
        with self._uow() as uow:
            voucher = visible_voucher(principal, uow.vouchers.get_voucher(serial, for_update=True), serial)
            errors = ErrorList()
            changes: dict[str, object] = {}
            if amendment.expires_at is not None:
                if amendment.expires_at.tzinfo is None or amendment.expires_at <= now:
                    errors.add("expire_time", "must be a time-zone-aware time in the future")
                changes["expires_at"] = amendment.expires_at
            if amendment.face_value is not None:
                try:
                    changes["face_value_micros"] = value = parse_face_value(amendment.face_value, voucher.currency)
                    if not admin:
                        self._check_csr_value(principal, voucher.currency, value)
                except FaceValueError as exc:
                    errors.add("face_value", str(exc))
            if amendment.owner is not None:
                if not TENANT_ID.match(amendment.owner):
                    errors.add("tenant_id", f"{amendment.owner!r} is not a tenant id")
                else:
                    principal.require_tenant(amendment.owner)
                    if uow.tenants.get(amendment.owner) is None:
                        errors.add("tenant_id", f"there is no tenant {amendment.owner}")
                changes["owner"] = amendment.owner
            if amendment.dealer is not None:
                changes["dealer"] = amendment.dealer
            if not changes:
                errors.add("amendment", "nothing to change")
            errors.raise_if_any("cannot amend voucher")
            batch = uow.vouchers.get_batch(voucher.batch_id)
            facts = voucher_facts(batch.state_for(voucher.owner) if batch else BatchState.ACTIVE, voucher.expires_at, now)
            to_state, why = decide_voucher(self._lifecycle, voucher.state, "amend", facts, principal.privileges)
            if to_state is None:
                raise transition_refused("voucher", str(serial), voucher.state.value, "amend", why)
            amended = replace(voucher, updated_at=now, **changes)  # type: ignore[arg-type]
            if not uow.vouchers.update_voucher(amended, voucher.state):
                raise FailedPrecondition("VOUCHER_CHANGED", f"voucher {serial} was changed by another request; try again", str(serial))
            uow.audit.append(audit.entry(principal, now, "voucher.amend", "voucher", str(serial), voucher.as_audit(),
                                         amended.as_audit(), voucher.owner, request_id))
            uow.commit()
        return RevealedVoucher(amended, None, batch.serial.format(serial) if batch else str(serial),
                               batch.state_for(amended.owner) if batch else "")

    def _check_csr_value(self, principal: Principal, currency: str, micros: int) -> None:
        limit = self.settings.csr_face_value_limits.get(currency)
        if limit is None:
            raise PermissionDenied(f"role {principal.role.value} may not change face values in {currency}: that needs "
                                   f"{Permission.VOUCHER_ADMIN.value} (no CSR limit is configured for {currency})")
        if micros > limit:
            raise PermissionDenied(f"role {principal.role.value} may set face values up to {format_face_value(limit, currency)} "
                                   f"{currency}; more needs {Permission.VOUCHER_ADMIN.value}")

    # --- keys -------------------------------------------------------------
    def rotate_keys(self, principal: Principal) -> int:
        """Re-wrap every batch's data key under the current master key; vouchers are not touched."""
        principal.require(Permission.VOUCHER_KEYS)
        current = self._keys.current_master_version()
        rotated = 0
        while True:
            with self._uow() as uow:
                page = uow.vouchers.batches_with_master_version_below(current, KEY_ROTATION_PAGE)
                if not page:
                    break
                for batch in page:
                    if batch.wrapped_data_key is None:
                        continue
                    old = WrappedDataKey(batch.wrapped_data_key, batch.key_wrap, batch.master_key_version)
                    uow.vouchers.set_data_key(batch.batch_id, rewrap_data_key(self._keys, old, batch.batch_id))
                    uow.audit.append(audit.entry(principal, self._clock.now(), "voucher_batch.rewrap_key", VOUCHER_BATCH,
                                                 batch.batch_id, {"master_version": batch.master_key_version},
                                                 {"master_version": current}, batch.owner))
                    rotated += 1
                uow.commit()
        log.info("re-wrapped %d voucher batch data keys under master key version %d", rotated, current)
        return rotated

    def rotate_master_key(self, principal: Principal, add_version: bool = False) -> KeyRotation:
        """RotateKeys, the operator's alone: optionally add a new master key version to the key file first
        (it becomes current), then re-wrap every batch's data key under the current version."""
        principal.require(Permission.VOUCHER_KEYS)
        if not principal.is_operator:
            raise FailedPrecondition("OPERATOR_ONLY", "only the operator rotates the voucher keys", "voucher-keys")
        if add_version:
            if self._key_file is None:
                raise FailedPrecondition("KEYS_FROM_ENVIRONMENT", "keys come from the environment: set the new master key there and "
                                         "restart, then rotate without add_master_key", "voucher-keys")
            self._key_file.add_master_key()
        count = self.rotate_keys(principal)
        return KeyRotation(count, self._keys.current_master_version())

    def destroy_data_key(self, principal: Principal, batch_id: str, reason: str = "") -> VoucherBatch:
        """Crypto-shred a batch: its PINs can never be revealed again (redemption still works by lookup hash)."""
        principal.require(Permission.VOUCHER_KEYS)
        with self._uow() as uow:
            batch = visible_batch(principal, uow.vouchers.get_batch(batch_id), batch_id)
            uow.vouchers.set_data_key(batch_id, None)
            uow.audit.append(audit.entry(principal, self._clock.now(), "voucher_batch.destroy_data_key", VOUCHER_BATCH, batch_id,
                                         {"shredded": False}, {"shredded": True, "reason": reason}, batch.owner))
            uow.commit()
        return replace(batch, wrapped_data_key=None)


def as_seen_by(principal: Principal, batch: VoucherBatch) -> VoucherBatch:
    """A batch as ``principal`` sees it: ``state`` is the batch state of the caller's own vouchers of it (a tenant reads
    only its batches, whose owner it is); the operator also sees ``others_state``, the state of the vouchers it gave to
    other tenants, which a tenant does not (it neither sees nor moves those vouchers)."""
    return batch if principal.is_operator else replace(batch, others_state="")


def _batch_move(lifecycle: Lifecycle, principal: Principal, event: str, batch: VoucherBatch,
                now: datetime) -> tuple[BatchState, str]:
    """(the batch's new state, its new ``others_state``) after ``event``, or the refusal.

    A tenant's block, unblock or purge moves only its own vouchers' batch state: the vouchers of other owners keep the
    state they saw (cleared once the batch is back in it); its other events move both.  The operator's event is
    asked of each state the batch's vouchers see (the owner's, the others'): each one the rules allow moves, so that
    its unblock lifts the block it laid on every voucher after the owner lifted its own, and its block stops the
    others' vouchers after the owner blocked its own.  Refused only when no state the batch shows allows it."""
    facts = {"expired": batch.expires_at <= now}
    to_state, why = decide_batch(lifecycle, batch.state, event, facts, principal.privileges)
    if principal.is_operator and batch.others_state:
        seen = BatchState(batch.others_state)
        others_to, others_why = decide_batch(lifecycle, seen, event, facts, principal.privileges)
        if to_state is None and others_to is None:
            raise transition_refused(VOUCHER_BATCH, batch.batch_id, f"{batch.state.value} (its other owners' vouchers: "
                                     f"{seen.value})", event, why or others_why)
        owner_state, others_state = to_state or batch.state, others_to or seen
        return owner_state, "" if others_state is owner_state else others_state.value
    if to_state is None:
        raise transition_refused(VOUCHER_BATCH, batch.batch_id, batch.state.value, event, why)
    if principal.is_operator or event not in OWNER_EVENTS:
        return to_state, ""
    seen_state = batch.others_state or batch.state.value
    return to_state, "" if seen_state == to_state.value else seen_state


def _seen_before(batch: VoucherBatch) -> dict[str, object]:
    return {"state": batch.state.value, **({"others_state": batch.others_state} if batch.others_state else {})}


def _batch_of(uow: VoucherUnitOfWork, voucher: Voucher) -> VoucherBatch:
    batch = uow.vouchers.get_batch(voucher.batch_id)
    if batch is None:  # pragma: no cover - a voucher's batch is never deleted
        raise NotFound("voucher batch", voucher.batch_id)
    return batch


def _audit_by_owner(uow: VoucherUnitOfWork, principal: Principal, now: datetime, event: str, selection: VoucherSelection,
                    by_owner: dict[str, BulkOutcome], reason: str = "", request_id: str = "") -> None:
    """One entry per owner whose vouchers moved or were refused, filed under it: each owner's auditor sees what
    was done to its vouchers."""
    for owner, part in by_owner.items():
        if part.changed_count or part.refused_count:
            after: dict[str, object] = {"event": event, "changed": {f"{a.value}->{b.value}": n for (a, b), n in part.changed.items()},
                                        "refused": {g.state.value: g.count for g in part.refused}}
            if reason:
                after["reason"] = reason
            uow.audit.append(audit.entry(principal, now, f"voucher.{event}", "voucher_selection", describe(selection), {},
                                         after, owner, request_id))


def voucher_state(text: str) -> VoucherState:
    try:
        return VoucherState(text)
    except ValueError:
        raise InvalidArgument.field("state", f"{text!r} is not a voucher state") from None
