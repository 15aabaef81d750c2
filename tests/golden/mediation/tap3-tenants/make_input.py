"""Writes roaming.ber, the input of this golden case (run from the repository root:
``python -m tests.golden.mediation.tap3-tenants.make_input`` does not work with the dash, so
``python tests/golden/mediation/tap3-tenants/make_input.py``).

A TransferBatch from a German visited network (DEUXX) to the home network (GBRYY) with
call events of the home network's subscribers roaming there: one of each tenant, and one
whose IMSI is not the home network's at all (a misrouted record).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))

from tests import tap3_writer as W  # noqa: E402

events = [
    W.mo_call("234990100000001", "447700900001", "4930123456", "20261201100000", 125, 2500),          # mvno-alpha (IMSI range)
    W.mt_call("234990200000002", "447700900502", "4930999999", "20261201101500", 42, 900),            # mvno-beta (IMSI range)
    W.gprs_call("234990000000003", "447911000003", "internet", "20261201103000", 600, 1048576, 2097152, 1200),  # mno (home IMSI)
    W.mo_call("262011234567890", "491701234567", "4930123456", "20261201104500", 60, 1500),           # not the home network's
    W.suppl_service_event("234990100000001", "20261201110000"),                                       # mvno-alpha, no charge
]
Path(__file__).with_name("roaming.ber").write_bytes(W.transfer_batch(events, sequence="00042"))
