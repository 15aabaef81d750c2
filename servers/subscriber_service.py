"""SubscriberService: proto <-> domain only; the use cases live in engine.subscribers."""

from __future__ import annotations

import grpc

from billing.v1 import subscriber_pb2 as pb
from billing.v1 import subscriber_pb2_grpc as rpc
from engine.errors import InvalidArgument
from engine.model import NewSubscriber, PaymentType, Subscriber, SubscriberFilter, SubscriberStatus
from engine.paging import next_token, page_request
from engine.subscribers import SubscriberDesk
from servers.context import current_principal
from servers.convert import EnumMap, money, service_name, ts
from servers.root import Root

PAYMENT = EnumMap(pb.PaymentType, "PAYMENT_TYPE_", PaymentType)
STATUS = EnumMap(pb.SubscriberStatus, "SUBSCRIBER_STATUS_", SubscriberStatus)


def subscriber_pb(s: Subscriber) -> pb.Subscriber:
    return pb.Subscriber(
        subscriber_id=s.subscriber_id, tenant_id=s.tenant_id, msisdn=s.msisdn, imsi=s.imsi, billing_account=s.billing_account,
        payment_type=PAYMENT.proto(s.payment_type), status=STATUS.proto(s.status), tariff_plan=s.tariff_plan,
        create_time=ts(s.create_time), update_time=ts(s.update_time), activate_time=ts(s.activate_time),
        deactivate_time=ts(s.deactivate_time), barring_flags=list(s.barring_flags),
        credit_limit=None if s.credit_limit_micros is None else money(s.credit_limit_micros, s.credit_currency),
    )


class SubscriberServicer(rpc.SubscriberServiceServicer):
    def __init__(self, desk: SubscriberDesk) -> None:
        self.desk = desk

    def ProvisionSubscriber(self, request: pb.ProvisionSubscriberRequest, context: grpc.ServicerContext) -> pb.ProvisionSubscriberResponse:
        new = NewSubscriber(
            tenant_id=request.tenant_id, msisdn=request.msisdn, imsi=request.imsi, billing_account=request.billing_account,
            payment_type=PAYMENT.lenient(request.payment_type), tariff_plan=request.tariff_plan,
        )
        return pb.ProvisionSubscriberResponse(subscriber=subscriber_pb(self.desk.provision(current_principal(), new)))

    def GetSubscriber(self, request: pb.GetSubscriberRequest, context: grpc.ServicerContext) -> pb.GetSubscriberResponse:
        sub = self.desk.get(current_principal(), request.subscriber_id, request.msisdn)
        return pb.GetSubscriberResponse(subscriber=subscriber_pb(sub))

    def ListSubscribers(self, request: pb.ListSubscribersRequest, context: grpc.ServicerContext) -> pb.ListSubscribersResponse:
        page = page_request(request.page_size, request.page_token, "subscribers", str)
        flt = SubscriberFilter(
            tenant_ids={request.tenant_id} if request.tenant_id else None,
            status=STATUS.domain(request.status, "status", required=False),
            payment_type=PAYMENT.domain(request.payment_type, "payment_type", required=False),
            tariff_plan=request.tariff_plan,
            billing_account=request.billing_account,
            msisdn_prefix=request.msisdn_prefix.lstrip("+"),
        )
        items = self.desk.list(current_principal(), flt, page)
        return pb.ListSubscribersResponse(
            subscribers=[subscriber_pb(s) for s in items], next_page_token=next_token(items, page, lambda s: s.subscriber_id)
        )

    def _move(self, subscriber_id: str, event: str, reason: str = "") -> pb.Subscriber:
        return subscriber_pb(self.desk.transition(current_principal(), subscriber_id, event, reason))

    def ActivateSubscriber(self, request: pb.ActivateSubscriberRequest, context: grpc.ServicerContext) -> pb.ActivateSubscriberResponse:
        return pb.ActivateSubscriberResponse(subscriber=self._move(request.subscriber_id, "activate"))

    def SuspendSubscriber(self, request: pb.SuspendSubscriberRequest, context: grpc.ServicerContext) -> pb.SuspendSubscriberResponse:
        return pb.SuspendSubscriberResponse(subscriber=self._move(request.subscriber_id, "suspend", request.reason))

    def ReactivateSubscriber(self, request: pb.ReactivateSubscriberRequest,
                             context: grpc.ServicerContext) -> pb.ReactivateSubscriberResponse:
        return pb.ReactivateSubscriberResponse(subscriber=self._move(request.subscriber_id, "reactivate"))

    def DeactivateSubscriber(self, request: pb.DeactivateSubscriberRequest,
                             context: grpc.ServicerContext) -> pb.DeactivateSubscriberResponse:
        return pb.DeactivateSubscriberResponse(subscriber=self._move(request.subscriber_id, "deactivate", request.reason))

    def ChangeSubscriberPlan(self, request: pb.ChangeSubscriberPlanRequest,
                             context: grpc.ServicerContext) -> pb.ChangeSubscriberPlanResponse:
        sub = self.desk.change_plan(current_principal(), request.subscriber_id, request.tariff_plan)
        return pb.ChangeSubscriberPlanResponse(subscriber=subscriber_pb(sub))

    def SwapSubscriberSim(self, request: pb.SwapSubscriberSimRequest, context: grpc.ServicerContext) -> pb.SwapSubscriberSimResponse:
        sub = self.desk.swap_sim(current_principal(), request.subscriber_id, request.imsi, request.reason)
        return pb.SwapSubscriberSimResponse(subscriber=subscriber_pb(sub))

    def SetSubscriberBarring(self, request: pb.SetSubscriberBarringRequest,
                             context: grpc.ServicerContext) -> pb.SetSubscriberBarringResponse:
        sub = self.desk.set_barring(current_principal(), request.subscriber_id, request.flag, request.barred, request.reason)
        return pb.SetSubscriberBarringResponse(subscriber=subscriber_pb(sub))

    def SetSubscriberCreditLimit(self, request: pb.SetSubscriberCreditLimitRequest,
                                 context: grpc.ServicerContext) -> pb.SetSubscriberCreditLimitResponse:
        if not request.clear and not request.HasField("credit_limit"):
            raise InvalidArgument.field("credit_limit", "must be set (or set clear to remove the limit)")
        amount = None if request.clear else request.credit_limit.amount_micros
        sub = self.desk.set_credit_limit(current_principal(), request.subscriber_id, amount, request.credit_limit.currency)
        return pb.SetSubscriberCreditLimitResponse(subscriber=subscriber_pb(sub))


def register(server: grpc.Server, root: Root) -> str:
    rpc.add_SubscriberServiceServicer_to_server(SubscriberServicer(root.subscribers), server)
    return service_name(pb, "SubscriberService")
