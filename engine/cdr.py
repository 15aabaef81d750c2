"""The normalised CDR: what mediation produces and rating consumes.

One record per chargeable event, whatever switch or TAP file it came from.
Its file form ("Rulebill normalised CDR", ``*.cdr.csv``) is UTF-8 CSV with the
header line :data:`COLUMNS`, timestamps in ISO 8601 UTC (``...Z``), volumes in
bytes, durations in whole seconds, charges in integer micro-units and the
attributes in the one text form of :func:`encode_attributes`.

Every path that turns attributes into text or back (CDR files, mediation, TAP3,
the store, gRPC) goes through :func:`encode_attributes` / :func:`decode_attributes`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from enum import Enum
from typing import IO, Iterable, Iterator, Mapping


class Service(str, Enum):
    VOICE = "voice"
    SMS = "sms"
    MMS = "mms"
    DATA = "data"
    SUPPLEMENTARY = "supplementary"


class Direction(str, Enum):
    ORIGINATING = "originating"   # the subscriber made it (MO)
    TERMINATING = "terminating"   # the subscriber received it (MT)


@dataclass(frozen=True, slots=True)
class MediatedCdr:
    """A normalised CDR.  ``cdr_id`` is its stable identity (see :func:`cdr_identity`)."""

    cdr_id: str
    source: str                      # where it came from: mapping name + switch, or TAP sender
    origin_id: str                   # the switch's own id for the record (uniqueid, TAP record number ...)
    service: Service
    direction: Direction
    start_time: datetime             # aware, UTC
    a_number: str = ""               # E.164 without '+', the served subscriber for MO
    b_number: str = ""               # E.164 or short code: the other party / APN for data
    imsi: str = ""
    duration_seconds: int = 0        # billable seconds (voice)
    volume_up_bytes: int = 0         # data
    volume_down_bytes: int = 0
    event_count: int = 1             # SMS / MMS / supplementary events
    visited_network: str = ""        # TADIG/PLMN code when roaming; empty at home
    supplementary_code: str = ""
    charge_micros: int | None = None  # charge already on the record (TAP), in micro-units
    charge_currency: str = ""
    tenant: str = ""                 # filled by enrichment (MVNO / MNO id)
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def volume_bytes(self) -> int:
        return self.volume_up_bytes + self.volume_down_bytes

    @property
    def roaming(self) -> bool:
        return bool(self.visited_network)

    def with_changes(self, **changes: object) -> "MediatedCdr":
        return replace(self, **changes)  # type: ignore[arg-type]


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(MediatedCdr))

# What a CDR can hold at all, whatever path it came by: the store keeps integers in BIGINT
# columns and these text fields in columns of these sizes.  A value beyond them is a
# record-level problem of that CDR (CdrValueError naming the field), never a failed batch.
MAX_INTEGER = 2**63 - 1
INTEGER_FIELDS = ("duration_seconds", "volume_up_bytes", "volume_down_bytes", "event_count", "charge_micros")
TEXT_LIMITS: dict[str, int] = {
    "cdr_id": 32, "source": 64, "origin_id": 255, "a_number": 64, "b_number": 255, "imsi": 15,
    "visited_network": 16, "supplementary_code": 16, "charge_currency": 3, "tenant": 40,
}


# ---------------------------------------------------------------- attributes
#
# The text form is "k=v;k=v", sorted by key.  '%', ';' and '=' inside a key or a value are
# written %25, %3B and %3D, so a value such as "a;b=c" stays one attribute and can never
# forge another.  Only those three escapes are read back; any other text is literal.

_ESCAPES = {"%": "%25", ";": "%3B", "=": "%3D"}
_UNESCAPE = re.compile("%(25|3B|3D)")
_UNESCAPED = {"25": "%", "3B": ";", "3D": "="}


def escape_attribute(text: str) -> str:
    """One key or value in the attributes text form."""
    if "%" in text or ";" in text or "=" in text:
        return text.replace("%", "%25").replace(";", "%3B").replace("=", "%3D")
    return text


def unescape_attribute(text: str) -> str:
    return _UNESCAPE.sub(lambda m: _UNESCAPED[m.group(1)], text) if "%" in text else text


def encode_attributes(attributes: Mapping[str, str]) -> str:
    """The attributes text form (empty values are kept: ``k=``)."""
    return ";".join(f"{escape_attribute(k)}={escape_attribute(v)}" for k, v in sorted(attributes.items()))


# the attribute that marks a call event a roaming partner returned in a RAP file (engine.tap3.convert writes it)
RAP_RETURN_ATTRIBUTE = "rap_return"


def returned_by_rap(attributes_text: str) -> bool:
    """Whether a stored CDR (its attributes text) is a RAP return: kept on record, never charged or compared, since
    the TAP event it disputes is the one rated."""
    return bool(attributes_text) and RAP_RETURN_ATTRIBUTE in attributes_text and \
        RAP_RETURN_ATTRIBUTE in decode_attributes(attributes_text)


def decode_attributes(text: str) -> dict[str, str]:
    """Read the attributes text form back; raises :class:`CdrValueError` on a part without '='."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(";"):
        key, sep, value = part.partition("=")
        if not sep:
            raise CdrValueError("attributes", f"attribute {part[:40]!r} has no '='")
        out[unescape_attribute(key)] = unescape_attribute(value)
    return out


def identity_prefix(source: str, namespace: str = "") -> str:
    """What :func:`cdr_identity` hashes before the origin id."""
    return f"{namespace}\x1e{source}\x1f" if namespace else f"{source}\x1f"


def cdr_identity(source: str, origin_id: str, namespace: str = "") -> str:
    """Stable identity: the same CDR from the same source always hashes the same.

    Rerating and re-ingesting rely on it: a CDR with a known id replaces, never adds.
    ``namespace`` is the tenant that submitted the CDR to the store: each tenant's
    CDRs are their own, so one tenant's file can neither reveal nor pre-empt another's.
    Offline mediation uses none.
    """
    return hashlib.sha256((identity_prefix(source, namespace) + origin_id).encode("utf-8")).hexdigest()[:32]


class CdrValueError(ValueError):
    """A CDR with impossible values; ``field`` names the culprit."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


def format_time(ts: datetime) -> str:
    return ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime:
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    ts = datetime.fromisoformat(text)
    if ts.tzinfo is None:
        raise CdrValueError("start_time", f"timestamp {text!r} has no time zone")
    return ts.astimezone(timezone.utc)


def _int(row: dict[str, str], name: str, default: int = 0) -> int:
    text = row.get(name, "")
    if text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise CdrValueError(name, f"not an integer: {text!r}") from None


def validate(cdr: MediatedCdr) -> None:
    """Reject impossible values; raises :class:`CdrValueError`."""
    if cdr.duration_seconds < 0:
        raise CdrValueError("duration_seconds", f"negative duration {cdr.duration_seconds}")
    if cdr.volume_up_bytes < 0 or cdr.volume_down_bytes < 0:
        raise CdrValueError("volume_bytes", "negative data volume")
    if cdr.event_count < 0:
        raise CdrValueError("event_count", "negative event count")
    if cdr.start_time.tzinfo is None:
        raise CdrValueError("start_time", "start time has no time zone")
    for name in INTEGER_FIELDS:
        value = getattr(cdr, name)
        if value is not None and not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise CdrValueError(name, f"{str(value)[:24]}... is out of range (at most {MAX_INTEGER})")
    for name, limit in TEXT_LIMITS.items():
        if len(getattr(cdr, name)) > limit:
            raise CdrValueError(name, f"{len(getattr(cdr, name))} characters, at most {limit}")


def from_row(row: dict[str, str]) -> MediatedCdr:
    """Build a CDR from one CSV row of the normalised format; raises :class:`CdrValueError`."""
    try:
        service = Service(row.get("service", ""))
    except ValueError:
        raise CdrValueError("service", f"unknown service {row.get('service')!r}") from None
    try:
        direction = Direction(row.get("direction") or Direction.ORIGINATING.value)
    except ValueError:
        raise CdrValueError("direction", f"unknown direction {row.get('direction')!r}") from None
    try:
        start = parse_time(row.get("start_time", ""))
    except ValueError as exc:
        if isinstance(exc, CdrValueError):
            raise
        raise CdrValueError("start_time", f"bad timestamp {row.get('start_time')!r}") from None
    source = row.get("source", "")
    origin = row.get("origin_id", "")
    charge = row.get("charge_micros", "")
    attributes = decode_attributes(row.get("attributes", ""))
    cdr = MediatedCdr(
        cdr_id=row.get("cdr_id") or cdr_identity(source, origin),
        source=source,
        origin_id=origin,
        service=service,
        direction=direction,
        start_time=start,
        a_number=row.get("a_number", ""),
        b_number=row.get("b_number", ""),
        imsi=row.get("imsi", ""),
        duration_seconds=_int(row, "duration_seconds"),
        volume_up_bytes=_int(row, "volume_up_bytes"),
        volume_down_bytes=_int(row, "volume_down_bytes"),
        event_count=_int(row, "event_count", 1),
        visited_network=row.get("visited_network", ""),
        supplementary_code=row.get("supplementary_code", ""),
        charge_micros=_int(row, "charge_micros") if charge not in ("", None) else None,
        charge_currency=row.get("charge_currency", ""),
        tenant=row.get("tenant", ""),
        attributes=attributes,
    )
    validate(cdr)
    return cdr


def to_row(cdr: MediatedCdr) -> list[str]:
    out: list[str] = []
    for name in COLUMNS:
        value = getattr(cdr, name)
        if name == "start_time":
            out.append(format_time(value))
        elif name == "attributes":
            out.append(encode_attributes(value))
        elif isinstance(value, Enum):
            out.append(value.value)
        elif value is None:
            out.append("")
        else:
            out.append(str(value))
    return out


def write_cdrs(cdrs: Iterable[MediatedCdr], stream: IO[str]) -> int:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    n = 0
    for cdr in cdrs:
        writer.writerow(to_row(cdr))
        n += 1
    return n


@dataclass(frozen=True)
class CdrReject:
    line: int
    reason: str
    field: str
    raw: str


def read_cdrs(stream: IO[str]) -> Iterator[MediatedCdr | CdrReject]:
    """Read a normalised CDR file; bad rows come back as :class:`CdrReject`, never dropped."""
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        return
    missing = [c for c in ("cdr_id", "source", "origin_id", "service", "start_time") if c not in header]
    if missing:
        raise CdrValueError(missing[0], f"header lacks column(s): {', '.join(missing)}")
    for row in reader:
        line = reader.line_num
        if len(row) != len(header):
            yield CdrReject(line, f"expected {len(header)} columns, got {len(row)}", "row", _raw(row))
            continue
        try:
            yield from_row(dict(zip(header, row)))
        except CdrValueError as exc:
            yield CdrReject(line, str(exc), exc.field, _raw(row))


def _raw(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(row)
    return buf.getvalue()
