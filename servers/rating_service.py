"""RatingService: proto <-> domain only; the use cases live in engine.rating.desk."""

from __future__ import annotations

from typing import Any, Iterator

import grpc

from billing.v1 import rating_pb2 as pb
from billing.v1 import rating_pb2_grpc as rpc
from engine.cdr import Service
from engine.errors import ErrorList
from engine.gcpause import collector_paused
from engine.paging import next_token, page_request
from engine.rating.alerts import CreditAlertRecord
from engine.rating.authorise import Authorisation, CallAuthoriser, CallRequest
from engine.rating.desk import RatedRows, RatingDesk, RatingStream
from engine.rating.evaluator import RATED
from engine.rating.limits import CdrLimits
from engine.rating.result import RatedCdr, RatingStatus
from engine.settings import check_range
from servers.context import current_principal
from servers.convert import Wired, cdr_from_pb, cdr_rows_from_pb, cdr_service, money, optional_ts, service_name, ts
from servers.root import Root

try:   # the reply's one-span RatedCdrs written in protobuf's wire format (servers/_wire.c), when it is built
    from servers import _wire
except ImportError:  # pragma: no cover - a build without a C compiler
    _wire = None   # type: ignore[assignment]

MAX_CHUNK = 1000
_STATUS = {RatingStatus.RATED: pb.RATING_STATUS_RATED, RatingStatus.UNRATED: pb.RATING_STATUS_UNRATED,
           RatingStatus.REJECTED: pb.RATING_STATUS_REJECTED}


def rated_pb(r: RatedCdr, plan_set_version: int, explain: bool = True) -> pb.RatedCdr:
    return pb.RatedCdr(
        cdr_id=r.cdr_id, status=_STATUS[r.status], reason=r.reason, charge=money(r.charge_micros, r.currency),
        gross=money(r.gross_micros, r.currency), tariff_plan=r.plan_id, plan_version=r.plan_version, plan_set_version=plan_set_version,
        destination=r.destination, zone=r.zone, units=r.units,
        spans=[pb.RatedSpan(start=s.start, end=s.end, band=s.band, rate_id=s.rate_id, billed_units=s.billed_units,
                            bundle_units=s.bundle_units, charge=money(s.charge_micros, r.currency)) for s in r.spans],
        bundles=[pb.BundleUse(bundle_id=u.bundle_id, units=u.units) for u in r.bundle_usage],
        discounts=[pb.DiscountLine(discount_id=d.discount_id, amount=money(d.amount_micros, r.currency)) for d in r.discounts],
        explanation=r.explanation if explain else "",   # written only when asked for (RateCdr, RateOptions.explain)
        flags=list(r.flags),
    )


def rated_rows_pb(rated: RatedRows, rows: list[tuple[Any, ...]], msgs: Any, explain: bool, limits: CdrLimits,
                  reply: pb.RateCdrsResponse) -> None:
    """Add the reply of a rated chunk to ``reply.rated``: what ``rated_pb`` writes of each CDR's RatedCdr, read straight
    from the evaluator's rows where the batch loop priced the CDR in one span, priced it by parts and kept its spans
    (the C loop), or did not rate it; through the full RatedCdr otherwise (the per-CDR way's rows, an explanation asked
    for)."""
    if explain or _wire is None or type(rated.results) is not list or type(rows) is not list:
        for i in range(len(rows)):
            _rated_row_pb(rated, i, rows[i], msgs, explain, limits, reply.rated)
        return
    reply.MergeFromString(rated_rows_wire(rated, rows, msgs, explain, limits))


def rated_rows_wire(rated: RatedRows, rows: list[tuple[Any, ...]], msgs: Any, explain: bool, limits: CdrLimits) -> bytes:
    """The reply of a rated chunk as a serialized RateCdrsResponse (what ``rated_rows_pb`` adds to an empty reply):
    without explanations the C writer (servers/_wire.c) encodes the one-span rows in protobuf's wire format and the
    others are written by ``_rated_row_pb`` in their places; RateCdrs hands these bytes to gRPC as they are."""
    if explain or _wire is None or type(rated.results) is not list or type(rows) is not list:
        reply = pb.RateCdrsResponse()
        rated_rows_pb(rated, rows, msgs, explain, limits, reply)
        return reply.SerializeToString()
    parts = _wire.rated_reply(rated.results, rows, rated.versions, RATED, pb.RATING_STATUS_RATED)
    if len(parts) == 1 and type(parts[0]) is bytes:
        return parts[0]
    one = pb.RateCdrsResponse()
    encoded: list[bytes] = []
    for part in parts:
        if isinstance(part, bytes):
            encoded.append(part)
        else:
            _rated_row_pb(rated, part, rows[part], msgs, explain, limits, one.rated)
            encoded.append(one.SerializeToString())   # field 1 of RateCdrsResponse, as the C writer's entries
            del one.rated[:]
    return b"".join(encoded)


def _rated_row_pb(rated: RatedRows, i: int, row: tuple[Any, ...], msgs: Any, explain: bool, limits: CdrLimits, into: Any) -> None:
    """The RatedCdr of row ``i``, added to ``into`` (a repeated RatedCdr field)."""
    status, charge, what, uses, v, group, zone, units, band, how = rated.results[i]
    version = rated.versions[i]
    if not explain and status != RATED:
        out = into.add(cdr_id=row[0], status=_STATUS_OF[status], reason=what, tariff_plan=rated.plan_shown(i),
                       plan_set_version=version)
        out.charge.SetInParent()
        out.gross.SetInParent()
    elif not explain and type(how) is tuple and v is not None:
        by_parts = len(how) == 2   # (gross, spans) of a call the C loop priced by parts, else a one-span memo entry
        covered = how[1] if uses and not by_parts else 0
        currency = v.currency
        out = into.add(cdr_id=row[0], status=pb.RATING_STATUS_RATED, tariff_plan=v.plan_id, plan_version=v.version,
                       plan_set_version=version, destination=group, zone=zone, units=units)
        money = out.charge
        money.amount_micros, money.currency = charge, currency
        money = out.gross
        money.amount_micros, money.currency = 0 if covered else how[0], currency
        if by_parts:
            for start, end, in_band, rate_id, billed, paid, micros in how[1]:
                money = out.spans.add(start=start, end=end, band=in_band, rate_id=rate_id, billed_units=billed, bundle_units=paid).charge
                money.amount_micros, money.currency = micros, currency
        else:
            money = out.spans.add(start=0, end=units, band=band, rate_id=what, billed_units=how[1], bundle_units=covered).charge
            money.amount_micros, money.currency = 0 if covered else how[2], currency
        if uses:
            more = out.bundles.add
            for bundle, used in uses:
                more(bundle_id=bundle, units=used)
        if len(how) > 3 and how[3]:
            line = out.discounts.add
            for d in how[3]:
                money = line(discount_id=d.discount_id).amount
                money.amount_micros, money.currency = d.amount_micros, currency
    else:
        cdr = cdr_from_pb(msgs[i], "cdr", ErrorList(), limits)
        assert cdr is not None   # its row was read from it
        into.append(rated_pb(rated.detail(i, cdr), version, explain))


_STATUS_OF = {status.value: number for status, number in _STATUS.items()}


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
    def __init__(self, desk: RatingDesk, authoriser: CallAuthoriser, group_max: int = 20_000,
                 ahead_bytes: int = 2 * 16 * 1024 * 1024, group_bytes: int = 16 * 1024 * 1024) -> None:
        self.desk = desk
        self.authoriser = authoriser
        check_range("rating_group_max_cdrs", group_max)
        self.group_max = group_max   # RateCdrs: the most CDRs of messages rated and stored as one chunk (engine.rating.groups)
        self.ahead_bytes = ahead_bytes   # RateCdrs: the most bytes of messages read ahead of the one rated (engine.rating.groups)
        self.group_bytes = group_bytes   # RateCdrs: the most bytes of messages rated and stored as one chunk (one larger alone)

    def _rows(self, cdrs: Any, field: str, wire: bytes | None = None) -> list[tuple[Any, ...]]:
        """A message's CDRs as rows, or INVALID_ARGUMENT. ``wire``: the request's bytes (its field 1 holds ``cdrs``),
        for the C reader (servers.convert.cdr_rows_from_pb)."""
        errors = ErrorList()
        if len(cdrs) > MAX_CHUNK:
            errors.add(field, f"at most {MAX_CHUNK} CDRs per message")
            errors.raise_if_any("invalid CDRs")
        rows = cdr_rows_from_pb(cdrs, field, errors, self.desk.limits, indexed=field != "cdr", wire=wire)
        errors.raise_if_any("invalid CDRs")
        return rows  # type: ignore[return-value]

    def _rate_all(self, cdrs: Any, options: pb.RateOptions, field: str) -> Any:
        """The chunk rated: (its rows, what the desk gave)."""
        rows = self._rows(cdrs, field)
        return rows, self.desk.rate_rows(current_principal(), rows, options.tariff_plan, options.use_bundle_counters)

    def RateCdr(self, request: pb.RateCdrRequest, context: grpc.ServicerContext) -> pb.RateCdrResponse:
        one = pb.RateCdrsResponse()
        cdrs = [request.cdr]
        rows, rated = self._rate_all(cdrs, request.options, "cdr")
        rated_rows_pb(rated, rows, cdrs, True, self.desk.limits, one)
        return pb.RateCdrResponse(rated=one.rated[0])

    def RateCdrs(self, request_iterator: Iterator[Wired | pb.RateCdrsRequest], context: grpc.ServicerContext) -> Iterator[bytes]:
        """Each reply as the bytes of a RateCdrsResponse (registered with a serializer that passes them on, see
        ``register``); each request as read with its bytes (``Wired``), which the C reader reads again.

        A message is rated while the one before is being stored (engine.rating.desk.RatingStream); each reply goes
        out once its chunk is committed, in order, before any error of a later message; messages already received are
        rated and stored together, up to the ``rating_group_max_cdrs`` setting and ``max_message_bytes`` of messages
        (engine.rating.groups)."""
        stream = self.desk.stream(current_principal())
        return _replies(self, stream.grouped(request_iterator, lambda item: _message(self, stream, item), _cdr_count,
                                             self.group_max, _wire_bytes, self.ahead_bytes, self.group_bytes))

    def _reply(self, rated: RatedRows, rows: list[tuple[Any, ...]], cdrs: Any, explain: bool) -> bytes:
        with collector_paused():
            return rated_rows_wire(rated, rows, cdrs, explain, self.desk.limits)

    def GetBundleCounters(self, request: pb.GetBundleCountersRequest, context: grpc.ServicerContext) -> pb.GetBundleCountersResponse:
        counters, usage, cycle = self.desk.counters(current_principal(), request.tenant_id, request.msisdn, request.cycle)
        out = pb.GetBundleCountersResponse(counters=[
            pb.BundleCounter(bundle_id=bid, cycle=cycle, allowance=a, remaining=r, unit=u) for bid, (a, r, u) in sorted(counters.items())])
        if usage:
            currency, micros = sorted(usage.items())[0]
            out.usage_charged.CopyFrom(money(micros, currency))
        return out


    def AuthorizeCall(self, request: pb.AuthorizeCallRequest, context: grpc.ServicerContext) -> pb.AuthorizeCallResponse:
        return authorisation_pb(self.authoriser.authorise(current_principal(), call_request_from(request)))

    def ListCreditAlerts(self, request: pb.ListCreditAlertsRequest, context: grpc.ServicerContext) -> pb.ListCreditAlertsResponse:
        page = page_request(request.page_size, request.page_token, "credit_alerts", int)
        items = self.desk.credit_alert_log(current_principal(), request.tenant_id, request.msisdn.lstrip("+"), request.period, page)
        return pb.ListCreditAlertsResponse(alerts=[alert_pb(a) for a in items], next_page_token=next_token(items, page, lambda a: a.sequence))


def _replies(servicer: RatingServicer, answers: Iterator[tuple["_Message", RatedRows]]) -> Iterator[bytes]:
    """Each message's reply from its rated rows, as the stream's group commit gives them (engine.rating.groups); the
    stream let go however the call ends."""
    try:
        for message, rated in answers:
            yield servicer._reply(rated, message.rows, message.cdrs, message.explain)
    finally:
        answers.close()   # type: ignore[attr-defined]


class _Message:
    """A RateCdrs message read (engine.rating.groups.Message): its rows (``rows`` as read, ``own`` with the caller's
    tenant and checked), its CDRs and options."""

    __slots__ = ("rows", "own", "cdrs", "tariff_plan", "use_counters", "explain")

    def __init__(self, rows: list[tuple[Any, ...]], own: list[tuple[Any, ...]], cdrs: Any, options: pb.RateOptions) -> None:
        self.rows, self.own, self.cdrs = rows, own, cdrs
        self.tariff_plan, self.use_counters, self.explain = options.tariff_plan, options.use_bundle_counters, options.explain


def _message(servicer: RatingServicer, stream: RatingStream, item: Any) -> _Message:
    """A message read (``Wired``: with its bytes) as rows: INVALID_ARGUMENT for a bad one, PERMISSION_DENIED for another
    tenant's CDRs."""
    request, wire = (item.message, item.data) if isinstance(item, Wired) else (item, item.SerializeToString())
    cdrs = request.cdrs
    with collector_paused():
        rows = servicer._rows(cdrs, "cdrs", wire if len(cdrs) <= MAX_CHUNK else None)
        return _Message(rows, stream.own(rows), cdrs, request.options)


def _cdr_count(item: Any) -> int:
    """What a message read ahead weighs: its CDRs (ReadAhead's bound)."""
    return max(1, len((item.message if isinstance(item, Wired) else item).cdrs))


def _wire_bytes(item: Any) -> int:
    """How large a message read ahead is: the bytes it came in (ReadAhead's second bound, and a group's)."""
    return max(1, len(item.data) if isinstance(item, Wired) else item.ByteSize())


def call_request_from(request: pb.AuthorizeCallRequest) -> CallRequest:
    errors = ErrorList()
    service = cdr_service(request.service, "service", errors) if request.service else Service.VOICE
    if not request.msisdn:
        errors.add("msisdn", "must be set")
    errors.raise_if_any("invalid call attempt")
    assert service is not None
    return CallRequest(msisdn=request.msisdn, destination=request.destination, service=service.value, roaming=request.roaming,
                       visited_network=request.visited_network, at=optional_ts(request, "time"))


def authorisation_pb(got: Authorisation) -> pb.AuthorizeCallResponse:
    d = got.decision
    out = pb.AuthorizeCallResponse(allowed=d.allowed, action=d.action, rule_id=d.rule_id or "", reason=d.reason,
                                   tenant_id=got.tenant_id, tariff_plan=got.tariff_plan, destination_group=got.destination_group,
                                   barring_flags=list(got.barring_flags))
    if got.credit_limit_micros is not None:
        out.credit_used.CopyFrom(money(got.credit_used_micros, got.currency))
        out.credit_limit.CopyFrom(money(got.credit_limit_micros, got.currency))
    return out


class _Handlers:
    """Takes the method handlers the generated ``add_RatingServiceServicer_to_server`` would register (a server of
    its own kind, so that every other method keeps the generated serializers)."""

    handlers: dict[str, grpc.RpcMethodHandler]

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, service: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self.handlers = dict(handlers)


def _read_rate_cdrs(data: bytes) -> Wired:
    return Wired(pb.RateCdrsRequest.FromString(data), data)


def _as_is(data: bytes) -> bytes:
    return data


def register(server: grpc.Server, root: Root) -> str:
    limit = root.settings.max_message_bytes
    servicer = RatingServicer(root.rating, root.calls, root.settings.rating_group_max_cdrs, 2 * limit, limit)
    taken = _Handlers()
    rpc.add_RatingServiceServicer_to_server(servicer, taken)
    # RateCdrs reads each request with its bytes (read again by the C reader and the interceptor's NUL check) and answers
    # with the bytes the C writer produced: no message built from them to be serialized again
    taken.handlers["RateCdrs"] = grpc.stream_stream_rpc_method_handler(servicer.RateCdrs, request_deserializer=_read_rate_cdrs,
                                                                      response_serializer=_as_is)
    name = service_name(pb, "RatingService")
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, taken.handlers),))
    server.add_registered_method_handlers(name, taken.handlers)
    return name
