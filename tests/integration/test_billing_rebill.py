"""A re-bill after re-rating, end to end over real ports on SQLite and PostgreSQL: CDRs stored as mediation stores
them, rated by RerateService, billed; a new plan set version re-rates them (RerateService); BillingService.RebillRerated
finds the issued invoice whose CDRs changed and issues a credit note and a new invoice (never an edit), both queued
for e-mail and delivered like invoices; a second call re-bills nothing; ``rulebill rerate --rebill`` does the same from
the command line.  Every document is validated against the UBL XSD and the EN 16931 Schematron when the module ends."""

from __future__ import annotations

import email
import email.policy
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import grpc
import pytest

from billing.v1 import billing_pb2 as pb
from billing.v1 import plan_pb2 as ppb
from billing.v1 import plan_pb2_grpc as prpc
from billing.v1 import rerate_pb2 as xpb
from billing.v1 import rerate_pb2_grpc as xrpc
from clients.cli import main
from servers.billing_mail import mailer_from
from tests.integration.billing_support import BillingStack, account_pb, billing_stack  # noqa: F401 - fixture
from tests.integration.helpers import field_violations, rpc_error
from tests.integration.test_plans_rating import sample_files, stamp
from tests.integration.test_rating_stored import store_cdrs, voice

pytestmark = pytest.mark.integration
UTC = timezone.utc
C = grpc.StatusCode
FEB, MAR = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)


def rerate(s: BillingStack, version: int = 0) -> xpb.RerateSummary:
    replies = list(s.client("mno").stub(xrpc.RerateServiceStub).Rerate(xpb.RerateRequest(
        period_start=stamp(FEB), period_end=stamp(MAR), plan_set_version=version)))
    return replies[-1].summary


def usage_total(inv: pb.Invoice) -> int:
    return sum(ln.amount.amount_micros for ln in inv.lines if ln.charge_type == "usage")


def test_re_rating_a_billed_period_re_bills_it_with_a_credit_note_and_a_new_invoice(  # noqa: F811
        billing_stack: BillingStack, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    s = billing_stack
    bc = s.billing("mno")
    bc.create_account(account_pb("ACC-RR", delivery=pb.DELIVERY_EMAIL, email="rr@example.org"))
    bc.create_account(account_pb("ACC-SAME"))
    sub, msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-RR", sub)
    other, other_msisdn = s.subscriber("mno", "TP_SMART_S", datetime(2026, 2, 1, 8, 0, tzinfo=UTC))
    bc.assign("ACC-SAME", other)
    # international calls (re-priced below) for ACC-RR, national ones inside the bundle for ACC-SAME
    store_cdrs(s.root, [voice(i, msisdn, "442071234567", 120, datetime(2026, 2, 10 + i, 10, 0, tzinfo=UTC)) for i in range(3)]
               + [voice(9, other_msisdn, "33698765432", 300, datetime(2026, 2, 11, 10, 0, tzinfo=UTC))])
    assert rerate(s).rated == 4                                     # rated as mediation's stored CDRs are
    s.at(datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    assert list(bc.run("manual", cycle_date=date(2026, 3, 1)))[-1].issued == 2
    inv = bc.get_invoice(bc.list_invoices(account_id="ACC-RR").invoices[0].invoice_id)
    same = bc.list_invoices(account_id="ACC-SAME").invoices[0]
    assert usage_total(inv) > 0

    # nothing re-rated yet: nothing to re-bill
    assert bc.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "probe", dry_run=True) == []
    # bad requests name their fields; a product manager may look but not re-bill
    err = rpc_error(lambda: bc.rebill_rerated(date(2026, 3, 1), date(2026, 2, 1), ""), C.INVALID_ARGUMENT)
    assert {"period_end", "reason"} <= set(field_violations(err))
    err = rpc_error(lambda: bc.rpc.RebillRerated(pb.RebillReratedRequest(period_start="2026-02-30", reason="x")), C.INVALID_ARGUMENT)
    assert set(field_violations(err)) == {"period_start", "period_end"}
    pm = s.billing("mno", "product_manager")
    rpc_error(lambda: pm.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "x"), C.PERMISSION_DENIED)

    # the international rate doubles in a new plan set version; re-rating February changes the ledger, not the invoice
    plans = s.client("mno").stub(prpc.PlanServiceStub)
    v2 = plans.UploadPlanSet(ppb.UploadPlanSetRequest(files=sample_files({
        "rates/retail/RT_VOICE_INTERNATIONAL.yaml": ('price: "1.00"', 'price: "2.00"')}))).version
    summary = rerate(s, v2.version)
    assert summary.charged_after[0].amount_micros > summary.charged_before[0].amount_micros
    assert bc.get_invoice(inv.invoice_id).totals == inv.totals     # an issued invoice is never edited

    [would] = pm.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "probe", dry_run=True)   # previews are a product manager's
    assert would.replaced.invoice_id == inv.invoice_id and not would.invoice.number
    assert would.usage_before.amount_micros == usage_total(inv) < would.usage_after.amount_micros

    [done] = bc.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "International rate corrected (re-rated)")
    note, new = done.credit_note, done.invoice
    assert note.kind == pb.INVOICE_KIND_CREDIT_NOTE and note.number.startswith("RT-CN-") and note.reference_id == inv.invoice_id
    assert note.totals.tax_inclusive == inv.totals.tax_inclusive                                # credits all of it
    assert new.kind == pb.INVOICE_KIND_INVOICE and new.reference_id == inv.invoice_id and new.number > inv.number
    assert (new.period_start, new.period_end) == (inv.period_start, inv.period_end)
    assert usage_total(new) == would.usage_after.amount_micros                               # the re-rated charges
    assert bc.get_invoice(inv.invoice_id).state == pb.INVOICE_STATE_CREDITED
    assert bc.get_invoice(same.invoice_id).state == pb.INVOICE_STATE_ISSUED                     # its CDRs did not change
    assert "International rate corrected" in bc.download(note.invoice_id, "html")[0].decode()
    # once: the re-billed invoice is credited and the new one froze the new charges
    assert bc.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "again") == []

    # delivered like invoices: the credit note and the new invoice go out by e-mail (the invoice of 2 March too)
    desk = s.desk()
    desk.mailer = mailer_from((tmp_path / "mail").as_uri())
    try:
        desk.scheduler_tick()
    finally:
        desk.mailer = None
    sent = {p.stem: email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in (tmp_path / "mail").glob("*.eml")}
    assert {inv.number, note.number, new.number} <= set(sent)
    files = {part.get_filename() for part in sent[note.number].iter_attachments()}  # type: ignore[attr-defined]
    assert f"{note.number}.xml" in files and note.number in str(sent[note.number]["Subject"])

    # the command line: re-rating back to the version in force re-bills the new invoice in turn
    code = main(["rerate", "--from", "2026-02-01", "--to", "2026-03-01", "--rebill", "Back to the published rate",
                 "--server", s.address, "--token", s.token("mno")])
    out = capsys.readouterr().out
    assert code == 0 and f"{new.number}: usage" in out and "credit note RT-CN-" in out and "1 re-billed" in out, out
    latest = [i for i in bc.list_invoices(account_id="ACC-RR", page_size=100).invoices
              if i.state == pb.INVOICE_STATE_ISSUED and i.kind == pb.INVOICE_KIND_INVOICE]
    assert len(latest) == 1 and usage_total(bc.get_invoice(latest[0].invoice_id)) == usage_total(inv)
    code = main(["invoices", "rebill-rerated", "--from", "2026-02-01", "--to", "2026-03-01", "--reason", "x", "--dry-run",
                 "--server", s.address, "--token", s.token("mno")])
    assert code == 0 and "0 invoice(s) with re-rated CDRs" in capsys.readouterr().out
    err = rpc_error(lambda: bc.rebill_rerated(date(2026, 2, 1), date(2026, 2, 1) + timedelta(days=400), "x"), C.INVALID_ARGUMENT)
    assert "186 days" in field_violations(err)["period_end"]                  # bounded work per request

    # the store hands over only the live invoices whose period touches the re-rated days (a day of margin), not every
    # invoice the tenant ever had: credited ones and other months are not read at all
    read: list[str] = []
    desk, real = s.root.billing.invoices, s.root.billing.invoices._uow

    def watched(*args, **kw):  # type: ignore[no-untyped-def]
        unit = real(*args, **kw)
        listed = unit.list_invoices
        unit.list_invoices = lambda flt, after, limit: [read.append(i.invoice_id) or i for i in listed(flt, after, limit)]
        return unit

    live = {pb.INVOICE_STATE_ISSUED, pb.INVOICE_STATE_PARTIALLY_PAID, pb.INVOICE_STATE_PAID, pb.INVOICE_STATE_OVERDUE}
    every = bc.list_invoices(page_size=1000).invoices
    touching = sorted(i.invoice_id for i in every if i.tenant_id == "mno" and i.kind == pb.INVOICE_KIND_INVOICE and i.state in live
                      and i.period_end >= "2026-01-31" and i.period_start <= "2026-03-02")
    assert touching and len(touching) < len(every)
    desk._uow = watched
    try:
        assert bc.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "x", dry_run=True) == []
        assert sorted(read) == touching
        read.clear()
        assert bc.rebill_rerated(date(2025, 6, 1), date(2025, 7, 1), "x", dry_run=True) == [] and read == []
    finally:
        desk._uow = real


def test_a_re_bill_is_tenant_scoped(billing_stack: BillingStack) -> None:  # noqa: F811
    alpha = billing_stack.billing("mvno-alpha")
    # an MVNO admin cannot name the operator's tenant
    rpc_error(lambda: alpha.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "x", tenant_id="mno"), C.PERMISSION_DENIED)
    assert alpha.rebill_rerated(date(2026, 2, 1), date(2026, 3, 1), "x", dry_run=True) == []
