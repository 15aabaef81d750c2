"""RatingService: proto <-> domain only; the use cases live in engine.rating.desk."""

from __future__ import annotations

from typing import Any, Iterator

import grpc

from billing.v1 import common_pb2
from billing.v1 import mediation_pb2 as mpb
from billing.v1 import rating_pb2 as pb
from billing.v1 import rating_pb2_grpc as rpc
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.errors import ErrorList
from engine.rating.desk import RatingDesk
from engine.rating.result import RatedCdr, RatingStatus
from servers.context import current_principal
from servers.convert import from_ts

MAX_CHUNK = 1000
_SERVICE = {mpb.CDR_SERVICE_KIND_VOICE: Service.VOICE, mpb.CDR_SERVICE_KIND_SMS: Service.SMS, mpb.CDR_SERVICE_KIND_MMS: Service.MMS,
            mpb.CDR_SERVICE_KIND_DATA: Service.DATA, mpb.CDR_SERVICE_KIND_SUPPLEMENTARY: Service.SUPPLEMENTARY}
_SERVICE_PB = {v.value: k for k, v in _SERVICE.items()}
_DIRECTION = {mpb.CDR_DIRECTION_UNSPECIFIED: Direction.ORIGINATING, mpb.CDR_DIRECTION_ORIGINATING: Direction.ORIGINATING,
              mpb.CDR_DIRECTION_TERMINATING: Direction.TERMINATING}
_STATUS = {RatingStatus.RATED: pb.RATING_STATUS_RATED, RatingStatus.UNRATED: pb.RATING_STATUS_UNRATED,
           RatingStatus.REJECTED: pb.RATING_STATUS_REJECTED}


def cdr_from_pb(msg: mpb.NormalisedCdr, field: str, errors: ErrorList) -> MediatedCdr | None:
    """A wire CDR as the engine's MediatedCdr; bad enums and a missing start time are field violations."""
    service = _SERVICE.get(msg.service)
    if service is None:
        errors.add(f"{field}.service", "must be one of VOICE, SMS, MMS, DATA, SUPPLEMENTARY")
    direction = _DIRECTION.get(msg.direction)
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


def money(micros: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_micros=micros, currency=currency)


def rated_pb(r: RatedCdr, plan_set_version: int) -> pb.RatedCdr:
    return pb.RatedCdr(
        cdr_id=r.cdr_id, status=_STATUS[r.status], reason=r.reason, charge=money(r.charge_micros, r.currency),
        gross=money(r.gross_micros, r.currency), tariff_plan=r.plan_id, plan_version=r.plan_version, plan_set_version=plan_set_version,
        destination=r.destination, zone=r.zone, units=r.units,
        spans=[pb.RatedSpan(start=s.start, end=s.end, band=s.band, rate_id=s.rate_id, billed_units=s.billed_units,
                            bundle_units=s.bundle_units, charge=money(s.charge_micros, r.currency)) for s in r.spans],
        bundles=[pb.BundleUse(bundle_id=u.bundle_id, units=u.units) for u in r.bundle_usage],
        discounts=[pb.DiscountLine(discount_id=d.discount_id, amount=money(d.amount_micros, r.currency)) for d in r.discounts],
        explanation=r.explanation,
    )


class RatingServicer(rpc.RatingServiceServicer):
    def __init__(self, desk: RatingDesk) -> None:
        self.desk = desk

    def _rate_all(self, cdrs: Any, options: pb.RateOptions, field: str) -> list[pb.RatedCdr]:
        errors = ErrorList()
        if len(cdrs) > MAX_CHUNK:
            errors.add(field, f"at most {MAX_CHUNK} CDRs per message")
        domain = [cdr_from_pb(c, field if field == "cdr" else f"{field}[{i}]", errors) for i, c in enumerate(cdrs)]
        errors.raise_if_any("invalid CDRs")
        principal = current_principal()
        out = []
        for cdr in domain:
            outcome = self.desk.rate(principal, cdr, options.tariff_plan, options.use_bundle_counters)  # type: ignore[arg-type]
            out.append(rated_pb(outcome.rated, outcome.plan_set_version))
        return out

    def RateCdr(self, request: pb.RateCdrRequest, context: grpc.ServicerContext) -> pb.RateCdrResponse:
        return pb.RateCdrResponse(rated=self._rate_all([request.cdr], request.options, "cdr")[0])

    def RateCdrs(self, request_iterator: Iterator[pb.RateCdrsRequest], context: grpc.ServicerContext) -> Iterator[pb.RateCdrsResponse]:
        for request in request_iterator:
            yield pb.RateCdrsResponse(rated=self._rate_all(request.cdrs, request.options, "cdrs"))

    def GetBundleCounters(self, request: pb.GetBundleCountersRequest, context: grpc.ServicerContext) -> pb.GetBundleCountersResponse:
        counters, usage = self.desk.counters(current_principal(), request.tenant_id, request.msisdn, request.cycle)
        cycle = request.cycle
        out = pb.GetBundleCountersResponse(counters=[
            pb.BundleCounter(bundle_id=bid, cycle=cycle, allowance=a, remaining=r, unit=u) for bid, (a, r, u) in sorted(counters.items())])
        if usage:
            currency, micros = sorted(usage.items())[0]
            out.usage_charged.CopyFrom(money(micros, currency))
        return out


def build_desk(root: Any) -> RatingDesk:
    from servers.plan_service import build_plans

    plans, plan_uow = build_plans(root)
    return RatingDesk(plans, plan_uow, root.uow, root.clock)


def register(server: grpc.Server, root: Any) -> str:
    desk = root.extras.get("rating")
    if desk is None:
        desk = root.extras["rating"] = build_desk(root)
    rpc.add_RatingServiceServicer_to_server(RatingServicer(desk), server)
    return pb.DESCRIPTOR.services_by_name["RatingService"].full_name


__all__ = ["RatingServicer", "cdr_from_pb", "rated_pb", "register", "_SERVICE_PB"]
