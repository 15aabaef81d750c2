"""RerateService: proto <-> domain only; the use case lives in engine.rating.rerate."""

from __future__ import annotations

from typing import Iterator

import grpc

from billing.v1 import rerate_pb2 as pb
from billing.v1 import rerate_pb2_grpc as rpc
from engine.errors import ErrorList
from engine.rating.rerate import RerateDesk, RerateSummary
from servers.context import current_principal
from servers.convert import from_ts, money, service_name
from servers.root import Root


def summary_pb(s: RerateSummary) -> pb.RerateSummary:
    return pb.RerateSummary(
        cdrs=s.cdrs, rated=s.rated, unrated=s.unrated, rejected=s.rejected, plan_set_version=s.plan_set_version,
        charged_before=[money(m, c) for c, m in sorted(s.charged_before.items())],
        charged_after=[money(m, c) for c, m in sorted(s.charged_after.items())],
    )


class RerateServicer(rpc.RerateServiceServicer):
    def __init__(self, desk: RerateDesk) -> None:
        self.desk = desk

    def Rerate(self, request: pb.RerateRequest, context: grpc.ServicerContext) -> Iterator[pb.RerateResponse]:
        errors = ErrorList()
        for name in ("period_start", "period_end"):
            if not request.HasField(name):
                errors.add(name, "must be set")
        if request.plan_set_version < 0:
            errors.add("plan_set_version", "must be 0 (the version in force at each CDR) or a stored version")
        errors.raise_if_any("invalid re-rating request")
        steps = self.desk.steps(current_principal(), request.tenant_id, from_ts(request.period_start, "period_start"),
                                from_ts(request.period_end, "period_end"),
                                request.plan_set_version)
        for step in steps:
            if isinstance(step, RerateSummary):
                yield pb.RerateResponse(summary=summary_pb(step))
            else:
                yield pb.RerateResponse(progress=pb.RerateProgress(done=step[0], total=step[1]))
            if not context.is_active():
                return  # the client went away: the chunks committed so far stay re-rated; a new run finishes the job


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_RerateServiceServicer_to_server(RerateServicer(root.rerate), server)
    return service_name(pb, "RerateService")
