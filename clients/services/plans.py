"""PlanService over the wire: the methods of engine.plans.catalogue.PlanDesk."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping

import grpc

from billing.v1 import mediation_pb2 as mpb
from billing.v1 import plan_pb2 as pb
from billing.v1 import plan_pb2_grpc as rpc
from clients.services.base import Page, timestamp


def _files(files: Mapping[str, str]) -> list[pb.PlanFile]:
    return [pb.PlanFile(path=path, content=content) for path, content in files.items()]


class PlanClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.PlanServiceStub(channel)

    def upload(self, files: Mapping[str, str], tenant_id: str = "") -> pb.PlanSetVersion:
        """Store ``{relative path: text}`` as the tenant's next version (not active yet); invalid files are refused."""
        return self.rpc.UploadPlanSet(pb.UploadPlanSetRequest(tenant_id=tenant_id, files=_files(files))).version

    def validate(self, files: Mapping[str, str]) -> pb.ValidatePlanSetResponse:
        """What an upload would report, storing nothing: ``valid`` and every problem."""
        return self.rpc.ValidatePlanSet(pb.ValidatePlanSetRequest(files=_files(files)))

    def get(self, version: int = 0, tenant_id: str = "", include_ir: bool = False) -> pb.GetPlanSetVersionResponse:
        """A version (0: the one active now), with its compiled form as JSON when asked."""
        return self.rpc.GetPlanSetVersion(pb.GetPlanSetVersionRequest(tenant_id=tenant_id, version=version, include_ir=include_ir))

    def list_versions(self, tenant_id: str = "", page_size: int = 0, page_token: str = "") -> Page[pb.PlanSetVersion]:
        reply = self.rpc.ListPlanSetVersions(pb.ListPlanSetVersionsRequest(tenant_id=tenant_id, page_size=page_size,
                                                                           page_token=page_token))
        return Page(list(reply.versions), reply.next_page_token)

    def activate(self, version: int, tenant_id: str = "", activate_time: datetime | None = None) -> pb.PlanSetVersion:
        """Active from ``activate_time`` on (None: now)."""
        return self.rpc.ActivatePlanSetVersion(pb.ActivatePlanSetVersionRequest(
            tenant_id=tenant_id, version=version, activate_time=timestamp(activate_time) if activate_time else None)).version

    def diff(self, from_version: int, to_version: int, tenant_id: str = "") -> list[pb.PlanChange]:
        reply = self.rpc.DiffPlanSetVersions(pb.DiffPlanSetVersionsRequest(tenant_id=tenant_id, from_version=from_version,
                                                                           to_version=to_version))
        return list(reply.changes)

    def what_if(self, candidate_version: int, cdrs: Iterable[mpb.NormalisedCdr] = (), tenant_id: str = "",
                assignments: Mapping[str, str] | None = None, default_tariff_plan: str = "",
                period: tuple[datetime, datetime] | None = None) -> pb.WhatIfResponse:
        """Revenue per plan and service under the candidate and the active version, on ``cdrs`` or on the stored
        CDRs of ``period`` [start, end).  ``assignments``: tariff plan per a_number or tenant."""
        request = pb.WhatIfRequest(
            tenant_id=tenant_id, candidate_version=candidate_version, cdrs=list(cdrs), default_tariff_plan=default_tariff_plan,
            assignments=[pb.PlanAssignment(key=k, tariff_plan=v) for k, v in (assignments or {}).items()])
        if period is not None:
            request.period_start.CopyFrom(timestamp(period[0]))
            request.period_end.CopyFrom(timestamp(period[1]))
        return self.rpc.WhatIf(request)
