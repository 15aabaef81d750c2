"""SubscriberService over the wire: the methods of engine.subscribers.SubscriberDesk."""

from __future__ import annotations

import grpc

from billing.v1 import common_pb2
from billing.v1 import subscriber_pb2 as pb
from billing.v1 import subscriber_pb2_grpc as rpc
from clients.services.base import Page, enum_number

TRANSITIONS = ("activate", "suspend", "reactivate", "deactivate")


class SubscriberClient:
    def __init__(self, channel: grpc.Channel) -> None:
        self.rpc = rpc.SubscriberServiceStub(channel)

    def provision(self, msisdn: str, imsi: str, billing_account: str, tariff_plan: str, payment_type: str = "postpaid",
                  tenant_id: str = "") -> pb.Subscriber:
        """``tenant_id`` "": the caller's own tenant."""
        return self.rpc.ProvisionSubscriber(pb.ProvisionSubscriberRequest(
            tenant_id=tenant_id, msisdn=msisdn, imsi=imsi, billing_account=billing_account, tariff_plan=tariff_plan,
            payment_type=enum_number(pb.PaymentType, "PAYMENT_TYPE_", payment_type))).subscriber

    def get(self, subscriber_id: str = "", msisdn: str = "") -> pb.Subscriber:
        return self.rpc.GetSubscriber(pb.GetSubscriberRequest(subscriber_id=subscriber_id, msisdn=msisdn)).subscriber

    def list(self, tenant_id: str = "", status: str = "", payment_type: str = "", tariff_plan: str = "", billing_account: str = "",
             msisdn_prefix: str = "", page_size: int = 0, page_token: str = "") -> Page[pb.Subscriber]:
        reply = self.rpc.ListSubscribers(pb.ListSubscribersRequest(
            page_size=page_size, page_token=page_token, tenant_id=tenant_id,
            status=enum_number(pb.SubscriberStatus, "SUBSCRIBER_STATUS_", status),
            payment_type=enum_number(pb.PaymentType, "PAYMENT_TYPE_", payment_type), tariff_plan=tariff_plan,
            billing_account=billing_account, msisdn_prefix=msisdn_prefix))
        return Page(list(reply.subscribers), reply.next_page_token)

    def transition(self, subscriber_id: str, event: str, reason: str = "") -> pb.Subscriber:
        """``event``: one of :data:`TRANSITIONS`."""
        if event == "activate":
            return self.rpc.ActivateSubscriber(pb.ActivateSubscriberRequest(subscriber_id=subscriber_id)).subscriber
        if event == "suspend":
            return self.rpc.SuspendSubscriber(pb.SuspendSubscriberRequest(subscriber_id=subscriber_id, reason=reason)).subscriber
        if event == "reactivate":
            return self.rpc.ReactivateSubscriber(pb.ReactivateSubscriberRequest(subscriber_id=subscriber_id)).subscriber
        if event == "deactivate":
            return self.rpc.DeactivateSubscriber(pb.DeactivateSubscriberRequest(subscriber_id=subscriber_id, reason=reason)).subscriber
        raise ValueError(f"unknown subscriber event {event!r}: expected one of {', '.join(TRANSITIONS)}")

    def change_plan(self, subscriber_id: str, tariff_plan: str) -> pb.Subscriber:
        return self.rpc.ChangeSubscriberPlan(pb.ChangeSubscriberPlanRequest(subscriber_id=subscriber_id, tariff_plan=tariff_plan)).subscriber

    def swap_sim(self, subscriber_id: str, imsi: str, reason: str = "") -> pb.Subscriber:
        return self.rpc.SwapSubscriberSim(pb.SwapSubscriberSimRequest(subscriber_id=subscriber_id, imsi=imsi, reason=reason)).subscriber

    def set_barring(self, subscriber_id: str, flag: str, barred: bool, reason: str = "") -> pb.Subscriber:
        return self.rpc.SetSubscriberBarring(pb.SetSubscriberBarringRequest(
            subscriber_id=subscriber_id, flag=flag, barred=barred, reason=reason)).subscriber

    def set_credit_limit(self, subscriber_id: str, amount_micros: int | None, currency: str = "") -> pb.Subscriber:
        """``amount_micros`` None clears the limit."""
        limit = None if amount_micros is None else common_pb2.Money(amount_micros=amount_micros, currency=currency)
        return self.rpc.SetSubscriberCreditLimit(pb.SetSubscriberCreditLimitRequest(
            subscriber_id=subscriber_id, credit_limit=limit, clear=amount_micros is None)).subscriber
