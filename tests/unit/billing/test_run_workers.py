"""What crosses from a bill run's worker process to the run: the engine's own errors arrive as themselves."""

from __future__ import annotations

import pickle

from engine.billing.runs import _Crossing
from engine.errors import AlreadyExists, FailedPrecondition


def test_an_engine_error_raised_in_a_worker_arrives_as_itself() -> None:
    sent = FailedPrecondition("BILL_RUN_CONTENDED", "bill run run_1: a batch kept losing its claims", "run_1")
    got = pickle.loads(pickle.dumps(_Crossing(sent)))
    assert type(got) is FailedPrecondition
    assert (got.reason, got.message, got.subject) == (sent.reason, sent.message, sent.subject)
    claimed = pickle.loads(pickle.dumps(_Crossing(AlreadyExists("billed CDR", "c1"))))
    assert type(claimed) is AlreadyExists and str(claimed) == "billed CDR c1 already exists"
