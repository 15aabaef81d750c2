"""Proto <-> domain conversions shared by servicers: timestamps, money, enums, CDRs, service names."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import Enum
from typing import Any, Generic, Literal, TypeVar, overload

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity, identity_prefix
from engine.errors import ErrorList, FieldViolation, InvalidArgument
from engine.rating.evaluator import row_of
from engine.rating.limits import EARLIEST as CDR_EARLIEST, LATEST as CDR_LATEST
from engine.rating.limits import DEFAULT_LIMITS, EARLIEST_EPOCH, LATEST_EPOCH, CdrLimits

E = TypeVar("E", bound=Enum)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


# the times a request may name: a CDR, an expiry, an activation, a period.  Outside them a timestamp is a
# mistake (or a probe): year 1 or 9999 would overflow the date arithmetic that follows.
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)
_EARLIEST_S, _LATEST_S = int(EARLIEST.timestamp()), int(LATEST.timestamp())
_OUT_OF_RANGE = f"must be from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)"


def ts_problem(value: Timestamp) -> str | None:
    """What is wrong with a timestamp a request carries, or None."""
    if not 0 <= value.nanos <= 999_999_999:
        return f"nanos must be 0..999999999, not {value.nanos}"
    if not _EARLIEST_S <= value.seconds < _LATEST_S:
        return _OUT_OF_RANGE
    return None


def day_problem(value: date) -> str | None:
    """What is wrong with a calendar day a request names (a cycle date, a charge date), or None: the days of
    :func:`ts_problem`'s range, so a bill period or a month added to it stays within the calendar."""
    return None if EARLIEST.date() <= value < LATEST.date() else _OUT_OF_RANGE


def from_ts(value: Timestamp, field: str) -> datetime:
    """A request's timestamp as an aware UTC datetime; out of range is an INVALID_ARGUMENT naming ``field``."""
    problem = ts_problem(value)
    if problem is not None:
        raise InvalidArgument.field(field, problem)
    return value.ToDatetime(tzinfo=timezone.utc)


def optional_ts(message: Any, field: str) -> datetime | None:
    """``message.<field>`` as :func:`from_ts` gives it, None when the field is not set."""
    return from_ts(getattr(message, field), field) if message.HasField(field) else None


LONGEST = timedelta(days=3650)   # no span a request names (a timeout, an age) is longer


def optional_duration(message: Any, field: str) -> timedelta | None:
    """``message.<field>`` (a ``google.protobuf.Duration``) as a timedelta from 0 to :data:`LONGEST`; None when not set;
    negative, out of range or malformed is an INVALID_ARGUMENT naming ``field``."""
    if not message.HasField(field):
        return None
    value: Duration = getattr(message, field)
    if not 0 <= value.nanos <= 999_999_999 or not 0 <= value.seconds <= LONGEST.total_seconds():
        raise InvalidArgument.field(field, f"must be from 0 to {LONGEST.days} days, with nanos 0..999999999")
    return value.ToTimedelta()


class Wired:
    """A request together with the bytes it was read from, for a method whose servicer reads those bytes again (the C
    reader of RateCdrs, servers/_wire.c): the interceptor's NUL check (servers/interceptors.py) looks at the same bytes,
    so the request is never serialized again."""

    __slots__ = ("message", "data")

    def __init__(self, message: Message, data: bytes) -> None:
        self.message, self.data = message, data


def text_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """The string fields of a request (nested messages included) that hold a NUL character: no text of ours
    may (PostgreSQL cannot store it; on SQLite it would cut C strings), so a request carrying one is refused
    whole, before any use case sees it."""
    out: list[FieldViolation] = []
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            values = value if field.is_repeated else [value]
            if any("\x00" in v for v in values):
                out.append(FieldViolation(path, "must not contain NUL characters"))
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if field.message_type.GetOptions().map_entry:
                if any("\x00" in str(k) or (isinstance(v, str) and "\x00" in v) for k, v in value.items()):
                    out.append(FieldViolation(path, "must not contain NUL characters"))
            elif field.is_repeated:
                for i, item in enumerate(value):
                    out.extend(text_violations(item, f"{path}[{i}]."))
            else:
                out.extend(text_violations(value, f"{path}."))
    return out


def money(micros: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_micros=micros, currency=currency)


def service_name(proto_module: Any, service: str) -> str:
    """The full name (``billing.v1.TenantService``) a ``register`` function returns."""
    return str(proto_module.DESCRIPTOR.services_by_name[service].full_name)


class EnumMap(Generic[E]):
    """Maps a proto enum (``PREFIX_NAME`` values) to a domain enum by name.

    ``*_UNSPECIFIED`` maps to None; a number the proto does not define is an
    INVALID_ARGUMENT naming the field (proto3 enums are open: clients can send any int).
    """

    def __init__(self, proto_enum: Any, prefix: str, domain: type[E]) -> None:
        self._to_domain: dict[int, E] = {}
        # keyed by member; str enums hash and compare as their values, so a stored value finds its member too
        self._to_proto: dict[Any, int] = {}
        self.names: list[str] = []
        for name, number in proto_enum.items():
            short = name[len(prefix):]
            if short == "UNSPECIFIED":
                continue
            member = domain[short]
            self._to_domain[number] = member
            self._to_proto[member] = number
            self.names.append(short)

    @overload
    def domain(self, number: int, field: str) -> E: ...
    @overload
    def domain(self, number: int, field: str, required: Literal[True]) -> E: ...
    @overload
    def domain(self, number: int, field: str, required: bool) -> E | None: ...

    def domain(self, number: int, field: str, required: bool = True) -> E | None:
        if number == 0:
            if required:
                raise InvalidArgument.field(field, f"must be set: one of {', '.join(self.names)}")
            return None
        try:
            return self._to_domain[number]
        except KeyError:
            raise InvalidArgument.field(field, f"unknown value {number}: expected one of {', '.join(self.names)}") from None

    def lenient(self, number: int) -> E | None:
        """None for unspecified or unknown numbers: for fields the use case validates itself,
        so that the caller gets this field's violation together with all the others."""
        return self._to_domain.get(number)

    def proto(self, member: E) -> int:
        return self._to_proto[member]

    def proto_or_unspecified(self, value: str) -> int:
        """The proto number of a stored value (``"voice"``); 0 for a value the proto does not know."""
        return self._to_proto.get(value, 0)


CDR_SERVICES = EnumMap(mpb.CdrServiceKind, "CDR_SERVICE_KIND_", Service)
CDR_DIRECTIONS = EnumMap(mpb.CdrDirection, "CDR_DIRECTION_", Direction)


def cdr_service(number: int, field: str, errors: ErrorList) -> Service | None:
    service = CDR_SERVICES.lenient(number)
    if service is None:
        errors.add(field, "must be one of VOICE, SMS, MMS, DATA, SUPPLEMENTARY")
    return service


# engine field name -> the NormalisedCdr field that carries it
_WIRE_NAME = {"tenant": "tenant_id", "charge_micros": "charge.amount_micros", "charge_currency": "charge.currency"}


def cdr_from_pb(msg: mpb.NormalisedCdr, field: str, errors: ErrorList, limits: CdrLimits = DEFAULT_LIMITS) -> MediatedCdr | None:
    """A wire CDR as the engine's MediatedCdr; bad enums, a missing start time and every value beyond the declared
    limits (engine.rating.limits) are field violations: rating never starts on them."""
    service = cdr_service(msg.service, f"{field}.service", errors)
    # an unspecified direction is the usual one: the subscriber made the call
    direction = CDR_DIRECTIONS.lenient(msg.direction) if msg.direction else Direction.ORIGINATING
    if direction is None:
        errors.add(f"{field}.direction", "must be ORIGINATING or TERMINATING")
    start_problem = ts_problem(msg.start_time) if msg.HasField("start_time") else "must be set"
    if start_problem is not None:
        errors.add(f"{field}.start_time", start_problem)
    if service is None or direction is None or start_problem is not None:
        return None
    start = msg.start_time
    if not EARLIEST_EPOCH <= start.seconds < LATEST_EPOCH or not 0 <= start.nanos < 1_000_000_000:
        errors.add(f"{field}.start_time", f"must be between {CDR_EARLIEST.date()} and {CDR_LATEST.date()}")
        return None
    cdr = MediatedCdr(
        cdr_id=msg.cdr_id or cdr_identity(msg.source, msg.origin_id), source=msg.source, origin_id=msg.origin_id, service=service,
        direction=direction, start_time=from_ts(msg.start_time, f"{field}.start_time"), a_number=msg.a_number, b_number=msg.b_number, imsi=msg.imsi,
        duration_seconds=msg.duration_seconds, volume_up_bytes=msg.volume_up_bytes, volume_down_bytes=msg.volume_down_bytes,
        event_count=msg.event_count if msg.event_count or service in (Service.VOICE, Service.DATA) else 1,
        visited_network=msg.visited_network, supplementary_code=msg.supplementary_code,
        charge_micros=msg.charge.amount_micros if msg.HasField("charge") else None,
        charge_currency=msg.charge.currency if msg.HasField("charge") else "", tenant=msg.tenant_id, attributes=dict(msg.attributes),
    )
    problems = limits.wire_problems(cdr)
    for name, message in problems:
        errors.add(f"{field}.{_WIRE_NAME.get(name, name)}", message)
    return None if problems else cdr


try:   # the CDR identities of a chunk in one C call (engine/mediation/_cdrid.c), when it is built
    from engine.mediation._cdrid import cdr_ids as _cdr_ids
except ImportError:  # pragma: no cover - a build without a C compiler
    _cdr_ids = None
_SERVICE_VALUES = {number: CDR_SERVICES.lenient(number).value for number in CDR_SERVICES._to_domain}  # type: ignore[union-attr]
_DIRECTION_VALUES = {0: Direction.ORIGINATING.value, **{n: CDR_DIRECTIONS.lenient(n).value  # type: ignore[union-attr]
                                                        for n in CDR_DIRECTIONS._to_domain}}
_PER_EVENT = frozenset(n for n, s in _SERVICE_VALUES.items() if s not in (Service.VOICE.value, Service.DATA.value))
_DAYS: dict[int, str] = {}   # days since 1970 -> "YYYY-MM-DD"


try:   # a chunk's wire CDRs read straight from the request's bytes (servers/_wire.c), when it is built
    from servers import _wire
except ImportError:  # pragma: no cover - a build without a C compiler
    _wire = None   # type: ignore[assignment]


def cdr_rows_from_pb(msgs: Any, field: str, errors: ErrorList, limits: CdrLimits = DEFAULT_LIMITS,
                     indexed: bool = True, wire: bytes | None = None) -> list[tuple[Any, ...] | None]:
    """The wire CDRs of a chunk as rows of the normalised layout (engine.cdr.COLUMNS, what ``row_of(cdr_from_pb(...))``
    gives), without a MediatedCdr each: a CDR well inside every bound is read straight into its row; any other goes
    through :func:`cdr_from_pb`, which names its problems in ``errors`` (its entry is then None).  ``field[i]`` names
    the i-th CDR (``field`` alone when not ``indexed``: a request's one CDR).

    ``wire``: the serialized request whose field 1 holds ``msgs`` (RateCdrsRequest, RateCdrRequest): the C reader
    (servers/_wire.c) then reads the plain CDRs from its bytes, and the loop below only those it leaves (None)."""
    fast = None
    if wire is not None and _wire is not None:
        # the C reader fills in the identity of the CDRs it reads that have no cdr_id (_identities: once per source)
        fast = _wire.cdr_rows(wire, (limits.max_call_seconds, limits.max_volume_bytes, limits.max_events, EARLIEST_EPOCH,
                                     LATEST_EPOCH), _SERVICE_VALUES, _DIRECTION_VALUES, _PER_EVENT, _identities)
        if fast is not None and len(fast) != len(msgs):   # pragma: no cover - bytes of another request
            fast = None
    out: list[tuple[Any, ...] | None] = fast if fast is not None else [None] * len(msgs)
    # the CDRs the C reader left (None; ``None in`` finds none in a C scan without a Python step per row), or all of them
    slow: Any = range(len(msgs)) if fast is None else [i for i, row in enumerate(fast) if row is None] if None in fast else ()
    unnamed: dict[str, list[int]] = {}   # source -> index of the CDRs read here without a cdr_id
    for i in slow:
        row = out[i] = _row_from_pb(msgs[i], f"{field}[{i}]" if indexed else field, errors, limits)
        if row is not None and not row[0]:
            unnamed.setdefault(row[1], []).append(i)
    for source, named in unnamed.items():
        ids = _identities(source, [out[i][2] for i in named])   # type: ignore[index]
        for i, cdr_id in zip(named, ids):
            out[i] = (cdr_id, *out[i][1:])   # type: ignore[index]
    return out


def _identities(source: str, origins: list[str]) -> list[str]:
    """engine.cdr.cdr_identity of each origin id of a source (no namespace: a wire CDR's), in one C call where built."""
    if _cdr_ids is not None:
        return _cdr_ids(identity_prefix(source), origins)
    return [cdr_identity(source, o) for o in origins]


def _row_from_pb(msg: Any, field: str, errors: ErrorList, limits: CdrLimits) -> tuple[Any, ...] | None:
    """One wire CDR's row (its cdr_id empty when it has none: the caller fills in its identity), or None with its problems
    in ``errors``."""
    service = _SERVICE_VALUES.get(msg.service)
    direction = _DIRECTION_VALUES.get(msg.direction)
    start = msg.start_time
    seconds, duration, up, down = start.seconds, msg.duration_seconds, msg.volume_up_bytes, msg.volume_down_bytes
    events = msg.event_count or (1 if msg.service in _PER_EVENT else 0)
    source, origin, cdr_id, a, b, imsi = msg.source, msg.origin_id, msg.cdr_id, msg.a_number, msg.b_number, msg.imsi
    visited, code, tenant = msg.visited_network, msg.supplementary_code, msg.tenant_id
    max_bytes = limits.max_volume_bytes
    if (service is None or direction is None or not EARLIEST_EPOCH <= seconds < LATEST_EPOCH or not 0 <= start.nanos < 1_000_000_000
            or not 0 <= duration <= limits.max_call_seconds or not 0 <= up <= max_bytes or not 0 <= down <= max_bytes
            or up + down > max_bytes or not 0 <= events <= limits.max_events or len(cdr_id) > 64 or len(source) > 64
            or len(origin) > 255 or len(a) > 64 or len(b) > 255 or len(imsi) > 15 or len(visited) > 16 or len(code) > 16
            or len(tenant) > 40 or msg.HasField("charge") or len(msg.attributes) or not msg.HasField("start_time")):
        cdr = cdr_from_pb(msg, field, errors, limits)
        return row_of(cdr) if cdr is not None else None
    day = _DAYS.get(seconds // 86400)
    if day is None:
        day = _DAYS[seconds // 86400] = datetime.fromtimestamp(seconds - seconds % 86400, timezone.utc).strftime("%Y-%m-%d")
    clock = seconds % 86400
    return (cdr_id, source, origin, service, direction, f"{day}T{clock // 3600:02d}:{clock // 60 % 60:02d}:{clock % 60:02d}Z", a, b,
            imsi, duration, up, down, events, visited, code, None, "", tenant, "")
