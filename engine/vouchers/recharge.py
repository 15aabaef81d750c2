"""Recharge: a subscriber turns a PIN into balance and validity, in one step or two.

* one step: ``redeem`` -- the voucher moves as ``rules/lifecycle/voucher.yaml`` says
  for ``redeem`` and the credit is booked;
* two steps, as the same file declares: ``reserve`` holds the voucher for the
  subscriber, ``commit`` books the credit, ``release`` gives the voucher back; a
  reservation nobody settles is moved on by ``reservation_timeout``
  (:meth:`engine.vouchers.desk.VoucherDesk.recover_reservations`) and can still be
  committed or released from there.

This module checks the request, hashes the PIN (the only place it exists in
clear, never logged or echoed) and turns the store's answer into a result or an
error; what happens in which order is :mod:`engine.vouchers.redemption`, carried
out by the store in one unit (one round trip on PostgreSQL).
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from datetime import datetime
from typing import Callable

from engine import audit
from engine.clock import Clock
from engine.errors import ErrorList, FailedPrecondition, InvalidArgument, NotFound
from engine.eventrules import Lifecycle, LockoutPolicy
from engine.identity import Permission, Principal
from engine.subscriber_numbers import msisdn_problem, normalise_msisdn
from engine.vouchers.crypto import KeyProvider, LookupHasher, lookup_versions
from engine.vouchers.moves import BATCH_NOT_ACTIVE, VOUCHER_EXPIRED, MoveTable, compile_moves
from engine.vouchers.pins import MAX_PIN_LENGTH, MIN_PIN_LENGTH, luhn_valid
from engine.vouchers.ports import VoucherUnitOfWorkFactory
from engine.vouchers.redemption import (
    PIN_CHECK_DIGIT,
    AttemptResult,
    Outcome,
    PinAttempt,
    RechargeGuard,
    Redemption,
    Reservation,
    ReservationStep,
    reservation_named,
)

log = logging.getLogger("rulebill.vouchers.recharge")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
REASON_MAX = 200
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
    RESERVATION_SETTLED = "RESERVATION_SETTLED"


def clean_msisdn(msisdn: str, errors: ErrorList, field: str = "msisdn") -> str:
    """E.164 digits, or a violation naming the field (the value is echoed only when it is short)."""
    number = normalise_msisdn(msisdn)
    if problem := msisdn_problem(number):
        errors.add(field, problem)
    return number


def _check_request_id(value: str, errors: ErrorList, field: str = "request_id") -> None:
    if not REQUEST_ID.match(value or ""):
        errors.add(field, "must be 1-80 characters: letters, digits, '.', '_', ':' or '-'")


class Recharger:
    def __init__(self, uow: VoucherUnitOfWorkFactory, keys: KeyProvider, lifecycle: Lifecycle, clock: Clock,
                 lockout: LockoutPolicy) -> None:
        self._uow = uow
        self._keys = keys
        self._lifecycle = lifecycle
        self._clock = clock
        self._lockout = lockout
        self._moves: dict[tuple[str, frozenset[str]], MoveTable] = {}
        self._hashers: dict[tuple[int, bytes], LookupHasher] = {}  # a hasher precomputes its key pads: keep them

    def moves(self, event: str, privileges: frozenset[str] = frozenset()) -> MoveTable:
        """The lifecycle's moves for ``event``, asked once per set of privileges and kept."""
        key = (event, privileges)
        table = self._moves.get(key)
        if table is None:
            table = self._moves[key] = compile_moves(self._lifecycle, event, privileges)
        return table

    def _lookup_hashers(self) -> list[LookupHasher]:
        out = []
        for version in lookup_versions(self._keys):
            key = (version, self._keys.lookup_key(version))
            out.append(self._hashers.get(key) or self._hashers.setdefault(key, LookupHasher(key[1], version)))
        return out

    # --- PIN entries --------------------------------------------------------
    def redeem(self, principal: Principal, msisdn: str, pin: str, request_id: str) -> Redemption:
        result = self._attempt("redeem", principal, msisdn, pin, request_id)
        assert result.redemption is not None
        return result.redemption

    def reserve(self, principal: Principal, msisdn: str, pin: str, request_id: str) -> Reservation:
        """Hold a voucher for the subscriber; ``request_id`` becomes the reservation id."""
        result = self._attempt("reserve", principal, msisdn, pin, request_id)
        assert result.reservation is not None
        return result.reservation

    def _attempt(self, event: str, principal: Principal, msisdn: str, pin: str, request_id: str) -> AttemptResult:
        attempt = self.pin_attempt(event, principal, msisdn, pin, request_id)
        with self._uow() as uow:
            result = uow.vouchers.attempt_pin(attempt)
            uow.commit()
        return self._answer(event, result, attempt.msisdn, request_id)

    def pin_attempt(self, event: str, principal: Principal, msisdn: str, pin: str, request_id: str) -> PinAttempt:
        """The checked request the store settles: the PIN only as its lookup hashes (what ``redeem`` and ``reserve``
        hand to the store)."""
        principal.require(Permission.VOUCHER_REDEEM)
        errors = ErrorList()
        number = clean_msisdn(msisdn, errors)
        digits = pin.translate(_PIN_SEPARATORS)
        if not (digits.isascii() and digits.isdigit()) or not MIN_PIN_LENGTH <= len(digits) <= MAX_PIN_LENGTH:
            errors.add("pin", f"must be {MIN_PIN_LENGTH} to {MAX_PIN_LENGTH} digits")  # the rule, never the value
        _check_request_id(request_id, errors)
        errors.raise_if_any(f"cannot {event} voucher")
        pin_bytes = digits.encode("ascii")
        # a mistyped PIN is refused before any lookup (it still counts as a wrong PIN)
        hashes = tuple(h.hash(pin_bytes) for h in self._lookup_hashers()) if luhn_valid(pin_bytes) else ()
        del pin_bytes, digits
        return PinAttempt(event, request_id, number, hashes, self._clock.now(), self.moves(event, principal.privileges),
                          self._lockout, "rtx_" + secrets.token_hex(10), principal)

    def _answer(self, event: str, r: AttemptResult, msisdn: str, request_id: str) -> AttemptResult:
        o = r.outcome
        if o is Outcome.DONE:
            if r.redemption is not None:
                log.info("voucher %s redeemed by %s: %d micros %s, transaction %s", r.redemption.serial, msisdn,
                         r.redemption.credited_micros, r.redemption.currency, r.redemption.transaction_id)
            elif r.reservation is not None:
                log.info("voucher %s reserved for %s as %s", r.reservation.serial, msisdn, request_id)
            return r
        if o is Outcome.REPLAYED:
            return r
        if o is Outcome.NO_SUBSCRIBER:
            raise NotFound("subscriber", msisdn)
        if o is Outcome.REQUEST_ID_REUSED:
            if r.barred_until is not None:   # another PIN under a used id is a counted guess (settle_attempt)
                log.warning("recharge barred for %s until %s after repeated wrong PINs", msisdn, r.barred_until.isoformat())
            what = {"subscriber": "another subscriber", "voucher": "another voucher (PIN)"}.get(r.reason, "another kind of request")
            raise RechargeRefused(RechargeRefused.REQUEST_ID_REUSED, f"request id {request_id} was already used for {what}; "
                                  "send a new request id", request_id)
        if o is Outcome.BARRED:
            until = r.barred_until.isoformat() if r.barred_until else ""
            raise RechargeRefused(RechargeRefused.RECHARGE_BARRED, f"recharge is barred for {msisdn} until {until} after "
                                  "repeated wrong PINs; customer care can lift the bar", msisdn)
        if o is Outcome.WRONG_PIN:
            log.info("recharge refused for %s: %s (%d consecutive failures)", msisdn, r.reason, r.failed_attempts)
            if r.barred_until is not None:
                log.warning("recharge barred for %s until %s after repeated wrong PINs", msisdn, r.barred_until.isoformat())
            message = "the PIN's check digit is wrong: it was mistyped" if r.reason == PIN_CHECK_DIGIT else "no voucher has this PIN"
            raise RechargeRefused(r.reason, message, msisdn)
        assert r.voucher is not None, r
        facts = r.voucher
        serial = str(facts.serial)
        if o is Outcome.ALREADY_YOURS:
            raise RechargeRefused(RechargeRefused.VOUCHER_NOT_ACTIVE, f"voucher {serial} is {facts.state}: this subscriber "
                                  "already redeemed or holds it", serial)
        log.info("recharge refused for %s: %s (%d consecutive failures)", msisdn, r.reason, r.failed_attempts)
        raise RechargeRefused(r.reason, _refusal_message(event, r.reason, facts.serial, facts.state, facts.batch_state), serial)

    # --- reservation steps --------------------------------------------------
    def commit(self, principal: Principal, reservation_id: str, tenant_id: str = "") -> Redemption:
        """Book the credit of a reservation (reserved or pending -> used, as the rules say)."""
        return self.commit_reservation(principal, reservation_id, tenant_id)[0]

    def commit_reservation(self, principal: Principal, reservation_id: str, tenant_id: str = "") -> tuple[Redemption, Reservation]:
        """:meth:`commit`, with the reservation as it stands afterwards (what CommitReservation answers).

        Reservation ids are per tenant: ``tenant_id`` names the reservation's; empty means the caller's own, or the
        only tenant the caller sees that has the id (:func:`~engine.vouchers.redemption.reservation_named`)."""
        result = self._step("commit", principal, reservation_id, "", tenant_id)
        assert result.redemption is not None and result.reservation is not None
        return result.redemption, result.reservation

    def release(self, principal: Principal, reservation_id: str, reason: str = "", tenant_id: str = "") -> Reservation:
        """Give the voucher back (reserved or pending -> active, as the rules say)."""
        result = self._step("release", principal, reservation_id, reason, tenant_id)
        assert result.reservation is not None
        return result.reservation

    def get_reservation(self, principal: Principal, reservation_id: str, tenant_id: str = "") -> Reservation:
        principal.require(Permission.VOUCHER_READ)
        with self._uow() as uow:
            candidates = uow.vouchers.reservations_with_id(reservation_id)
        held, ambiguous = reservation_named(principal, tenant_id, candidates)
        if ambiguous:
            raise _ambiguous(reservation_id)
        if held is None:
            raise NotFound("reservation", reservation_id)
        return held

    def _step(self, event: str, principal: Principal, reservation_id: str, reason: str, tenant_id: str = "") -> AttemptResult:
        principal.require(Permission.VOUCHER_REDEEM)
        errors = ErrorList()
        _check_request_id(reservation_id, errors, "reservation_id")
        if len(reason) > REASON_MAX:
            errors.add("reason", f"at most {REASON_MAX} characters")
        errors.raise_if_any(f"cannot {event} reservation")
        step = ReservationStep(event, reservation_id, self._clock.now(), self.moves(event, principal.privileges),
                               "rtx_" + secrets.token_hex(10), principal, reason, tenant_id)
        with self._uow() as uow:
            r = uow.vouchers.step_reservation(step)
            uow.commit()
        if r.outcome is Outcome.AMBIGUOUS:
            raise _ambiguous(reservation_id)
        if r.outcome in (Outcome.DONE, Outcome.REPLAYED):
            if r.outcome is Outcome.DONE:
                log.info("reservation %s: %s", reservation_id, event)
            return r
        if r.outcome is Outcome.NOT_FOUND:
            raise NotFound("reservation", reservation_id)
        if r.voucher is None:
            raise RechargeRefused(RechargeRefused.RESERVATION_SETTLED, f"cannot {event} reservation {reservation_id}: it is "
                                  f"{r.reservation.status if r.reservation else 'settled'}", reservation_id)
        f = r.voucher
        raise RechargeRefused(r.reason, _refusal_message(event, r.reason, f.serial, f.state, f.batch_state), str(f.serial))

    # --- staff ------------------------------------------------------------
    def clear_bar(self, principal: Principal, msisdn: str, reason: str = "") -> None:
        """Customer care lifts a recharge bar and resets the counter."""
        self._staff("recharge.unbar", principal, msisdn, reason, lambda guard, now: replace(guard, failed_attempts=0, barred_until=None))

    def bar(self, principal: Principal, msisdn: str, until: datetime, reason: str = "") -> None:
        """Customer care bars recharge by hand (suspected fraud)."""
        if until <= self._clock.now():
            raise InvalidArgument.field("until", "a bar must end in the future")
        self._staff("recharge.bar", principal, msisdn, reason, lambda guard, now: replace(guard, barred_until=until))

    def _staff(self, action: str, principal: Principal, msisdn: str, reason: str,
               change: Callable[[RechargeGuard, datetime], RechargeGuard]) -> None:
        principal.require(Permission.VOUCHER_WRITE)
        errors = ErrorList()
        number = clean_msisdn(msisdn, errors)
        if len(reason) > REASON_MAX:
            errors.add("reason", f"at most {REASON_MAX} characters")
        errors.raise_if_any("cannot change the recharge bar")
        now = self._clock.now()
        with self._uow() as uow:
            # the subscriber's tenant owns the bar: another tenant's subscriber is reported like a missing one
            subscriber = uow.subscribers.get_live_by_msisdn(number)
            if subscriber is None or not principal.can_see_tenant(subscriber.tenant_id):
                raise NotFound("subscriber", number)
            guard = uow.vouchers.get_recharge_guard(number)
            changed = change(guard, now)
            uow.vouchers.save_recharge_guard(changed)
            after: dict[str, object] = {"failed_attempts": changed.failed_attempts, "barred_until": changed.barred_until}
            if reason:
                after["reason"] = reason
            uow.audit.append(audit.entry(principal, now, action, "subscriber", number,
                                         {"failed_attempts": guard.failed_attempts, "barred_until": guard.barred_until},
                                         after, subscriber.tenant_id))
            uow.commit()


def _ambiguous(reservation_id: str) -> InvalidArgument:
    return InvalidArgument.field("tenant_id", f"reservation id {reservation_id} is used in more than one tenant you act for: "
                                 "name the reservation's tenant")


def _refusal_message(event: str, code: str, serial: int, state: str, batch_state: str) -> str:
    if code == BATCH_NOT_ACTIVE:
        return f"cannot {event} voucher {serial}: its batch is {batch_state}"
    if code == VOUCHER_EXPIRED:
        return f"cannot {event} voucher {serial}: it has expired"
    return f"cannot {event} voucher {serial}: it is {state}"
