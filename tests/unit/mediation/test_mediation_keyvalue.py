"""key=value records (read.format: key_value): the reader, and the Kamailio acc layout on awkward lines."""

from __future__ import annotations

import csv

import pytest

from engine.mediation.keyvalue import KeyValueReader

from .conftest import mediate


def _rows(*lines: str, marker: str = "") -> list[list[str] | str]:
    reader = KeyValueReader([line + "\n" for line in lines], ("a", "b", "c"), ";", "=", marker)
    out: list[list[str] | str] = []
    while True:
        try:
            out.append(next(reader))
        except StopIteration:
            return out
        except csv.Error as exc:
            out.append(f"error: {exc}")


def test_pairs_become_columns_unknown_keys_are_ignored_missing_ones_empty() -> None:
    assert _rows("a=1; b=2; x=9", "c=3;a=4", "") == [["1", "2", ""], ["4", "", "3"], []]


def test_the_marker_skips_a_prefix_and_lines_without_it_are_not_records() -> None:
    assert _rows("LOG: a=1; b=2", "LOG: nothing here", marker="a=") == [["1", "2", ""], "error: no 'a=' on this line: not a record"]


@pytest.mark.parametrize("line, message", [("a=1; a=2", "appears twice"), ("a=1; junk", "is not a key=value pair")])
def test_a_record_that_cannot_be_read_is_an_error_of_that_record_only(line: str, message: str) -> None:
    got = _rows(line, "a=5")
    assert message in str(got[0]) and got[1] == ["5", "", ""]


def test_kamailio_lines_with_broken_records_reject_only_those() -> None:
    line = " 1(7) NOTICE: acc [acc_cdr.c:395]: log_write_cdr(): start_time=1796533796.571; end_time=1796533798.579; " \
           "duration={d}; caller=447700900123; callee=33612345678; callid={c}\n"
    data = (line.format(d="2.008", c="k1") + line.format(d="2.008", c="k2").replace("caller=", "caller=x; caller=")
            + line.format(d="-1", c="k3") + line.format(d="1.5", c="k4")).encode()
    summary, store = mediate("kamailio_acc", data)
    assert (summary.records_in, summary.normalised) == (4, 2)
    assert summary.rejected == {"record.malformed": 1, "value.negative": 1}
    assert sorted(r[9] for r in store.cdrs.values()) == [2, 3]   # 1.5 and 2.008 seconds, rounded up
