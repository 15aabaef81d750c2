"""IssueDrafts names each draft once, over a real port on both databases: a repeated id used to take one invoice number
per mention (a gap in the series) and, for an account billed by e-mail, to fail on the mail outbox's key (INTERNAL).
Now a repeat is INVALID_ARGUMENT on ``invoice_ids[i]``, a list longer than the documented maximum is refused, and the
numbers stay gapless -- from the gRPC client and from ``rulebill bills issue``."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from clients.cli import main
from engine.billing.invoices import MAX_ISSUE_DRAFTS
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error

pytestmark = pytest.mark.integration
UTC = timezone.utc


def _drafts(s: BillingStack, *accounts: str) -> list[str]:
    bc = s.billing("mno")
    ids = []
    for account in accounts:
        bc.create_account(account_pb(account, delivery=pb.DELIVERY_EMAIL, email=f"{account.lower()}@example.org"))
        sub, _ = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
        bc.assign(account, sub, valid_from=datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
        s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
        assert list(bc.run("on_demand", account_ids=[account], review=True))[-1].drafts == 1
        ids.append(bc.list_invoices(account_id=account).invoices[0].invoice_id)
    return ids


def _gapless(s: BillingStack) -> list[str]:
    numbers = sorted(i.number for i in s.billing("mno").list_invoices(page_size=1000).invoices if re.fullmatch(r"RT-\d+", i.number))
    assert [int(n[3:]) for n in numbers] == list(range(1, len(numbers) + 1)), f"a gap in the invoice numbers: {numbers}"
    return numbers


def test_a_draft_named_twice_is_refused_and_numbers_stay_gapless(billing_stack: BillingStack,  # noqa: F811
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    s = billing_stack
    bc = s.billing("mno")
    a, b = _drafts(s, "ACC-TWICE-A", "ACC-TWICE-B")
    before = _gapless(s)
    err = rpc_error(lambda: bc.issue_drafts([a, b, a]), grpc.StatusCode.INVALID_ARGUMENT)
    assert list(field_violations(err)) == ["invoice_ids[2]"]
    code = main(["bills", "issue", b, b, "--server", s.address, "--token", s.token("mno")])
    out = capsys.readouterr()
    assert code == 2 and "invoice_ids[1]" in out.err, out
    err = rpc_error(lambda: bc.issue_drafts([a] + [f"inv_{k}" for k in range(MAX_ISSUE_DRAFTS)]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "invoice_ids" in field_violations(err)
    assert {bc.get_invoice(i).state for i in (a, b)} == {pb.INVOICE_STATE_DRAFT}, "a refused request issued something"
    assert _gapless(s) == before
    issued = bc.issue_drafts([a, b])
    assert [i.state for i in issued] == [pb.INVOICE_STATE_ISSUED] * 2
    after = _gapless(s)
    assert len(after) == len(before) + 2 and {i.number for i in issued} == set(after) - set(before)
