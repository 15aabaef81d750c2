"""The batch mapper's whole-column converters give exactly the per-value converters' results, or decline."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mediation.conversions import CompileContext, Timestamp
from engine.mediation.numbering_plan import NumberingPlan
from engine.mediation.problems import ConversionError
from engine.mediation.tenants import DEFAULT_DIRECTORY, TenantDirectory, range_prefixes

PLAN = NumberingPlan("44", ("00", "011"), "0", "international", frozenset({"999", "112"}), 5, "keep")
digits = st.text(alphabet="0123456789", min_size=0, max_size=17)
numbers = st.one_of(digits, st.sampled_from(["07700900123", "0033612345678", "+447700900123", "2001", "999", "0770 0900", "²3", "0"]))


def _each(convert, values):  # type: ignore[no-untyped-def]
    try:
        return [convert(v) for v in values]
    except ConversionError:
        return None


@settings(max_examples=300, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=20))
def test_number_column_equals_per_value(values: list[str]) -> None:
    column = PLAN.compile().column(values)  # type: ignore[attr-defined]
    if column is not None:   # declining is always allowed; a result must be the per-value one
        assert column == _each(PLAN.compile(), values)


def test_number_column_takes_plain_numbers_and_declines_extensions() -> None:
    normalise = PLAN.compile()
    assert normalise.column(["07700900123", "0033612345678", "011447700900123", "447700900123"]) == [  # type: ignore[attr-defined]
        "447700900123", "33612345678", "447700900123", "447700900123"]
    assert normalise.column(["07700900123", "2001"]) is None  # type: ignore[attr-defined]
    assert normalise.column(["0770\n0900123"]) is None  # type: ignore[attr-defined]


stamps = st.one_of(
    st.builds(lambda d, h, m, s: f"2026-03-{d:02d} {h:02d}:{m:02d}:{s:02d}", st.integers(1, 31), st.integers(0, 24), st.integers(0, 60), st.integers(0, 61)),
    st.sampled_from(["2026-02-30 10:00:00", "2026-03-29 01:30:00", "2026-10-25 01:30:00", "", "2026-03-01T10:00:00", "2026-03-01 10:00"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(stamps, min_size=1, max_size=20), st.sampled_from(["UTC", "Europe/London", "Asia/Kolkata"]))
def test_timestamp_column_equals_per_value(values: list[str], zone: str) -> None:
    convert = Timestamp("%Y-%m-%d %H:%M:%S", zone).compile(CompileContext(PLAN))
    for v in values:   # teach it the hours (the column only uses hours the converter validated)
        try:
            convert(v)
        except ConversionError:
            pass
    column = convert.column(values)  # type: ignore[attr-defined]
    if column is not None:
        assert column == _each(convert, values)


def test_tenant_column_equals_per_value() -> None:
    directory = TenantDirectory("mno", {}, {**{p: "mvno-alpha" for p in range_prefixes("447700900000", "447700900499")},
                                             "4477009005": "mvno-beta", "44770090": "mvno-gamma"})
    identify = directory.compile()
    values = ["447700900123", "447700900501", "447700900999", "4477009", "", "33612345678", "447700900499", "4477009005"]
    assert identify.column(values) == [identify("", v) for v in values]  # type: ignore[attr-defined]
    assert DEFAULT_DIRECTORY.compile().column(["1", ""]) == ["", ""]  # type: ignore[attr-defined]


# The C column functions (engine/mediation/_csvblock.c) against the Python column functions they stand in for:
# wherever the C one answers its answer is the Python one, and it answers the plain columns (else it changes nothing).
import pytest  # noqa: E402

from engine.mediation import numbering_plan  # noqa: E402
from engine.mediation.conversions import timestamp as timestamp_module  # noqa: E402

needs_c = pytest.mark.skipif(timestamp_module._c_column is None, reason="the C extension is not built")


def _c_and_python(module, call):  # type: ignore[no-untyped-def]
    """(what the C function answered, or None; the column function's answer without C)."""
    real, answers = module._c_column, []

    def spy(*args):  # type: ignore[no-untyped-def]
        answers.append(real(*args))
        return answers[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(module, "_c_column", spy)
        call()
        mp.setattr(module, "_c_column", None)
        python = call()
    assert len(answers) == 1
    return answers[0], python


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.lists(numbers, min_size=1, max_size=20), st.sampled_from([PLAN, NumberingPlan("33", ("00",), "0", "international", frozenset(), 4, "keep")]))
def test_c_number_column_equals_python(values: list[str], plan: NumberingPlan) -> None:
    c_answer, python = _c_and_python(numbering_plan, lambda: plan.compile().column(values))  # type: ignore[attr-defined]
    if c_answer is not None:
        assert c_answer == python


@needs_c
@settings(max_examples=400, deadline=None)
@given(st.lists(stamps, min_size=1, max_size=20), st.sampled_from(["UTC", "Europe/London", "Asia/Kolkata"]))
def test_c_timestamp_column_equals_python(values: list[str], zone: str) -> None:
    convert = Timestamp("%Y-%m-%d %H:%M:%S", zone).compile(CompileContext(PLAN))
    for v in values:
        try:
            convert(v)
        except ConversionError:
            pass
    c_answer, python = _c_and_python(timestamp_module, lambda: convert.column(values))  # type: ignore[attr-defined]
    if c_answer is not None:
        assert c_answer == python


@needs_c
def test_c_columns_answer_plain_columns() -> None:
    plain = ["07700900123", "0033612345678", "011447700900123", "447700900123"] * 50
    c_answer, python = _c_and_python(numbering_plan, lambda: PLAN.compile().column(plain))  # type: ignore[attr-defined]
    assert c_answer is not None and c_answer == python
    assert c_answer[:4] == ["447700900123", "33612345678", "447700900123", "447700900123"]
    assert numbering_plan._c_column is not None
    assert numbering_plan._c_column(["07700900123", "0770a900123"], 6, ("00",), "0", "44") is None
    convert = Timestamp("%Y-%m-%d %H:%M:%S", "Europe/London").compile(CompileContext(PLAN))
    stamps_in = ["2026-07-01 10:00:05", "2026-07-01 10:59:59", "2026-07-01 11:00:00"]
    for v in stamps_in:
        convert(v)
    c_answer, python = _c_and_python(timestamp_module, lambda: convert.column(stamps_in))  # type: ignore[attr-defined]
    assert c_answer == python == ["2026-07-01T09:00:05Z", "2026-07-01T09:59:59Z", "2026-07-01T10:00:00Z"]
    assert timestamp_module._c_column is not None
    assert timestamp_module._c_column(["2026-07-01 10:00:05"], {}) is None   # an hour not learnt yet: declined
