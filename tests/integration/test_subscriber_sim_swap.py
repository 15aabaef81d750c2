"""SIM swap (SubscriberService.SwapSubscriberSim, ``rulebill subscribers swap-sim``) over a real port, on SQLite and
PostgreSQL: the subscriber keeps its number, plan and account under the new IMSI, the old IMSI is free at once, the
swap is audited with its reason, and the sample rule CR_MNO_SIM_SWAP charges a replacement SIM on the next bill."""

from __future__ import annotations

from datetime import datetime, timezone

import grpc
import pytest

from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, precondition_reason, rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode


def test_a_swapped_sim_keeps_the_number_frees_the_old_imsi_and_is_charged_once(billing_stack: BillingStack) -> None:
    s = billing_stack
    mno = s.billing("mno")
    mno.create_account(account_pb("MNO-SWAP"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_M", datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    mno.assign("MNO-SWAP", sub)
    subs = s.client("mno", "csr").subscribers
    before = subs.get(subscriber_id=sub)
    s.at(datetime(2026, 3, 9, 10, 0, tzinfo=UTC))
    swapped = subs.swap_sim(sub, "208019999900001", "lost phone")
    assert (swapped.imsi, swapped.msisdn, swapped.tariff_plan, swapped.status) == ("208019999900001", msisdn, "TP_SMART_M", before.status)
    assert subs.get(msisdn=msisdn).imsi == "208019999900001"

    # the old IMSI is free: a new subscriber may take it; the new one is held
    other = subs.provision("33699900001", before.imsi, "x", "TP_SMART_S", "postpaid")
    assert other.imsi == before.imsi
    err = rpc_error(lambda: subs.swap_sim(other.subscriber_id, "208019999900001"), C.ALREADY_EXISTS)
    assert "208019999900001" in (err.details() or "")
    # a swap to the SIM it already has is no swap
    err = rpc_error(lambda: subs.swap_sim(sub, "208019999900001"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SAME_SIM"

    entries = s.client("mno").audit.list(object_type="subscriber", object_id=sub).items
    swaps = [e for e in entries if e.action == "subscriber.swap_sim"]
    assert len(swaps) == 1 and "lost phone" in swaps[0].after_json and before.imsi in swaps[0].before_json

    s.at(datetime(2026, 4, 2, 8, 0, tzinfo=UTC))
    list(mno.run("on_demand", account_ids=["MNO-SWAP"]))
    bill = mno.get_invoice(mno.list_invoices(account_id="MNO-SWAP").invoices[0].invoice_id)
    one_off = [(ln.item_id, ln.amount.amount_micros) for ln in bill.lines if ln.charge_type == "one_off"]
    assert one_off == [("OC_SIM", 5_000_000)]          # plans/billing/mno.yaml: SIM card 5.00, once for one swap


def test_bad_swaps_are_refused_with_their_field_and_change_nothing(billing_stack: BillingStack) -> None:
    s = billing_stack
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 5, 4, 8, 0, tzinfo=UTC))
    subs = s.client("mno").subscribers
    imsi = subs.get(subscriber_id=sub).imsi
    err = rpc_error(lambda: subs.swap_sim(sub, "2080112", "x" * 501), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"imsi", "reason"}
    rpc_error(lambda: subs.swap_sim("sub_missing", "208019999900002"), C.NOT_FOUND)
    # another tenant's subscriber is reported as missing, and stays as it was
    rpc_error(lambda: s.client("mvno-alpha").subscribers.swap_sim(sub, "208019999900003"), C.NOT_FOUND)
    # a read-only role may not swap
    rpc_error(lambda: s.client("mno", "auditor").subscribers.swap_sim(sub, "208019999900004"), C.PERMISSION_DENIED)
    subs.transition(sub, "deactivate")
    err = rpc_error(lambda: subs.swap_sim(sub, "208019999900005"), C.FAILED_PRECONDITION)
    assert precondition_reason(err) == "SUBSCRIBER_STATE"
    assert subs.get(subscriber_id=sub).imsi == imsi
    assert not [e for e in s.client("mno").audit.list(object_type="subscriber", object_id=sub).items if e.action == "subscriber.swap_sim"]


def test_a_sim_is_swapped_from_the_command_line(billing_stack: BillingStack, capsys: pytest.CaptureFixture[str]) -> None:
    from clients.cli import main

    s = billing_stack
    sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 6, 4, 8, 0, tzinfo=UTC))
    args = ["subscribers", "swap-sim", sub, "--imsi", "208019999900006", "--reason", "damaged", "--server", s.address,
            "--token", s.token("mno", "csr")]
    assert main(args) == 0
    assert "208019999900006" in capsys.readouterr().out
    assert main(["subscribers", "swap-sim", sub, "--imsi", "12", "--server", s.address, "--token", s.token("mno", "csr")]) == 2
    assert "imsi" in capsys.readouterr().err
    assert s.client("mno").subscribers.get(subscriber_id=sub).imsi == "208019999900006"
