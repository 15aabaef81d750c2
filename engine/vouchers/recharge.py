"""Redemption (recharge): a subscriber turns a PIN into balance and validity.

Order of checks, each for a reason:

1. the PIN's shape and Luhn digit -- before anything is looked up, so typos and
   random guesses never reach the database index;
2. the request id -- a retry returns the stored result, never a second credit;
3. a live subscriber with this MSISDN, then its recharge bar (brute-force defence);
4. the keyed lookup hash, one per live lookup key version;
5. voucher of the subscriber's tenant, active, batch active, not expired, and the lifecycle rule for ``redeem``;
6. one atomic conditional update in the store (exactly one concurrent winner).

A failure after step 1 counts against the subscriber and is audited by MSISDN
and reason -- never with the PIN, which appears in no log, message or entry.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from datetime import datetime

from engine import audit
from engine.clock import Clock
from engine.errors import AlreadyExists, ErrorList, FailedPrecondition, NotFound
from engine.identity import Permission, Principal
from engine.subscriber_numbers import msisdn_problem, normalise_msisdn
from engine.vouchers.crypto import KeyProvider, lookup_hashers
from engine.vouchers.lifecycle import Lifecycle, decide_voucher, voucher_facts
from engine.vouchers.lockout import CountingLockout, LockoutPolicy
from engine.vouchers.model import BatchState, VoucherState
from engine.vouchers.pins import MAX_PIN_LENGTH, MIN_PIN_LENGTH, luhn_valid
from engine.vouchers.ports import Redemption, RedemptionCommand, VoucherUnitOfWorkFactory

log = logging.getLogger("rulebill.vouchers.recharge")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
_PIN_SEPARATORS = str.maketrans("", "", " -")


class RechargeRefused(FailedPrecondition):
    """A recharge that did not happen; ``reason`` is one of the codes below (never carries the PIN)."""

    PIN_CHECK_DIGIT = "PIN_CHECK_DIGIT"
    PIN_UNKNOWN = "PIN_UNKNOWN"
    VOUCHER_NOT_ACTIVE = "VOUCHER_NOT_ACTIVE"
    BATCH_NOT_ACTIVE = "BATCH_NOT_ACTIVE"
    VOUCHER_EXPIRED = "VOUCHER_EXPIRED"
    RECHARGE_BARRED = "RECHARGE_BARRED"
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"


class _Failure(Exception):
    """Internal: a counted failure on its way to :meth:`Recharger._record_failure`."""

    def __init__(self, reason: str, message: str, subject: str) -> None:
        super().__init__(reason)
        self.reason, self.message, self.subject = reason, message, subject


class Recharger:
    def __init__(self, uow: VoucherUnitOfWorkFactory, keys: KeyProvider, lifecycle: Lifecycle, clock: Clock,
                 lockout: LockoutPolicy | None = None) -> None:
        self._uow = uow
        self._keys = keys
        self._lifecycle = lifecycle
        self._clock = clock
        self._lockout = lockout or CountingLockout()

    @staticmethod
    def _clean(msisdn: str, pin: str, request_id: str) -> tuple[str, bytes]:
        errors = ErrorList()
        number = normalise_msisdn(msisdn)
        if problem := msisdn_problem(number):
            errors.add("msisdn", problem)
        digits = pin.translate(_PIN_SEPARATORS)
        if not (digits.isascii() and digits.isdigit()) or not MIN_PIN_LENGTH <= len(digits) <= MAX_PIN_LENGTH:
            # describe the rule, never echo the value
            errors.add("pin", f"must be {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits")
        if not REQUEST_ID.match(request_id or ""):
            errors.add("request_id", "must be 1-80 characters: letters, digits, '.', '_', ':' or '-'")
        errors.raise_if_any("cannot redeem voucher")
        return number, digits.encode("ascii")

    def redeem(self, principal: Principal, msisdn: str, pin: str, request_id: str) -> Redemption:
        principal.require(Permission.VOUCHER_REDEEM)
        number, pin_bytes = self._clean(msisdn, pin, request_id)
        try:
            if not luhn_valid(pin_bytes):
                raise _Failure(RechargeRefused.PIN_CHECK_DIGIT, "the PIN's check digit is wrong: it was mistyped", number)
            return self._redeem(principal, number, pin_bytes, request_id)
        except _Failure as failure:
            # a retry of a request that a concurrent twin just completed is not a failure: answer its result
            with self._uow() as uow:
                twin = uow.vouchers.get_redemption(request_id)
            if twin is not None:
                return self._replay(twin, number, request_id)
            self._record_failure(principal, number, request_id, failure)
            raise RechargeRefused(failure.reason, failure.message, failure.subject) from None

    def _redeem(self, principal: Principal, msisdn: str, pin: bytes, request_id: str) -> Redemption:
        now = self._clock.now()
        with self._uow() as uow:
            repo = uow.vouchers
            earlier = repo.get_redemption(request_id)
            if earlier is not None:
                return self._replay(earlier, msisdn, request_id)
            subscriber = uow.subscribers.get_live_by_msisdn(msisdn)
            if subscriber is None or not principal.can_see_tenant(subscriber.tenant_id):
                raise NotFound("subscriber", msisdn)  # not the subscriber's fault: not counted as a wrong PIN
            guard = repo.get_recharge_guard(msisdn)
            if self._lockout.is_barred(guard, now):
                # not counted again: a barred subscriber's attempts never reach the vouchers
                raise RechargeRefused(RechargeRefused.RECHARGE_BARRED,
                                      f"recharge is barred for {msisdn} until {guard.barred_until.isoformat() if guard.barred_until else ''} "
                                      "after repeated wrong PINs; customer care can lift the bar", msisdn)
            voucher = repo.find_by_lookup_hash([h.hash(pin) for h in lookup_hashers(self._keys)])
            # another tenant's voucher looks exactly like an unknown PIN
            if voucher is None or voucher.owner != subscriber.tenant_id or not principal.can_see_tenant(voucher.owner):
                raise _Failure(RechargeRefused.PIN_UNKNOWN, "no voucher has this PIN", msisdn)
            serial = str(voucher.serial)
            batch = repo.get_batch(voucher.batch_id)
            if voucher.state is not VoucherState.ACTIVE:
                raise _Failure(RechargeRefused.VOUCHER_NOT_ACTIVE, f"voucher {serial} is {voucher.state.value}, not active", serial)
            if batch is None or batch.state is not BatchState.ACTIVE:
                state = batch.state.value if batch else "missing"
                raise _Failure(RechargeRefused.BATCH_NOT_ACTIVE, f"the batch of voucher {serial} is {state}, not active", serial)
            if voucher.expires_at <= now:
                raise _Failure(RechargeRefused.VOUCHER_EXPIRED, f"voucher {serial} expired at {voucher.expires_at.isoformat()}", serial)
            to_state, why = decide_voucher(self._lifecycle, voucher.state, "redeem", voucher_facts(batch.state, voucher.expires_at, now),
                                           principal.privileges)
            if to_state is not VoucherState.USED:
                raise _Failure(RechargeRefused.VOUCHER_NOT_ACTIVE, f"voucher {serial} cannot be redeemed ({why or 'rules'})", serial)
            cmd = RedemptionCommand(
                request_id=request_id, msisdn=msisdn, serial=voucher.serial, batch_id=voucher.batch_id,
                currency=voucher.currency, credit_micros=voucher.face_value_micros,
                validity_extension_days=batch.recharge_extension_days, at=now, transaction_id="rtx_" + secrets.token_hex(10),
            )
            try:
                result = repo.redeem_atomically(cmd)
            except AlreadyExists:
                # the same request id won a race with us: answer what it did
                uow.rollback()
                with self._uow() as again:
                    stored = again.vouchers.get_redemption(request_id)
                if stored is None:
                    raise
                return self._replay(stored, msisdn, request_id)
            if result is None:
                # lost a race; when the winner was this same request (a client retry), answer what it did
                winner = repo.get_redemption(request_id)
                uow.rollback()
                if winner is not None:
                    return self._replay(winner, msisdn, request_id)
                raise _Failure(RechargeRefused.VOUCHER_NOT_ACTIVE, f"voucher {serial} was redeemed by another request", serial)
            if guard.failed_attempts or guard.barred_until:
                repo.save_recharge_guard(self._lockout.after_success(guard, now))
            uow.audit.append(audit.entry(
                principal, now, "voucher.redeem", "voucher", serial, {"state": VoucherState.ACTIVE.value},
                {"state": VoucherState.USED.value, "msisdn": msisdn, "credited_micros": result.credited_micros,
                 "currency": result.currency, "transaction_id": result.transaction_id}, voucher.owner, request_id))
            uow.commit()
        log.info("voucher %s redeemed by %s: %d micros %s, transaction %s", serial, msisdn, result.credited_micros,
                 result.currency, result.transaction_id)
        return result

    @staticmethod
    def _replay(earlier: Redemption, msisdn: str, request_id: str) -> Redemption:
        if earlier.msisdn != msisdn:
            raise RechargeRefused(RechargeRefused.REQUEST_ID_REUSED,
                                  f"request id {request_id} was already used for another subscriber", request_id)
        return earlier

    def _record_failure(self, principal: Principal, msisdn: str, request_id: str, failure: _Failure) -> None:
        now = self._clock.now()
        with self._uow() as uow:
            guard = uow.vouchers.get_recharge_guard(msisdn)
            updated = self._lockout.after_failure(guard, now)
            uow.vouchers.save_recharge_guard(updated)
            after: dict[str, object] = {"reason": failure.reason, "failed_attempts": updated.failed_attempts}
            if updated.barred_until is not None:
                after["barred_until"] = updated.barred_until
            uow.audit.append(audit.entry(principal, now, "voucher.redeem_failed", "subscriber", msisdn, {}, after,
                                         request_id=request_id))
            uow.commit()
        log.info("recharge refused for %s: %s (%d consecutive failures)", msisdn, failure.reason, updated.failed_attempts)
        if updated.barred_until is not None and guard.barred_until != updated.barred_until:
            log.warning("recharge barred for %s until %s after %d wrong PINs", msisdn, updated.barred_until.isoformat(),
                        updated.failed_attempts)

    # --- staff ------------------------------------------------------------
    def clear_bar(self, principal: Principal, msisdn: str, reason: str = "") -> None:
        """Customer care lifts a recharge bar and resets the counter."""
        principal.require(Permission.VOUCHER_WRITE)
        number = normalise_msisdn(msisdn)
        now = self._clock.now()
        with self._uow() as uow:
            guard = uow.vouchers.get_recharge_guard(number)
            cleared = replace(guard, failed_attempts=0, barred_until=None)
            uow.vouchers.save_recharge_guard(cleared)
            uow.audit.append(audit.entry(principal, now, "recharge.unbar", "subscriber", number,
                                         {"failed_attempts": guard.failed_attempts, "barred_until": guard.barred_until},
                                         {"failed_attempts": 0, "barred_until": None, "reason": reason}))
            uow.commit()

    def bar(self, principal: Principal, msisdn: str, until: datetime, reason: str = "") -> None:
        """Customer care bars recharge by hand (suspected fraud)."""
        principal.require(Permission.VOUCHER_WRITE)
        number = normalise_msisdn(msisdn)
        now = self._clock.now()
        if until <= now:
            raise FailedPrecondition("BAR_IN_PAST", "a bar must end in the future", number)
        with self._uow() as uow:
            guard = uow.vouchers.get_recharge_guard(number)
            uow.vouchers.save_recharge_guard(replace(guard, barred_until=until))
            uow.audit.append(audit.entry(principal, now, "recharge.bar", "subscriber", number,
                                         {"barred_until": guard.barred_until}, {"barred_until": until, "reason": reason}))
            uow.commit()
