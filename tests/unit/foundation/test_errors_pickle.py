"""The engine's errors cross process boundaries (a bill run's workers) as themselves: class, message and fields."""

from __future__ import annotations

import pickle

import pytest

from engine.errors import (AlreadyExists, Cancelled, DomainError, FailedPrecondition, FieldViolation, InvalidArgument,
                           NotFound, PermissionDenied, ResourceExhausted)

CASES = [
    InvalidArgument("bad request: account.country: unknown", [FieldViolation("account.country", "unknown")]),
    InvalidArgument.field("cycle.anchor_day", "must be 1-31, not 32"),
    NotFound("billing account", "acc-1"),
    AlreadyExists("add-on purchase", "req-9", "request req-9 bought data-1g already"),
    FailedPrecondition("PERIOD_BILLED", "period 2026-11 is billed already", "acc-1"),
    PermissionDenied("a CSR cannot issue bills"),
    ResourceExhausted("too many CDRs in one request (max_cdrs_per_request)"),
    Cancelled("the caller went away"),
]


@pytest.mark.parametrize("error", CASES, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling_with_its_fields(error: DomainError) -> None:
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error) and back.message == error.message
    assert vars(back) == vars(error)


def test_a_subclass_with_its_own_arguments_is_not_rebuilt_by_calling_it() -> None:
    """Default exception pickling calls ``cls(*args)``: NotFound("x not found") would fail (two arguments needed)."""
    back = pickle.loads(pickle.dumps(NotFound("voucher batch", "b-1")))
    assert (back.resource_type, back.name, back.message) == ("voucher batch", "b-1", "voucher batch b-1 not found")
