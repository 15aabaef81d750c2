"""Write the sample input files of ``samples/``: one small switch CDR file per shipped layout, a TAP 3.12 file whose
audit totals match its call events, and one that roaming clearing refuses.

The calls are the sample operator's subscribers' (``plans/billing/samples.yaml``, made by ``rulebill bootstrap``):
33699100001-33699100004 of the MNO and 33699100005 of Alpha Mobile, in the second half of November 2026.  Run from
the repository root after changing a layout or the sample subscribers, and commit the result:

    .venv/bin/python samples/make_samples.py

``tests/unit/test_samples.py`` fails when the committed files differ from what this script writes, and mediates
each of them.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests import tap3_writer as W  # noqa: E402

# (subscriber, dialled number as an international E.164 number, answer time in UTC, billed seconds)
CALLS = [
    ("33699100001", "33142868200", datetime(2026, 11, 20, 9, 0, 7, tzinfo=timezone.utc), 125),    # a Paris landline
    ("33699100002", "442079460000", datetime(2026, 11, 20, 10, 15, 3, tzinfo=timezone.utc), 60),  # London
    ("33699100005", "33612345678", datetime(2026, 11, 21, 18, 30, 0, tzinfo=timezone.utc), 42),   # Alpha Mobile's subscriber
]
# what each layout's file is called, which source it comes from (rules/mediation/sources.yaml) and how it is written
LAYOUTS = {
    "asterisk": ("Master.csv", "london-pbx"),
    "asterisk_custom": ("Master.csv", "london-pbx"),
    "freeswitch": ("Master.csv", "madrid-freeswitch"),
    "freeswitch_builtin": ("Master.csv", "madrid-freeswitch"),
    "cisco_cucm": ("cdr_StandAloneCluster_01_202611201000_1", "chicago-cucm"),
    "kamailio_acc": ("kamailio-cdr.log", "edge-kamailio"),
    "msc_generic": ("msc.csv", ""),
}


def _local(when: datetime, zone: str) -> str:
    return when.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")


def _q(*values: object) -> str:
    return ",".join(f'"{v}"' if isinstance(v, str) else str(v) for v in values)


def asterisk() -> str:
    rows = []
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        start, end = answer - timedelta(seconds=5), answer + timedelta(seconds=billsec)
        uid = f"{int(start.timestamp())}.{i}"
        rows.append(_q("acct1", f"00{a}", f"00{b}", "from-internal", f'""Sample {i}"" <00{a}>', f"PJSIP/trunk-in-{i:08d}",
                       f"PJSIP/trunk-out-{i:08d}", "Dial", f"PJSIP/00{b}@trunk,60", _local(start, "Europe/London"),
                       _local(answer, "Europe/London"), _local(end, "Europe/London"), billsec + 5, billsec, "ANSWERED",
                       "BILLING", uid, ""))
    return "\n".join(rows) + "\n"


def asterisk_custom() -> str:
    rows = []
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        start, end = answer - timedelta(seconds=5), answer + timedelta(seconds=billsec)
        rows.append(_q(f'""Sample {i}"" <00{a}>', f"00{a}", f"00{b}", "from-internal", f"PJSIP/trunk-in-{i:08d}",
                       f"PJSIP/trunk-out-{i:08d}", "Dial", f"PJSIP/00{b}@trunk", _local(start, "Europe/London"),
                       _local(answer, "Europe/London"), _local(end, "Europe/London"), f"{billsec + 5}.000000",
                       f"{billsec}.000000", "ANSWERED", "DOCUMENTATION", "acct1", f"{int(start.timestamp())}.{i}", "", i))
    return "\n".join(rows) + "\n"


def _freeswitch(builtin: bool) -> str:
    rows = []
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        start, end = answer - timedelta(seconds=4), answer + timedelta(seconds=billsec)
        values = [f"Sample {i}", f"00{a}", f"00{b}", "public", _local(start, "Europe/Madrid"), _local(answer, "Europe/Madrid"),
                  _local(end, "Europe/Madrid"), str(billsec + 4), str(billsec), "NORMAL_CLEARING",
                  f"a{i:07d}-0000-4000-8000-000000000000", f"b{i:07d}-0000-4000-8000-000000000000", "acct1"]
        line = _q(*values) if not builtin else _q(*values[:-1]) + f', "{values[-1]}"'  # the compiled-in template's space
        rows.append(line if builtin else line + ',"PCMA","PCMA"')
    return "\n".join(rows) + "\n"


def cisco_cucm() -> str:
    names = ["cdrRecordType", "globalCallID_callManagerId", "globalCallID_callId", "origLegCallIdentifier", "dateTimeOrigination",
             "origNodeId", "origSpan", "origIpAddr", "callingPartyNumber", "originalCalledPartyNumber", "finalCalledPartyNumber",
             "destLegIdentifier", "dateTimeConnect", "dateTimeDisconnect", "lastRedirectDn", "pkid", "duration", "origDeviceName",
             "destDeviceName"]
    kinds = ["INTEGER"] * 8 + ["VARCHAR(50)"] * 3 + ["INTEGER"] * 3 + ["VARCHAR(50)", "UNIQUEIDENTIFIER", "INTEGER", "VARCHAR(129)",
                                                                         "VARCHAR(129)"]
    rows = [",".join(f'"{n}"' for n in names), ",".join(kinds)]
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        connect = int(answer.timestamp())
        rows.append(f'1,1,{2000 + i},{16777216 + 2 * i},{connect - 5},1,0,-1062731519,"011{a}","011{b}","011{b}",'
                    f'{16777217 + 2 * i},{connect},{connect + billsec},"","5a3c0e2e-1c4d-4e6f-8a9b-0c1d2e3f4a{i:02d}",'
                    f'{billsec},"SEP00112233445{i}","CHI-GW1"')
    return "\r\n".join(rows) + "\r\n"


def kamailio_acc() -> str:
    rows = []
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        t = answer.timestamp()
        rows.append(f"{answer:%b %d %H:%M:%S} edge1 /usr/sbin/kamailio[22296]: NOTICE: acc [acc_cdr.c:395]: log_write_cdr(): "
                    f"start_time={t:.3f}; end_time={t + billsec - 0.5:.3f}; duration={billsec - 0.5:.3f}; caller={a}; "
                    f"callee={b}; callid={i}-sample@192.0.2.10")
    return "\n".join(rows) + "\n"


def msc_generic() -> str:
    header = ("record_id;record_type;served_imsi;served_msisdn;other_party;start_time;duration_ms;volume_up;volume_down;"
              "visited_plmn;call_reference;partial_seq;partial_last;termination;ss_code")
    rows = [header]
    for i, (a, b, answer, billsec) in enumerate(CALLS, 1):
        imsi = "2081599100000" + a[-2:]  # the sample subscribers' IMSIs: 208159910000001 ...
        rows.append(f"S{i};MOC;{imsi};{a};{b};{answer:%Y%m%d%H%M%S};{billsec * 1000};0;0;;C{i};;;normalRelease;")
    rows.append(f"S4;SMSMO;208159910000001;33699100001;33699100005;{CALLS[0][2] + timedelta(hours=2):%Y%m%d%H%M%S};0;0;0;;;;;;")
    rows.append(f"S5;GPRS;208159910000002;33699100002;internet;{CALLS[1][2] + timedelta(hours=1):%Y%m%d%H%M%S};600000;"
                "5242880;20971520;;;;;;")
    return "\n".join(rows) + "\n"


def tap3_events() -> list[W.Event]:
    """Calls of the sample subscribers roaming in Germany (local time +0100), charged by the visited network."""
    return [
        W.mo_call("208159910000001", "33699100001", "4930123456", "20261123100000", 125, 2500),
        W.mt_call("208159910000005", "33699100005", "4930999999", "20261123101500", 42, 900),
        W.gprs_call("208159910000002", "33699100002", "internet", "20261123103000", 600, 1048576, 2097152, 1200),
    ]


def files() -> dict[str, bytes]:
    """Every sample file by its path under samples/."""
    writers = {"asterisk": asterisk, "asterisk_custom": asterisk_custom, "freeswitch": lambda: _freeswitch(False),
               "freeswitch_builtin": lambda: _freeswitch(True), "cisco_cucm": cisco_cucm, "kamailio_acc": kamailio_acc,
               "msc_generic": msc_generic}
    out = {f"{layout}/{LAYOUTS[layout][0]}": writers[layout]().encode("utf-8") for layout in LAYOUTS}
    events = tap3_events()
    out["tap3/roaming.ber"] = W.transfer_batch(events, sender="DEUXX", recipient="FRAYY", sequence="00017")
    # the same batch with an audit total 1.000 SDR (the TAP currency) short of its events' charges: clearing refuses the whole file
    out["tap3/refused.ber"] = W.transfer_batch(events, sender="DEUXX", recipient="FRAYY", sequence="00018",
                                               total_charge=sum(e.charge for e in events) - 1000)
    return out


if __name__ == "__main__":
    for name, data in files().items():
        path = HERE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote samples/{name} ({len(data)} bytes)")
