"""The rating reference cases of the domain brief (listed in tests/golden/reference-cases/README.md), reproduced exactly
(micros, no floats)."""

from __future__ import annotations

import pytest

from engine.rating import Evaluator, RatingStatus
from tests.unit.rating.helpers import FIXTURES, cdr, compile_folder


@pytest.fixture(scope="module")
def rater() -> Evaluator:
    return Evaluator(compile_folder(FIXTURES / "reference"))


@pytest.mark.parametrize(("seconds", "micros"), [(120, 700_000), (130, 720_000)])
def test_connect_fee_first_minute_then_per_second(rater: Evaluator, seconds: int, micros: int) -> None:
    # connect 0.40; 0.20 per 60 s for the first 60 s (60 s increments), then 0.10 per 60 s in 1 s increments
    rated = rater.rate(cdr(b_number="33612345678", duration_seconds=seconds), "TP_REF_A")
    assert rated.status is RatingStatus.RATED
    assert rated.charge_micros == micros
    assert rated.currency == "EUR"


def test_130s_is_exactly_0_71666_before_rounding(rater: Evaluator) -> None:
    rated = rater.rate(cdr(duration_seconds=130), "TP_REF_A")
    # the exact amount is shown in the explanation; rounding happens once, per call
    assert "0.716667…" in rated.explanation and "half_up" in rated.explanation
    assert rated.charge_micros == 720_000  # not 0.7169 (rounding each 1 s increment)


@pytest.mark.parametrize(("seconds", "micros"), [(24, 170_000), (180, 300_000)])
def test_connect_015_and_005_per_minute_rounded_up(rater: Evaluator, seconds: int, micros: int) -> None:
    rated = rater.rate(cdr(b_number="33410000", duration_seconds=seconds), "TP_REF_A")
    assert rated.spans[0].rate_id == "RT_REF_B"
    assert rated.charge_micros == micros


def test_010_per_minute_per_second_180s_is_exactly_030(rater: Evaluator) -> None:
    rated = rater.rate(cdr(b_number="33420000", duration_seconds=180), "TP_REF_A")
    assert rated.spans[0].rate_id == "RT_REF_C"
    assert rated.charge_micros == 300_000
    assert rated.as_dict()["charge"] == "0.30"


def test_graduated_tiers_14660(rater: Evaluator) -> None:
    rated = rater.rate(cdr("sms", b_number="33430000", event_count=10_500), "TP_REF_A")
    assert rated.spans[0].rate_id == "RT_REF_GRADUATED"
    assert rated.charge_micros == 14_660_000_000


def test_volume_tiers_13860(rater: Evaluator) -> None:
    rated = rater.rate(cdr("sms", b_number="33440000", event_count=10_500), "TP_REF_A")
    assert rated.charge_micros == 13_860_000_000


def test_tier_boundary_is_inclusive(rater: Evaluator) -> None:
    g = rater.rate(cdr("sms", b_number="33430000", event_count=10_000), "TP_REF_A")
    v = rater.rate(cdr("sms", b_number="33440000", event_count=10_000), "TP_REF_A")
    assert g.charge_micros == v.charge_micros == 14_000_000_000
