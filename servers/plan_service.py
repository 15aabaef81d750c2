"""PlanService: proto <-> domain only; the use cases live in engine.plans.catalogue."""

from __future__ import annotations

from typing import Iterable

import grpc

from billing.v1 import plan_pb2 as pb
from billing.v1 import plan_pb2_grpc as rpc
from engine.cdr import MediatedCdr
from engine.errors import ErrorList, InvalidArgument
from engine.paging import next_token, page_request
from engine.plans.catalogue import PlanDesk, PlanSetVersion
from engine.rating.limits import CdrLimits
from engine.rating.whatif import WhatIfReport, default_plan_for
from servers.context import current_principal
from servers.convert import CDR_SERVICES, cdr_from_pb, from_ts, money, optional_ts, service_name, ts
from servers.root import Root

_CHANGE = {"added": pb.PLAN_CHANGE_KIND_ADDED, "removed": pb.PLAN_CHANGE_KIND_REMOVED, "changed": pb.PLAN_CHANGE_KIND_CHANGED}


def version_pb(v: PlanSetVersion) -> pb.PlanSetVersion:
    summary = v.summary()
    return pb.PlanSetVersion(
        tenant_id=v.tenant_id, version=v.version, digest=v.digest, create_time=ts(v.create_time), created_by=v.created_by,
        activate_time=ts(v.activate_time), tariff_plans=summary["tariff_plans"], file_count=summary["files"],
        object_counts=summary["counts"],
    )


def _files(files: Iterable[pb.PlanFile]) -> dict[str, str]:
    out: dict[str, str] = {}
    for i, f in enumerate(files):
        if f.path in out:
            raise InvalidArgument.field(f"files[{i}].path", f"{f.path!r} is given twice")
        out[f.path] = f.content
    return out


class PlanServicer(rpc.PlanServiceServicer):
    def __init__(self, desk: PlanDesk) -> None:
        self.desk = desk

    def UploadPlanSet(self, request: pb.UploadPlanSetRequest, context: grpc.ServicerContext) -> pb.UploadPlanSetResponse:
        return pb.UploadPlanSetResponse(version=version_pb(self.desk.upload(current_principal(), request.tenant_id, _files(request.files))))

    def ValidatePlanSet(self, request: pb.ValidatePlanSetRequest, context: grpc.ServicerContext) -> pb.ValidatePlanSetResponse:
        valid, problems = self.desk.validate(current_principal(), _files(request.files))
        return pb.ValidatePlanSetResponse(valid=valid, problems=[
            pb.PlanProblem(file=p.file, line=p.line, col=p.col, code=p.code, message=p.message) for p in problems])

    def GetPlanSetVersion(self, request: pb.GetPlanSetVersionRequest, context: grpc.ServicerContext) -> pb.GetPlanSetVersionResponse:
        v = self.desk.get(current_principal(), request.tenant_id, request.version)
        return pb.GetPlanSetVersionResponse(version=version_pb(v), ir_json=v.ir_json if request.include_ir else "")

    def ListPlanSetVersions(self, request: pb.ListPlanSetVersionsRequest, context: grpc.ServicerContext) -> pb.ListPlanSetVersionsResponse:
        page = page_request(request.page_size, request.page_token, "plan_versions", int)
        items = self.desk.list_versions(current_principal(), request.tenant_id, page)
        return pb.ListPlanSetVersionsResponse(versions=[version_pb(v) for v in items],
                                              next_page_token=next_token(items, page, lambda v: v.version))

    def ActivatePlanSetVersion(self, request: pb.ActivatePlanSetVersionRequest, context: grpc.ServicerContext) -> pb.ActivatePlanSetVersionResponse:
        when = optional_ts(request, "activate_time")
        return pb.ActivatePlanSetVersionResponse(version=version_pb(
            self.desk.activate(current_principal(), request.tenant_id, request.version, when)))

    def DiffPlanSetVersions(self, request: pb.DiffPlanSetVersionsRequest, context: grpc.ServicerContext) -> pb.DiffPlanSetVersionsResponse:
        changes = self.desk.diff(current_principal(), request.tenant_id, request.from_version, request.to_version)
        return pb.DiffPlanSetVersionsResponse(changes=[pb.PlanChange(kind=c.kind, id=c.id, change=_CHANGE[c.change]) for c in changes])

    def WhatIf(self, request: pb.WhatIfRequest, context: grpc.ServicerContext) -> pb.WhatIfResponse:
        cdrs = _what_if_cdrs(request, self.desk.cdr_limits)
        plan_for = default_plan_for({a.key: a.tariff_plan for a in request.assignments}, request.default_tariff_plan)
        if cdrs is None:
            active, candidate, report = self.desk.what_if_period(
                current_principal(), request.tenant_id, request.candidate_version,
                from_ts(request.period_start, "period_start"), from_ts(request.period_end, "period_end"), plan_for)
        else:
            active, candidate, report = self.desk.what_if(current_principal(), request.tenant_id, request.candidate_version,
                                                          cdrs, plan_for)
        return what_if_pb(active, candidate, report)


def _what_if_cdrs(request: pb.WhatIfRequest, limits: CdrLimits) -> list[MediatedCdr] | None:
    """The request's CDRs, or None when it asks for the stored CDRs of a period; every bad field at once."""
    errors = ErrorList()
    if not request.candidate_version:
        errors.add("candidate_version", "must be set")
    by_period = request.HasField("period_start") or request.HasField("period_end")
    if by_period and request.cdrs:
        errors.add("period_start", "give either cdrs or a period of stored CDRs, not both")
    if by_period and not (request.HasField("period_start") and request.HasField("period_end")):
        errors.add("period_end" if request.HasField("period_start") else "period_start", "a period needs both ends")
    cdrs = [cdr_from_pb(c, f"cdrs[{i}]", errors, limits) for i, c in enumerate(request.cdrs)]
    errors.raise_if_any("invalid what-if request")
    return None if by_period else [c for c in cdrs if isinstance(c, MediatedCdr)]


def what_if_pb(active: int, candidate: int, report: WhatIfReport) -> pb.WhatIfResponse:
    return pb.WhatIfResponse(active_version=active, candidate_version=candidate, rejected=report.rejected, lines=[
        pb.WhatIfLine(tariff_plan=x.plan_id, service=CDR_SERVICES.proto_or_unspecified(x.service), cdrs=x.cdrs,
                      active=money(x.active_micros, x.currency), candidate=money(x.candidate_micros, x.currency),
                      difference=money(x.difference_micros, x.currency), active_unrated=x.active_unrated,
                      candidate_unrated=x.candidate_unrated)
        for x in report.lines])


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_PlanServiceServicer_to_server(PlanServicer(root.plans), server)
    return service_name(pb, "PlanService")
