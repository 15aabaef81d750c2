"""Fuzzing the BER reader and the TAP decoder: any input either decodes or raises
Tap3DecodeError with an offset inside the input — never another exception.

Inputs that once broke this promise live in tests/fuzz_regressions/tap3/ and are replayed first.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.tap3 import Tap3DecodeError, decode_file, to_cdrs, to_json, validate
from tests import tap3_writer as W

REGRESSIONS = Path(__file__).resolve().parents[2] / "fuzz_regressions" / "tap3"
_DEFAULT = Path(__file__).resolve().parents[3] / ".." / "shared" / "conformance"
CORPUS = Path(os.environ.get("RULEBILL_CONFORMANCE_DIR", str(_DEFAULT))) / "tap3"


def seeds() -> list[bytes]:
    out = [W.transfer_batch([W.mo_call("262011234567890", "4917012", "4930", "20240105101500", 60, 990),
                             W.gprs_call("262011234567890", "4917012", "apn", "20240105101600", 6, 10, 20, 5),
                             W.suppl_service_event("262011234567890", "20240105101700")]),
           W.transfer_batch([W.mt_call("262011234567890", "4917012", "4930", "20240105101500", 60, 990)],
                            indefinite=True)]
    if CORPUS.is_dir():
        out += [p.read_bytes() for p in sorted(CORPUS.glob("*.ber"))]
    return out


SEEDS = seeds()


def _decodes(data: bytes) -> bool:
    try:
        decode_file(data)
    except Tap3DecodeError:
        return False
    return True


# a prefix of a decodable file can never decode (its outer element is cut short);
# a prefix of an undecodable one may (trailing_eoc_invalid minus its junk is valid)
DECODABLE_SEEDS = [s for s in SEEDS if _decodes(s)]


def check(data: bytes) -> None:
    """The whole pipeline must either work or fail with a located Tap3DecodeError."""
    try:
        doc = decode_file(data)
    except Tap3DecodeError as exc:
        assert isinstance(exc.offset, int) and 0 <= exc.offset <= len(data), exc
        assert exc.code
        return
    validate(doc)
    to_cdrs(doc)
    to_json(doc)


@pytest.mark.parametrize("path", sorted(REGRESSIONS.glob("*.ber")), ids=lambda p: p.name)
def test_regression_inputs(path: Path) -> None:
    check(path.read_bytes())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes(data: bytes) -> None:
    check(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=60))
def test_random_bytes_inside_a_batch_header(tail: bytes) -> None:
    check(b"\x61\x80\x64" + tail)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        action = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.sampled_from([0x00, 0x80, 0x81, 0x82, 0xFF, 0x1F, 0x7F, 0x5F]))
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        else:
            del data[at:]
    return bytes(data)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_files(data: bytes) -> None:
    check(data)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(DECODABLE_SEEDS), st.data())
def test_every_truncation_is_located(seed: bytes, data: st.DataObject) -> None:
    cut = data.draw(st.integers(0, len(seed) - 1))
    with pytest.raises(Tap3DecodeError) as info:
        decode_file(seed[:cut])
    assert 0 <= info.value.offset <= cut


@settings(max_examples=200, deadline=None)
@given(local=st.text(alphabet="0123456789", min_size=14, max_size=14),
       offset=st.sampled_from(["+0000", "+1400", "-1400", "+0230", "+9999", "0200", "+02:0"]),
       charge=st.integers(-(2**70), 2**70), places=st.integers(-2, 9), volume=st.integers(-(2**40), 2**40))
def test_structured_values(local: str, offset: str, charge: int, places: int, volume: int) -> None:
    """Well-formed BER with arbitrary values: time stamps, offsets, amounts, decimal places."""
    events = [W.mo_call("262011234567890", "4917012", "4930", local, 60, charge),
              W.gprs_call("262011234567890", "4917012", "apn", local, 6, volume, 20, 5)]
    check(W.transfer_batch(events, utc_offset=offset, decimal_places=places))
