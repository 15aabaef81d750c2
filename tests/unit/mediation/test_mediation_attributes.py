"""CDR attributes have one text form, owned by engine.cdr: every value comes back as it went in,
and no value can split into two attributes or forge one (issue 9, item 1)."""

from __future__ import annotations

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.cdr import CdrValueError, decode_attributes, encode_attributes, read_cdrs, write_cdrs
from engine.mediation import row_to_cdr

from .conftest import layout, mediate

_TEXT = st.text(st.characters(blacklist_categories=["Cs"]), max_size=20)


@given(st.dictionaries(_TEXT, _TEXT, max_size=6))
def test_any_attributes_round_trip(attributes: dict[str, str]) -> None:
    assert decode_attributes(encode_attributes(attributes)) == attributes


def test_a_value_with_separators_stays_one_attribute_and_cannot_forge_another() -> None:
    text = encode_attributes({"accountcode": "a;b=c", "note": "50%3B"})
    assert text == "accountcode=a%3Bb%3Dc;note=50%253B"
    assert decode_attributes(text) == {"accountcode": "a;b=c", "note": "50%3B"}
    assert decode_attributes(encode_attributes({"k": "x;plan=TP_FREE"})) == {"k": "x;plan=TP_FREE"}   # no "plan" attribute


def test_a_part_without_equals_is_an_error_not_silently_dropped() -> None:
    with pytest.raises(CdrValueError) as info:
        decode_attributes("a=1;garbage")
    assert info.value.field == "attributes"


def test_the_cdr_file_form_round_trips_attributes() -> None:
    from tests.unit.rating.helpers import cdr

    one = cdr(attributes={"accountcode": "a;b=c", "x": "=;%"})
    buf = io.StringIO()
    write_cdrs([one], buf)
    (back,) = read_cdrs(io.StringIO(buf.getvalue()))
    assert back.attributes == one.attributes   # type: ignore[union-attr]


def test_mediated_attributes_keep_separators_on_both_mapping_paths() -> None:
    row = ('"a;b=c","07700900123","07700900555","ctx","clid","SIP/a","SIP/b","Dial","x",'
           '"2026-11-27 10:00:00","2026-11-27 10:00:05","2026-11-27 10:01:05",65,60,"ANSWERED","BILLING","u{n}",""\n')
    data = "".join(row.format(n=n) for n in range(50)).encode()
    for block_size in (1 << 20, 1024):
        summary, store = mediate(layout("asterisk"), data, block_size=block_size)
        assert summary.normalised == 50
        assert {row_to_cdr(r).attributes["accountcode"] for r in store.cdrs.values()} == {"a;b=c"}
