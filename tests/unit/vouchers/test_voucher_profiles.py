"""Voucher profiles: the shipped catalogue loads clean; negative fixtures pin the exact error list.

Regenerate the ``*.errors`` files after an intended change with
``RULEBILL_UPDATE_GOLDEN=1 pytest tests/unit/vouchers/test_voucher_profiles.py`` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.vouchers.face_value import FaceValueError, format_face_value, parse_face_value
from engine.vouchers.profile import ProfileCatalogue, SerialFormat, load_profiles, load_profiles_text
from engine.yamlio import format_problems

from .factories import REPO

NEGATIVE = Path(__file__).parent / "fixtures" / "negative"


def test_shipped_profiles_cover_the_demo_operator(profiles: ProfileCatalogue) -> None:
    assert {p.owner for p in profiles.profiles.values()} == {"mno", "mvno-alpha", "mvno-beta"}
    assert {p.currency for p in profiles.profiles.values()} >= {"EUR", "USD", "GBP", "JPY", "KWD"}
    eur10 = profiles.profiles["vp-mno-eur-10"]
    assert eur10.face_value_micros == 10_000_000 and eur10.pin_length == 16
    assert eur10.serial == SerialFormat("MN", 10)
    assert profiles.profiles["vp-beta-jpy-1000"].face_value_micros == 1_000_000_000
    assert profiles.profiles["vp-beta-kwd-5"].face_value_micros == 5_000_000
    assert eur10.source == "plans/vouchers/mno.yaml:14"


def test_known_tenants_are_checked() -> None:
    catalogue = load_profiles([REPO / "plans" / "vouchers"], known_tenants={"mno", "mvno-alpha"}, root=REPO)
    assert {p.code for p in catalogue.problems} == {"profile.unknown-owner"}
    assert all(p.file == "plans/vouchers/mvno-beta.yaml" for p in catalogue.problems)
    assert "vp-beta-eur-20" not in catalogue.profiles


@pytest.mark.parametrize("fixture", sorted(p.name for p in NEGATIVE.glob("*.yaml")))
def test_negative_fixture_pins_exact_errors(fixture: str) -> None:
    catalogue = load_profiles([NEGATIVE / fixture], root=NEGATIVE)
    got = "".join(f"{p.line}:{p.col}: {p.code}\n" for p in catalogue.problems)
    expected_file = NEGATIVE / fixture.replace(".yaml", ".errors")
    if os.environ.get("RULEBILL_UPDATE_GOLDEN"):
        expected_file.write_text(got)
    assert got == expected_file.read_text()
    assert all(p.file == fixture for p in catalogue.problems)


def test_all_problems_of_all_files_are_collected_in_one_run() -> None:
    catalogue = load_profiles([NEGATIVE], root=NEGATIVE)
    assert {p.file for p in catalogue.problems} == {p.name for p in NEGATIVE.glob("*.yaml")}
    assert len(catalogue.problems) >= 30
    text = format_problems(catalogue.problems, "text")
    assert "bad_values.yaml:5:15: currency.unknown:" in text


def test_duplicate_id_across_files(tmp_path: Path) -> None:
    body = ("profiles:\n  - {id: vp-x, name: X, owner: mno, currency: EUR, face_value: \"1.00\", validity_days: 1,"
            " recharge_extension_days: 0, serial: {digits: 8}}\n")
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "b.yaml").write_text(body)
    catalogue = load_profiles([tmp_path], root=tmp_path)
    assert [(p.file, p.line, p.code) for p in catalogue.problems] == [("b.yaml", 2, "profile.duplicate-id")]
    assert "a.yaml:2" in catalogue.problems[0].message


def test_empty_file_is_no_profiles() -> None:
    assert load_profiles_text("", "empty.yaml").profiles == {}


@pytest.mark.parametrize(
    ("text", "currency", "micros"),
    [("10.00", "EUR", 10_000_000), ("0.01", "EUR", 10_000), ("1000", "JPY", 1_000_000_000), (5, "KWD", 5_000_000),
     ("0.125", "KWD", 125_000), ("7.5", "USD", 7_500_000)],
)
def test_face_values(text: object, currency: str, micros: int) -> None:
    assert parse_face_value(text, currency) == micros


@pytest.mark.parametrize(
    ("text", "currency", "code"),
    [("10.001", "EUR", "money.precision"), ("10.5", "JPY", "money.precision"), ("0", "EUR", "money.not-positive"),
     ("-5.00", "EUR", "money.not-positive"), ("1e3", "EUR", "money.syntax"), ("ten", "EUR", "money.syntax"),
     (10.0, "EUR", "money.syntax"), ("10.00", "XYZ", "currency.unknown"), ("10.00", "eur", "currency.unknown"),
     ("2000000000", "EUR", "money.range")],
)
def test_bad_face_values(text: object, currency: str, code: str) -> None:
    with pytest.raises(FaceValueError) as err:
        parse_face_value(text, currency)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("micros", "currency", "text"),
    [(10_500_000, "EUR", "10.50"), (1_000_000_000, "JPY", "1000"), (5_000_000, "KWD", "5.000"), (1, "EUR", "0.000001")],
)
def test_format_face_value_is_exact(micros: int, currency: str, text: str) -> None:
    assert format_face_value(micros, currency) == text


def test_serial_format() -> None:
    fmt = SerialFormat("MN", 10)
    assert fmt.format(42) == "MN0000000042"
    assert fmt.parse("MN0000000042") == 42
    assert fmt.parse("AL0000000042") is None and fmt.parse("MN42") is None
    assert fmt.max_serial == 9_999_999_999
