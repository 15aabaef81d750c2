"""Conversions, numbering and filters, one kind at a time."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.mediation.conversions import CompileContext, Duration, Epoch, Imsi, Integer, Timestamp, Volume
from engine.mediation.numbering_plan import NumberingPlan
from engine.mediation.problems import ConversionError

CTX = CompileContext(NumberingPlan())
UK = NumberingPlan(country_code="44", national_prefix="0", short_codes=frozenset({"999", "112"}), extension_max_length=4).compile()


@pytest.mark.parametrize(
    "text,expected",
    [("07700900123", "447700900123"), ("+44 7700 900123", "447700900123"), ("00447700900123", "447700900123"),
     ("0033612345678", "33612345678"), ("447700900123", "447700900123"), ("999", "999"), ("2001", "2001"), ("", ""),
     ("(020) 7946-0000", "442079460000")],
)
def test_uk_numbers(text: str, expected: str) -> None:
    assert UK(text) == expected
    assert UK(text) == expected   # second call answers from the cache


@pytest.mark.parametrize("text", ["alice", "01234", "00123", "+12", "000447700", "+44 77x", "07700９00123", "٠٧٧٠٠٩٠٠١٢٣"])
def test_bad_numbers_are_rejected(text: str) -> None:
    with pytest.raises(ConversionError) as info:
        UK(text)
    assert info.value.code == "value.bad-number"


def test_national_unprefixed_and_names_kept() -> None:
    es = NumberingPlan(country_code="34", national_prefix="", unprefixed="national", non_numeric="keep").compile()
    assert (es("688886392"), es("0034688886392"), es("alice")) == ("34688886392", "34688886392", "alice")


@pytest.mark.parametrize(
    "unit,rounding,text,seconds",
    [("s", "up", "60", 60), ("ms", "up", "61001", 62), ("ms", "down", "61999", 61), ("ms", "nearest", "61500", 62),
     ("cs", "up", "1234", 13), ("min", "up", "2", 120), ("s", "up", "", 0)],
)
def test_durations(unit: str, rounding: str, text: str, seconds: int) -> None:
    assert Duration(unit, rounding).compile(CTX)(text) == seconds


@pytest.mark.parametrize("conv,text,code", [(Duration("ms"), "-5", "value.negative"), (Integer(), "5x", "value.not-integer"),
                                            (Volume("B"), "-1", "value.negative"), (Imsi(), "23415abc", "value.bad-imsi")])
def test_conversion_error_codes(conv, text: str, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConversionError) as info:
        conv.compile(CTX)(text)
    assert info.value.code == code


def test_volumes() -> None:
    assert Volume("KiB").compile(CTX)("2") == 2048 and Volume("kB").compile(CTX)("2") == 2000


@pytest.mark.parametrize(
    "fmt,zone,text,utc",
    [("%Y-%m-%d %H:%M:%S", "UTC", "2026-11-27 10:00:05", "2026-11-27T10:00:05Z"),
     ("%Y-%m-%d %H:%M:%S", "Europe/London", "2026-07-01 10:00:05", "2026-07-01T09:00:05Z"),
     ("%Y-%m-%d %H:%M:%S", "Asia/Kolkata", "2026-07-01 10:00:05", "2026-07-01T04:30:05Z"),
     ("%Y-%m-%dT%H:%M:%S", "America/New_York", "2026-01-01T00:00:00", "2026-01-01T05:00:00Z"),
     ("%Y%m%d%H%M%S", "UTC", "20261127080000", "2026-11-27T08:00:00Z"),
     ("%d/%m/%Y %H:%M", "Europe/Paris", "27/11/2026 09:15", "2026-11-27T08:15:00Z"),
     ("%Y-%m-%d %H:%M:%S", "UTC", "2016-12-31 23:59:60", "2016-12-31T23:59:59Z")],
)
def test_timestamps(fmt: str, zone: str, text: str, utc: str) -> None:
    convert = Timestamp(fmt, zone).compile(CTX)
    assert convert(text) == utc
    assert convert(text) == utc   # the cached hour gives the same answer


@pytest.mark.parametrize("text", ["2026-13-01 00:00:00", "2026-02-30 10:00:00", "2026-11-27 24:00:00", "2026-11-27 10:61:00", "", "yesterday"])
def test_bad_timestamps(text: str) -> None:
    convert = Timestamp().compile(CTX)
    convert("2026-11-27 10:00:00")   # warm the hour cache: a bad minute must still be caught
    with pytest.raises(ConversionError) as info:
        convert(text)
    assert info.value.code == "value.bad-timestamp"


@given(st.integers(min_value=1, max_value=4102444800))
def test_epoch_matches_datetime(seconds: int) -> None:
    from datetime import datetime, timezone

    assert Epoch("s").compile(CTX)(str(seconds)) == datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert Epoch("ms").compile(CTX)(str(seconds * 1000 + 999)) == datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@given(st.datetimes(min_value=__import__("datetime").datetime(1971, 1, 1), max_value=__import__("datetime").datetime(2099, 1, 1)))
def test_fast_timestamp_path_equals_zoneinfo(local) -> None:  # type: ignore[no-untyped-def]
    from datetime import timezone
    from zoneinfo import ZoneInfo

    text = local.strftime("%Y-%m-%d %H:%M:%S")
    # the text cannot say which of a repeated hour it was: fold=0, as the converter documents
    expected = local.replace(microsecond=0, fold=0, tzinfo=ZoneInfo("Europe/Madrid")).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    convert = Timestamp("%Y-%m-%d %H:%M:%S", "Europe/Madrid").compile(CTX)
    assert convert(text) == expected
    assert convert(text) == expected


def test_epoch_zero_means_never() -> None:
    with pytest.raises(ConversionError):
        Epoch().compile(CTX)("0")
