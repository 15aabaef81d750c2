"""RatingService over the wire: the methods of engine.rating's RatingDesk and CallAuthoriser."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Iterable, Iterator

import grpc

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import rating_pb2 as pb
from billing.v1 import rating_pb2_grpc as rpc
from clients.services.base import Page, enum_number, timestamp

MAX_CHUNK = 1000   # CDRs per RateCdrs message (the server's limit)
SERVICES = ("voice", "sms", "mms", "data", "supplementary")


def service_kind(service: str) -> int:
    """A CDR service in the operator's words (``"voice"``) as its wire number."""
    return enum_number(mpb.CdrServiceKind, "CDR_SERVICE_KIND_", service)


class RatingClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.RatingServiceStub(channel)

    def rate(self, cdr: mpb.NormalisedCdr, tariff_plan: str = "", use_bundle_counters: bool = False) -> pb.RatedCdr:
        options = pb.RateOptions(tariff_plan=tariff_plan, use_bundle_counters=use_bundle_counters)
        return self.rpc.RateCdr(pb.RateCdrRequest(cdr=cdr, options=options)).rated

    def rate_many(self, cdrs: Iterable[mpb.NormalisedCdr], tariff_plan: str = "", use_bundle_counters: bool = False,
                  chunk: int = MAX_CHUNK) -> Iterator[pb.RatedCdr]:
        """Rate a stream of CDRs in chunks over one call; the rated CDRs come back in order."""
        options = pb.RateOptions(tariff_plan=tariff_plan, use_bundle_counters=use_bundle_counters)
        source = iter(cdrs)

        def requests() -> Iterator[pb.RateCdrsRequest]:
            while block := list(islice(source, chunk)):
                yield pb.RateCdrsRequest(cdrs=block, options=options)

        for reply in self.rpc.RateCdrs(requests()):
            yield from reply.rated

    def counters(self, msisdn: str, cycle: str = "", tenant_id: str = "") -> pb.GetBundleCountersResponse:
        """The subscriber's bundle counters and usage charged in ``cycle`` ("YYYY-MM"; "" the current one)."""
        return self.rpc.GetBundleCounters(pb.GetBundleCountersRequest(tenant_id=tenant_id, msisdn=msisdn, cycle=cycle))

    def authorise(self, msisdn: str, destination: str = "", service: str = "voice", roaming: bool = False,
                  visited_network: str = "", at: datetime | None = None) -> pb.AuthorizeCallResponse:
        """May ``msisdn`` make this call attempt (at ``at``, None: now)?  The barring rules decide and say why."""
        return self.rpc.AuthorizeCall(pb.AuthorizeCallRequest(
            msisdn=msisdn, destination=destination, service=service_kind(service), roaming=roaming,
            visited_network=visited_network, time=timestamp(at) if at else None))

    def credit_alert_log(self, tenant_id: str = "", msisdn: str = "", period: str = "", page_size: int = 0,
                         page_token: str = "") -> Page[pb.CreditAlert]:
        reply = self.rpc.ListCreditAlerts(pb.ListCreditAlertsRequest(
            tenant_id=tenant_id, msisdn=msisdn, period=period, page_size=page_size, page_token=page_token))
        return Page(list(reply.alerts), reply.next_page_token)
