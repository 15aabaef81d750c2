"""RerateService over the wire: the method of engine.rating.rerate's RerateDesk."""

from __future__ import annotations

from datetime import datetime
from typing import Iterator

import grpc

from billing.v1 import rerate_pb2 as pb
from billing.v1 import rerate_pb2_grpc as rpc
from clients.services.base import timestamp


class RerateClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.RerateServiceStub(channel)

    def steps(self, start: datetime, end: datetime, plan_set_version: int = 0,
              tenant_id: str = "") -> Iterator[pb.RerateProgress | pb.RerateSummary]:
        """Re-rate the stored CDRs starting in [start, end): progress after each chunk, then the summary."""
        request = pb.RerateRequest(tenant_id=tenant_id, period_start=timestamp(start), period_end=timestamp(end),
                                   plan_set_version=plan_set_version)
        for reply in self.rpc.Rerate(request):
            yield reply.progress if reply.HasField("progress") else reply.summary

    def rerate(self, start: datetime, end: datetime, plan_set_version: int = 0, tenant_id: str = "") -> pb.RerateSummary:
        """The whole run; its summary."""
        summary = None
        for step in self.steps(start, end, plan_set_version, tenant_id):
            if isinstance(step, pb.RerateSummary):
                summary = step
        if summary is None:  # pragma: no cover - the server always ends with the summary
            raise RuntimeError("the server ended the run without a summary")
        return summary
