"""The BER reader: forms of tags and lengths, and every error carrying its byte offset."""

from __future__ import annotations

import pytest

from engine.tap3.ber import (
    MAX_DEPTH,
    Tap3DecodeError,
    bcd,
    children,
    cons,
    encode_tag,
    integer,
    prim,
    top_level,
)
from tests.tap3_writer import encode_integer, encode_length, tlv


def error_of(data: bytes) -> Tap3DecodeError:
    with pytest.raises(Tap3DecodeError) as info:
        key, vs, ve = top_level(data)
        stack = [(vs, ve)]
        while stack:   # walk everything, as the decoder would
            s, e = stack.pop()
            for k, _h, s2, e2 in children(data, s, e):
                if k & 0x20000000:
                    stack.append((s2, e2))
    return info.value


def test_short_multi_byte_and_long_tags() -> None:
    data = tlv(1, tlv(4, b"") + tlv(196, b"ABCDE") + tlv(16383, b"x") + tlv(70000, b"yz"), constructed=True)
    key, vs, ve = top_level(data)
    assert key == cons(1)
    items = children(data, vs, ve)
    assert [k for k, *_ in items] == [prim(4), prim(196), prim(16383), prim(70000)]
    assert data[items[1][2]:items[1][3]] == b"ABCDE"
    assert data[items[3][2]:items[3][3]] == b"yz"


@pytest.mark.parametrize("size", [0, 1, 127, 128, 255, 256, 70000])
def test_definite_lengths_short_and_long_form(size: int) -> None:
    data = tlv(1, tlv(163, b"a" * size), constructed=True)
    key, vs, ve = top_level(data)
    ((k, h, s, e),) = children(data, vs, ve)
    assert k == prim(163) and e - s == size and e == len(data)


def test_long_form_with_non_minimal_length_is_accepted() -> None:
    data = bytes([0x61, 0x82, 0x00, 0x03, 0x44, 0x81, 0x00])
    key, vs, ve = top_level(data)
    assert children(data, vs, ve) == [(prim(4), 4, 7, 7)]


def test_indefinite_lengths_nested() -> None:
    inner = tlv(3, tlv(9, tlv(44, b"", constructed=True), constructed=True, indefinite=True), constructed=True,
                indefinite=True)
    data = tlv(1, tlv(4, b"", constructed=True) + inner, constructed=True, indefinite=True)
    key, vs, ve = top_level(data)
    assert key == cons(1) and ve == len(data) - 2
    items = children(data, vs, ve)
    assert [k for k, *_ in items] == [cons(4), cons(3)]
    ((k9, _h, s9, e9),) = children(data, items[1][2], items[1][3])
    assert k9 == cons(9) and data[e9:e9 + 2] == b"\x00\x00"


def test_trailing_bytes_are_fatal_with_offset() -> None:
    data = tlv(1, tlv(4, b""), constructed=True)
    err = error_of(data + b"\x00\x00")
    assert (err.code, err.offset) == ("trailing-bytes", len(data))


@pytest.mark.parametrize("cut", [1, 2, 5, 9])
def test_truncation_is_reported(cut: int) -> None:
    data = tlv(1, tlv(196, b"ABCDE") + tlv(182, b"FGHIJ"), constructed=True)
    err = error_of(data[:-cut])
    assert err.code in ("truncated", "length-overrun")
    assert 0 <= err.offset <= len(data)


def test_length_overrun_inside_a_constructed_value() -> None:
    # outer says 5 octets, the inner element claims 10
    data = bytes([0x61, 0x05, 0x44, 0x0A, 0x41, 0x42, 0x43])
    err = error_of(data)
    assert (err.code, err.offset) == ("length-overrun", 2)


def test_eoc_in_a_definite_length_value_is_misplaced() -> None:
    data = bytes([0x61, 0x04, 0x00, 0x00, 0x44, 0x00])
    err = error_of(data)
    assert (err.code, err.offset) == ("misplaced-eoc", 2)


def test_missing_end_of_contents() -> None:
    data = bytes([0x61, 0x80, 0x44, 0x00])
    err = error_of(data)
    assert err.code == "truncated" and err.offset == 4


def test_malformed_end_of_contents() -> None:
    err = error_of(bytes([0x61, 0x80, 0x44, 0x00, 0x00, 0x01]))
    assert (err.code, err.offset) == ("bad-length", 4)


def test_indefinite_length_on_primitive_is_rejected() -> None:
    err = error_of(bytes([0x61, 0x80, 0x44, 0x80, 0x00, 0x00, 0x00, 0x00]))
    assert (err.code, err.offset) == ("bad-length", 3)


def test_reserved_and_oversized_length_forms() -> None:
    assert error_of(bytes([0x61, 0xFF])).code == "bad-length"
    assert error_of(bytes([0x61, 0x89] + [1] * 9)).code == "bad-length"


def test_tag_with_leading_zero_or_too_long() -> None:
    assert error_of(bytes([0x7F, 0x80, 0x01, 0x00])).code == "bad-tag"
    assert error_of(bytes([0x7F, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01, 0x00])).code == "bad-tag"


def test_deep_indefinite_nesting_is_bounded_not_a_crash() -> None:
    data = b"\x61\x80" * (MAX_DEPTH + 5) + b"\x00\x00" * (MAX_DEPTH + 5)
    assert error_of(data).code == "too-deep"


def test_deep_definite_nesting_does_not_recurse() -> None:
    payload = b""
    for _ in range(5000):
        payload = tlv(1, payload, constructed=True)
    key, vs, ve = top_level(payload)   # the reader itself is iterative
    assert key == cons(1)


def test_empty_input() -> None:
    assert error_of(b"").code == "truncated"


@pytest.mark.parametrize("value", [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**63, -(2**63), 4294967294, 10**30])
def test_integer_twos_complement_round_trip(value: int) -> None:
    content = encode_integer(value)
    assert integer(content, 0, len(content)) == value


def test_integer_decoding_of_known_octets() -> None:
    assert integer(b"\xfe", 0, 1) == -2
    assert integer(b"\x00\xff\xff\xff\xfe", 0, 5) == 4294967294
    with pytest.raises(Tap3DecodeError) as info:
        integer(b"", 0, 0)
    assert info.value.code == "bad-value"


def test_bcd_high_nibble_first_with_filler() -> None:
    data = bytes.fromhex("133713371337133f")
    assert bcd(data, 0, len(data)) == "133713371337133"
    assert bcd(b"\x49\x17", 0, 2) == "4917"
    for bad in (b"\xf1", b"\xff", b""):
        with pytest.raises(Tap3DecodeError):
            bcd(bad, 0, len(bad))


def test_encode_helpers() -> None:
    assert encode_tag(1, True) == b"\x61"
    assert encode_tag(196, False) == b"\x5f\x81\x44"
    assert encode_length(127) == b"\x7f" and encode_length(128) == b"\x81\x80" and encode_length(256) == b"\x82\x01\x00"


def test_oversized_integer_is_a_bad_value() -> None:
    content = b"\x01" * 17
    with pytest.raises(Tap3DecodeError) as info:
        integer(content, 0, len(content))
    assert (info.value.code, info.value.offset) == ("bad-value", 0)
