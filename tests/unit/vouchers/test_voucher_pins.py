"""PIN generation and the Luhn check digit."""

from __future__ import annotations

import itertools
import os
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.vouchers.pins import (
    DEFAULT_PIN_LENGTH,
    generate_pins,
    luhn_check_digit,
    luhn_valid,
    random_digit_values,
)


@pytest.mark.parametrize("number", ["79927398713", "4539578763621486", "0000000000000000", "18"])
def test_known_valid_luhn_numbers(number: str) -> None:
    assert luhn_valid(number)
    assert luhn_check_digit(number[:-1]) == number[-1]


@pytest.mark.parametrize("number", ["79927398710", "4539578763621487", "", "7", "12a4", "１２３４５６７８９０１２３４５", "1234 5678"])
def test_invalid_luhn_numbers(number: str) -> None:
    assert not luhn_valid(number)


def test_default_pin_is_15_random_digits_and_a_check_digit() -> None:
    pins = generate_pins(2000)
    assert DEFAULT_PIN_LENGTH == 16
    assert all(len(p) == 16 and p.isdigit() and luhn_valid(p) for p in pins)
    assert all(luhn_check_digit(p[:-1].decode()) == chr(p[-1]) for p in pins)
    assert len(set(pins)) == len(pins)


@pytest.mark.parametrize("length", range(12, 25))
def test_every_allowed_length_carries_a_correct_check_digit(length: int) -> None:
    pins = generate_pins(500, length)
    assert {len(p) for p in pins} == {length}
    assert all(luhn_check_digit(p[:-1].decode()) == chr(p[-1]) for p in pins)


@pytest.mark.parametrize("length", [0, 11, 25])
def test_lengths_outside_the_range_are_refused(length: int) -> None:
    with pytest.raises(ValueError):
        generate_pins(1, length)


def test_rejection_sampling_drops_bytes_from_250_up() -> None:
    # bytes 250..255 would make digits 0..5 more likely; they must be discarded, not folded
    source = itertools.cycle([bytes(range(244, 256))])
    values = random_digit_values(12, lambda n: (next(source) * (n // 12 + 1))[:n])
    assert set(values) <= set(range(10))
    assert values[:6] == bytes([4, 5, 6, 7, 8, 9])  # 244..249 kept as 4..9, then 250..255 skipped
    assert values[6:12] == bytes([4, 5, 6, 7, 8, 9])


def test_digits_are_uniform() -> None:
    values = random_digit_values(200_000)
    counts = Counter(values)
    expected = len(values) / 10
    chi2 = sum((counts[d] - expected) ** 2 / expected for d in range(10))
    assert set(counts) == set(range(10))
    assert chi2 < 40  # 9 degrees of freedom: p < 1e-5 for a fair source


def test_every_position_of_a_pin_is_uniform() -> None:
    pins = generate_pins(50_000)
    for position in range(15):
        counts = Counter(p[position] for p in pins)
        expected = len(pins) / 10
        chi2 = sum((c - expected) ** 2 / expected for c in counts.values())
        assert len(counts) == 10 and chi2 < 40, position


def test_generation_uses_the_given_random_source() -> None:
    calls: list[int] = []

    def source(n: int) -> bytes:
        calls.append(n)
        return os.urandom(n)

    generate_pins(100, randbytes=source)
    assert calls and sum(calls) >= 100 * 15


def test_a_large_draw_is_all_valid_and_all_digits() -> None:
    # how fast a million are drawn is measured by bench/bench_vouchers.py (generate only), not asserted here
    pins = generate_pins(200_000)
    assert len(pins) == 200_000 and {len(p) for p in pins} == {16}
    assert all(p.isdigit() and luhn_valid(p) for p in pins)
    assert len(set(pins)) > 199_990  # 15 random digits: a repeat among 200k is a ~2e-5 event


@given(st.text(alphabet="0123456789", min_size=1, max_size=30))
def test_check_digit_makes_any_payload_valid(payload: str) -> None:
    assert luhn_valid(payload + luhn_check_digit(payload))


@given(st.text(alphabet="0123456789", min_size=11, max_size=23), st.data())
def test_any_single_digit_error_is_detected(payload: str, data: st.DataObject) -> None:
    pin = payload + luhn_check_digit(payload)
    index = data.draw(st.integers(0, len(pin) - 1))
    wrong = data.draw(st.sampled_from([d for d in "0123456789" if d != pin[index]]))
    assert not luhn_valid(pin[:index] + wrong + pin[index + 1:])
