"""Proto <-> domain conversions shared by servicers: timestamps, money, enums, CDRs, service names."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any, Generic, Literal, TypeVar, overload

from google.protobuf.timestamp_pb2 import Timestamp

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.errors import ErrorList, InvalidArgument

E = TypeVar("E", bound=Enum)


def ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    out = Timestamp()
    out.FromDatetime(value.astimezone(timezone.utc))
    return out


def from_ts(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=timezone.utc)


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


def cdr_from_pb(msg: mpb.NormalisedCdr, field: str, errors: ErrorList) -> MediatedCdr | None:
    """A wire CDR as the engine's MediatedCdr; bad enums and a missing start time are field violations."""
    service = cdr_service(msg.service, f"{field}.service", errors)
    # an unspecified direction is the usual one: the subscriber made the call
    direction = CDR_DIRECTIONS.lenient(msg.direction) if msg.direction else Direction.ORIGINATING
    if direction is None:
        errors.add(f"{field}.direction", "must be ORIGINATING or TERMINATING")
    if not msg.HasField("start_time"):
        errors.add(f"{field}.start_time", "must be set")
    if service is None or direction is None or not msg.HasField("start_time"):
        return None
    return MediatedCdr(
        cdr_id=msg.cdr_id or cdr_identity(msg.source, msg.origin_id), source=msg.source, origin_id=msg.origin_id, service=service,
        direction=direction, start_time=from_ts(msg.start_time), a_number=msg.a_number, b_number=msg.b_number, imsi=msg.imsi,
        duration_seconds=msg.duration_seconds, volume_up_bytes=msg.volume_up_bytes, volume_down_bytes=msg.volume_down_bytes,
        event_count=msg.event_count if msg.event_count or service in (Service.VOICE, Service.DATA) else 1,
        visited_network=msg.visited_network, supplementary_code=msg.supplementary_code,
        charge_micros=msg.charge.amount_micros if msg.HasField("charge") else None,
        charge_currency=msg.charge.currency if msg.HasField("charge") else "", tenant=msg.tenant_id, attributes=dict(msg.attributes),
    )
