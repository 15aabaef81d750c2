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
from engine.eventrules import RuleBook, load_rule_book
from engine.paging import next_token, page_request
from engine.rating.alerts import CreditAlertRecord
from engine.rating.authorise import CallAuthoriser, CallRequest
from engine.rating.desk import RatingDesk
from engine.rating.limits import DEFAULT_LIMITS, EARLIEST, EARLIEST_EPOCH, LATEST, LATEST_EPOCH, CdrLimits
from engine.rating.result import RatedCdr, RatingStatus
from servers.context import current_principal
from servers.convert import from_ts, ts

MAX_CHUNK = 1000
LIMIT_SECONDS = (EARLIEST_EPOCH, LATEST_EPOCH)
_SERVICE = {mpb.CDR_SERVICE_KIND_VOICE: Service.VOICE, mpb.CDR_SERVICE_KIND_SMS: Service.SMS, mpb.CDR_SERVICE_KIND_MMS: Service.MMS,
            mpb.CDR_SERVICE_KIND_DATA: Service.DATA, mpb.CDR_SERVICE_KIND_SUPPLEMENTARY: Service.SUPPLEMENTARY}
_SERVICE_PB = {v.value: k for k, v in _SERVICE.items()}
_DIRECTION = {mpb.CDR_DIRECTION_UNSPECIFIED: Direction.ORIGINATING, mpb.CDR_DIRECTION_ORIGINATING: Direction.ORIGINATING,
              mpb.CDR_DIRECTION_TERMINATING: Direction.TERMINATING}
_STATUS = {RatingStatus.RATED: pb.RATING_STATUS_RATED, RatingStatus.UNRATED: pb.RATING_STATUS_UNRATED,
           RatingStatus.REJECTED: pb.RATING_STATUS_REJECTED}


# engine field name -> the NormalisedCdr field that carries it
_WIRE_NAME = {"tenant": "tenant_id", "charge_micros": "charge.amount_micros", "charge_currency": "charge.currency"}


def cdr_from_pb(msg: mpb.NormalisedCdr, field: str, errors: ErrorList, limits: CdrLimits = DEFAULT_LIMITS) -> MediatedCdr | None:
    """A wire CDR as the engine's MediatedCdr; bad enums, a missing start time and every value beyond the declared
    limits (engine.rating.limits) are field violations: rating never starts on them."""
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
    start = msg.start_time
    if not LIMIT_SECONDS[0] <= start.seconds < LIMIT_SECONDS[1] or not 0 <= start.nanos < 1_000_000_000:
        errors.add(f"{field}.start_time", f"must be between {EARLIEST.date()} and {LATEST.date()}")
        return None
    cdr = MediatedCdr(
        cdr_id=msg.cdr_id or cdr_identity(msg.source, msg.origin_id), source=msg.source, origin_id=msg.origin_id, service=service,
        direction=direction, start_time=from_ts(msg.start_time), a_number=msg.a_number, b_number=msg.b_number, imsi=msg.imsi,
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


def money(micros: int, currency: str) -> common_pb2.Money:
    return common_pb2.Money(amount_micros=micros, currency=currency)


def rated_pb(r: RatedCdr, plan_set_version: int, explain: bool = True) -> pb.RatedCdr:
    return pb.RatedCdr(
        cdr_id=r.cdr_id, status=_STATUS[r.status], reason=r.reason, charge=money(r.charge_micros, r.currency),
        gross=money(r.gross_micros, r.currency), tariff_plan=r.plan_id, plan_version=r.plan_version, plan_set_version=plan_set_version,
        destination=r.destination, zone=r.zone, units=r.units,
        spans=[pb.RatedSpan(start=s.start, end=s.end, band=s.band, rate_id=s.rate_id, billed_units=s.billed_units,
                            bundle_units=s.bundle_units, charge=money(s.charge_micros, r.currency)) for s in r.spans],
        bundles=[pb.BundleUse(bundle_id=u.bundle_id, units=u.units) for u in r.bundle_usage],
        discounts=[pb.DiscountLine(discount_id=d.discount_id, amount=money(d.amount_micros, r.currency)) for d in r.discounts],
        explanation=r.explanation if explain else "",
    )


_ALERT_KIND = {"message": pb.CREDIT_ALERT_KIND_MESSAGE, "bar_service": pb.CREDIT_ALERT_KIND_BAR_SERVICE,
               "notify_mvno": pb.CREDIT_ALERT_KIND_NOTIFY_MVNO}


def alert_pb(a: CreditAlertRecord) -> pb.CreditAlert:
    return pb.CreditAlert(
        sequence=a.sequence, tenant_id=a.tenant_id, msisdn=a.msisdn, period=a.period, threshold_id=a.threshold_id, percent=a.percent,
        kind=_ALERT_KIND.get(a.kind, pb.CREDIT_ALERT_KIND_UNSPECIFIED), channel=a.channel, recipient=a.recipient, text=a.text,
        service=a.service, barring_flag=a.barring_flag, fire_time=ts(a.fire_time), credit_used=money(a.used_micros, a.currency),
        credit_limit=money(a.limit_micros, a.currency),
    )


class RatingServicer(rpc.RatingServiceServicer):
    def __init__(self, desk: RatingDesk, authoriser: CallAuthoriser | None = None) -> None:
        self.desk = desk
        self.authoriser = authoriser

    def _rate_all(self, cdrs: Any, options: pb.RateOptions, field: str, explain: bool) -> list[pb.RatedCdr]:
        errors = ErrorList()
        if len(cdrs) > MAX_CHUNK:
            errors.add(field, f"at most {MAX_CHUNK} CDRs per message")
            errors.raise_if_any("invalid CDRs")
        limits = self.desk.limits
        domain = [cdr_from_pb(c, field if field == "cdr" else f"{field}[{i}]", errors, limits) for i, c in enumerate(cdrs)]
        errors.raise_if_any("invalid CDRs")
        outcomes = self.desk.rate_many(current_principal(), domain, options.tariff_plan, options.use_bundle_counters)  # type: ignore[arg-type]
        return [rated_pb(o.rated, o.plan_set_version, explain) for o in outcomes]

    def RateCdr(self, request: pb.RateCdrRequest, context: grpc.ServicerContext) -> pb.RateCdrResponse:
        return pb.RateCdrResponse(rated=self._rate_all([request.cdr], request.options, "cdr", True)[0])

    def RateCdrs(self, request_iterator: Iterator[pb.RateCdrsRequest], context: grpc.ServicerContext) -> Iterator[pb.RateCdrsResponse]:
        for request in request_iterator:
            yield pb.RateCdrsResponse(rated=self._rate_all(request.cdrs, request.options, "cdrs", request.options.explain))

    def GetBundleCounters(self, request: pb.GetBundleCountersRequest, context: grpc.ServicerContext) -> pb.GetBundleCountersResponse:
        counters, usage = self.desk.counters(current_principal(), request.tenant_id, request.msisdn, request.cycle)
        cycle = request.cycle
        out = pb.GetBundleCountersResponse(counters=[
            pb.BundleCounter(bundle_id=bid, cycle=cycle, allowance=a, remaining=r, unit=u) for bid, (a, r, u) in sorted(counters.items())])
        if usage:
            currency, micros = sorted(usage.items())[0]
            out.usage_charged.CopyFrom(money(micros, currency))
        return out


    def AuthorizeCall(self, request: pb.AuthorizeCallRequest, context: grpc.ServicerContext) -> pb.AuthorizeCallResponse:
        errors = ErrorList()
        service = _SERVICE.get(request.service) if request.service else Service.VOICE
        if service is None:
            errors.add("service", "must be one of VOICE, SMS, MMS, DATA, SUPPLEMENTARY")
        if not request.msisdn:
            errors.add("msisdn", "must be set")
        errors.raise_if_any("invalid call attempt")
        assert self.authoriser is not None and service is not None
        got = self.authoriser.authorise(current_principal(), CallRequest(
            msisdn=request.msisdn, destination=request.destination, service=service.value, roaming=request.roaming,
            visited_network=request.visited_network, at=from_ts(request.time) if request.HasField("time") else None))
        d = got.decision
        out = pb.AuthorizeCallResponse(allowed=d.allowed, action=d.action, rule_id=d.rule_id or "", reason=d.reason,
                                       tenant_id=got.tenant_id, tariff_plan=got.tariff_plan, destination_group=got.destination_group,
                                       barring_flags=list(got.barring_flags))
        if got.credit_limit_micros is not None:
            out.credit_used.CopyFrom(money(got.credit_used_micros, got.currency))
            out.credit_limit.CopyFrom(money(got.credit_limit_micros, got.currency))
        return out

    def ListCreditAlerts(self, request: pb.ListCreditAlertsRequest, context: grpc.ServicerContext) -> pb.ListCreditAlertsResponse:
        page = page_request(request.page_size, request.page_token)
        items = self.desk.credit_alert_log(current_principal(), request.tenant_id, request.msisdn.lstrip("+"), request.period, page)
        return pb.ListCreditAlertsResponse(alerts=[alert_pb(a) for a in items], next_page_token=next_token(items, page, lambda a: a.sequence))


def rule_book(root: Any) -> RuleBook:
    """The event rules of settings.rules_dir, loaded (and validated) once per root."""
    book = root.extras.get("rule_book")
    if book is None:
        book = root.extras["rule_book"] = load_rule_book(root.settings.rules_dir)
    return book  # type: ignore[no-any-return]


def barring_flags(book: RuleBook) -> frozenset[str]:
    """Flags staff may set: those the barring rules test, plus those credit alerts' bar_service actions set."""
    from engine.rating.alerts import flag_for_service

    tested = {f.split(".", 1)[1] for f in book.barring_table.ruleset().fields() if f.startswith("flags.")}
    by_alerts = {flag_for_service(a.service) for t in book.alert_table.thresholds for a in t.actions if a.kind == "bar_service"}
    return frozenset(tested | by_alerts)


def build_desk(root: Any) -> RatingDesk:
    from servers.plan_service import build_plans

    plans, plan_uow = build_plans(root)
    return RatingDesk(plans, plan_uow, root.uow, root.clock, rule_book(root).credit_alerts(), CdrLimits.from_settings(root.settings))


def rating_desk(root: Any) -> RatingDesk:
    """The root's one rating desk (RatingService, RerateService, mediation with rating and what-if share it)."""
    desk = root.extras.get("rating")
    if desk is None:
        desk = root.extras["rating"] = build_desk(root)
    return desk  # type: ignore[no-any-return]


def register(server: grpc.Server, root: Any) -> str:
    desk = rating_desk(root)
    authoriser = root.extras.get("call_authoriser")
    if authoriser is None:
        authoriser = root.extras["call_authoriser"] = CallAuthoriser(desk, rule_book(root).barring(), root.uow, root.clock)
    rpc.add_RatingServiceServicer_to_server(RatingServicer(desk, authoriser), server)
    return pb.DESCRIPTOR.services_by_name["RatingService"].full_name


__all__ = ["RatingServicer", "barring_flags", "cdr_from_pb", "rated_pb", "rating_desk", "register", "rule_book", "_SERVICE_PB"]
