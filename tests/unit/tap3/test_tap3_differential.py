"""Differential check: asn1tools, driven by bench/tap3_td57.asn, must read the same
values as Rulebill's decoder from the same bytes (conformance files and a synthetic batch).

asn1tools returns raw octets; the comparison applies TD.57's rules (BCD high nibble first).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from engine.tap3 import decode_file
from tests import tap3_writer as W

asn1tools = pytest.importorskip("asn1tools")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "bench" / "tap3_td57.asn"
CORPUS = Path(os.environ.get("RULEBILL_CONFORMANCE_DIR", str(ROOT / ".." / "shared" / "conformance"))) / "tap3"


@pytest.fixture(scope="module")
def spec() -> Any:
    return asn1tools.compile_files(str(SPEC), "ber")


def bcd(raw: bytes) -> str:
    return raw.hex().rstrip("f")


def their_events(value: Any) -> list[tuple[str, str, str | None, int]]:
    out = []
    for kind, ev in value[1].get("callEventDetails", []):
        if kind in ("mobileOriginatedCall", "mobileTerminatedCall"):
            basic = ev["basicCallInformation"]
            imsi = bcd(basic["chargeableSubscriber"][1]["imsi"])
            start = basic["callEventStartTimeStamp"]["localTimeStamp"].decode()
            charges = [d["charge"] for u in ev["basicServiceUsedList"] for ci in u["chargeInformationList"]
                       for d in ci["chargeDetailList"] if d["chargeType"] == b"00"]
        elif kind == "gprsCall":
            basic = ev["gprsBasicCallInformation"]
            imsi = bcd(basic["gprsChargeableSubscriber"]["chargeableSubscriber"][1]["imsi"])
            start = basic["callEventStartTimeStamp"]["localTimeStamp"].decode()
            charges = [d["charge"] for ci in ev["gprsServiceUsed"]["chargeInformationList"]
                       for d in ci["chargeDetailList"] if d["chargeType"] == b"00"]
        elif kind == "supplServiceEvent":
            imsi = bcd(ev["chargeableSubscriber"][1]["imsi"])
            start = ev["supplServiceUsed"]["chargingTimeStamp"]["localTimeStamp"].decode()
            charges = []
        else:
            continue
        out.append((kind, imsi, start, sum(charges)))
    return out


def our_events(data: bytes) -> list[tuple[str, str, str | None, int]]:
    tb = decode_file(data).transfer_batch
    assert tb is not None
    return [(e.kind.value, e.imsi, e.start.local if e.start else None, sum(c.total_charge for c in e.all_charges()))
            for e in tb.events]


def compare(spec: Any, data: bytes) -> None:
    value, used = spec.decode_with_length("DataInterChange", data)
    assert used == len(data)
    assert our_events(data) == their_events(value)
    tb = decode_file(data).transfer_batch
    assert tb is not None and tb.audit is not None and tb.batch_control is not None
    audit = value[1]["auditControlInfo"]
    assert tb.audit.total_charge == audit.get("totalCharge")
    assert tb.audit.call_event_details_count == audit.get("callEventDetailsCount")
    assert tb.batch_control.sender == value[1]["batchControlInfo"]["sender"].decode()


def test_synthetic_batch(spec: Any) -> None:
    events = [W.mo_call("262011234567890", "4917012", "4930", "20240105101500", 60, 990),
              W.mt_call("262019999999999", "4917012", "4930", "20240105101600", 60, 10),
              W.gprs_call("26201123456789", "4917012", "apn", "20240105101700", 6, 10, 20, 5),
              W.suppl_service_event("262011234567890", "20240105101800")]
    compare(spec, W.transfer_batch(events))
    compare(spec, W.transfer_batch(events, indefinite=True))


@pytest.mark.parametrize("name", ["tap_3_12_valid.ber", "tap_3_12_valid_att.ber", "tap_3_12_valid_most_indef.ber",
                                  "tap_3_12_valid_some_cdr_indefinite.ber", "tap_3_12_valid_removed.ber",
                                  "tap_3_12_timestamps.ber", "tap_3_12_negative_volume.ber"])
def test_conformance_files(spec: Any, name: str) -> None:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"{path} missing")
    compare(spec, path.read_bytes())


def test_both_refuse_trailing_bytes(spec: Any) -> None:
    path = CORPUS / "tap_3_12_trailing_eoc_invalid.ber"
    if not path.exists():
        pytest.skip(f"{path} missing")
    data = path.read_bytes()
    _value, used = spec.decode_with_length("DataInterChange", data)
    assert used == len(data) - 2   # asn1tools only tells; Rulebill refuses (see the conformance tests)
