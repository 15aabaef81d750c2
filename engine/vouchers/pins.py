"""Recharge PINs: random digits from the OS CSPRNG plus a Luhn check digit.

Generation is vectorised without numpy:

* bytes are drawn from ``os.urandom`` in bulk; a byte >= 250 is rejected
  (deleted) and the rest are mapped to ``byte % 10`` -- 250 is a multiple of 10,
  so every digit is exactly equally likely (no modulo bias);
* the Luhn sums of all PINs are added in one go: column ``k`` of every PIN
  (``digits[k::L]``) is one ``bytes`` object whose bytes are read as the lanes of
  one big integer; adding L such integers sums each PIN in its own byte lane
  (L * 9 <= 255, so lanes never carry into each other);
* the result is interleaved with extended-slice assignment on a bytearray.

All of it runs in C; the only per-PIN Python work is the final slicing.
PINs are ASCII ``bytes`` (what HMAC and AEAD consume); they never go to logs.
"""

from __future__ import annotations

import os
from typing import Callable

DEFAULT_PIN_LENGTH = 16  # 15 random digits + 1 Luhn check digit
MIN_PIN_LENGTH = 12
MAX_PIN_LENGTH = 24  # keeps Luhn lane sums below 256

# byte -> digit value (0..9); bytes 250..255 are rejected before mapping
_TO_VALUE = bytes(b % 10 if b < 250 else 0 for b in range(256))
_REJECT = bytes(range(250, 256))
_VALUE_TO_ASCII = bytes((48 + b) if b < 10 else 0 for b in range(256))
# Luhn doubling of a digit value: 0..4 -> 2d, 5..9 -> 2d - 9
_DOUBLED = bytes((2 * b if b < 5 else 2 * b - 9) if b < 10 else 0 for b in range(256))
# lane sum -> ASCII check digit that brings the total to a multiple of 10
_CHECK_ASCII = bytes(48 + (10 - s % 10) % 10 for s in range(256))

RandomBytes = Callable[[int], bytes]


def random_digit_values(count: int, randbytes: RandomBytes = os.urandom) -> bytes:
    """``count`` uniformly random digit values (bytes 0..9), rejection-sampled."""
    out = bytearray()
    while len(out) < count:
        missing = count - len(out)
        # 250/256 of the bytes survive; ask for a little more than needed
        raw = randbytes(missing + missing // 32 + 16)
        out += raw.translate(_TO_VALUE, _REJECT)
    del out[count:]
    return bytes(out)


def _check_digits(values: bytes, payload: int) -> bytes:
    """ASCII Luhn check digit of each ``payload``-digit group of ``values``."""
    total = 0
    for k in range(payload):
        column = values[k::payload]
        # counted from the right of the full PIN (check digit = position 0),
        # payload index k sits at position payload - k: odd positions are doubled
        if (payload - k) % 2 == 1:
            column = column.translate(_DOUBLED)
        total += int.from_bytes(column, "little")
    count = len(values) // payload
    return total.to_bytes(count, "little").translate(_CHECK_ASCII)


def generate_pins(count: int, length: int = DEFAULT_PIN_LENGTH, randbytes: RandomBytes = os.urandom) -> list[bytes]:
    """``count`` PINs of ``length`` ASCII digits, the last one a Luhn check digit.

    Uniqueness is not guaranteed here (the batch producer removes duplicates).
    """
    if not MIN_PIN_LENGTH <= length <= MAX_PIN_LENGTH:
        raise ValueError(f"PIN length must be {MIN_PIN_LENGTH}..{MAX_PIN_LENGTH}, got {length}")
    if count <= 0:
        return []
    payload = length - 1
    values = random_digit_values(count * payload, randbytes)
    checks = _check_digits(values, payload)
    ascii_payload = values.translate(_VALUE_TO_ASCII)
    full = bytearray(count * length)
    for k in range(payload):
        full[k::length] = ascii_payload[k::payload]
    full[payload::length] = checks
    data = bytes(full)
    return [data[i : i + length] for i in range(0, len(data), length)]


def luhn_valid(pin: str | bytes) -> bool:
    """True when ``pin`` is all ASCII digits and its last digit is the Luhn check digit."""
    text = pin.decode("ascii", "replace") if isinstance(pin, bytes) else pin
    if len(text) < 2 or not (text.isascii() and text.isdigit()):
        return False
    total = 0
    for position, ch in enumerate(reversed(text)):
        d = ord(ch) - 48
        if position % 2 == 1:
            d = d * 2 - 9 if d >= 5 else d * 2
        total += d
    return total % 10 == 0


def luhn_check_digit(payload: str) -> str:
    """The digit to append to ``payload`` so that the result passes :func:`luhn_valid`."""
    if not (payload.isascii() and payload.isdigit()):
        raise ValueError("payload must be ASCII digits")
    total = 0
    for position, ch in enumerate(reversed(payload), start=1):
        d = ord(ch) - 48
        if position % 2 == 1:
            d = d * 2 - 9 if d >= 5 else d * 2
        total += d
    return str((10 - total % 10) % 10)
