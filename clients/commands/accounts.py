"""``rulebill accounts create|update|show|list|assign|charge|buy-add-on|add-ons|cancel-add-on``: billing accounts, their
subscribers, one-off charges, add-on bundles (bought, listed, cancelled)."""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import date, datetime, timezone
from typing import Any

from billing.v1 import billing_pb2 as pb
from clients.commandkit import client_flags, client_from, paging
from clients.output import emit, emit_one, print_table
from engine.money import AmountError, format_amount, parse_amount

COLUMNS = ("tenant_id", "account_id", "name", "currency", "anchor_day", "time_zone", "status")
ADD_ON_COLUMNS = ("purchase_id", "bundle_id", "purchased", "valid_until", "state", "fee", "units", "used", "refund", "request_id")
DELIVERY = {"email": pb.DELIVERY_EMAIL, "download": pb.DELIVERY_DOWNLOAD}


def money(text: str) -> int:
    try:
        return parse_amount(text)
    except AmountError as exc:
        raise SystemExit(f"--amount: {exc}") from None


def _account_flags(p: argparse.ArgumentParser, create: bool) -> None:
    p.add_argument("account_id")
    p.add_argument("--tenant", default="", help="default: your own tenant")
    p.add_argument("--name", required=create, help="the payer's name")
    p.add_argument("--street", action="append", help="address line (repeat for up to 3)")
    p.add_argument("--city")
    p.add_argument("--postal-code", default="")
    p.add_argument("--country", help="ISO 3166-1 alpha-2, e.g. FR")
    p.add_argument("--currency")
    p.add_argument("--anchor-day", type=int, help="1..31: the day of the month the bill cycle starts (default 1)")
    p.add_argument("--time-zone", help="IANA, e.g. Europe/Paris (default)")
    p.add_argument("--language", choices=("en", "fr", "de"))
    p.add_argument("--delivery", choices=tuple(DELIVERY))
    p.add_argument("--email")
    p.add_argument("--vat-id")
    p.add_argument("--company-id")
    p.add_argument("--terms-days", type=int, help="payment terms in days")
    p.add_argument("--tax-exemption", help="a named exemption of the country's tax table, e.g. reverse_charge")
    p.add_argument("--discount-plan", action="append", help="account-level period discount (DP_...), repeatable")
    p.add_argument("--buyer-reference")
    client_flags(p)


def _account(args: argparse.Namespace) -> tuple[pb.Account, list[str]]:
    fields: list[str] = []
    m = pb.Account(account_id=args.account_id, tenant_id=args.tenant)
    simple = {"name": "name", "currency": "currency", "time_zone": "time_zone", "language": "language", "email": "email",
              "vat_id": "vat_id", "company_id": "company_id", "tax_exemption": "tax_exemption", "buyer_reference": "buyer_reference"}
    for attr, field in simple.items():
        value = getattr(args, attr)
        if value is not None:
            setattr(m, field, value)
            fields.append(field)
    if args.anchor_day is not None:
        m.anchor_day = args.anchor_day
        fields.append("anchor_day")
    if args.terms_days is not None:
        m.payment_terms_days = args.terms_days
        fields.append("payment_terms_days")
    if args.delivery:
        m.delivery = DELIVERY[args.delivery]
        fields.append("delivery")
    if args.discount_plan:
        m.discount_plans.extend(args.discount_plan)
        fields.append("discount_plans")
    if args.street or args.city or args.country:
        m.address.CopyFrom(pb.PostalAddress(lines=args.street or [], city=args.city or "", postal_code=args.postal_code,
                                            country=(args.country or "").upper()))
        fields.append("address")
    return m, fields


def _add_on_row(p: pb.AddOnPurchase) -> dict[str, str]:
    def when(t: Any) -> str:
        return t.ToDatetime(tzinfo=timezone.utc).strftime("%Y-%m-%d %H:%M") if t.seconds or t.nanos else ""

    # a monthly add-on a plan change or a deactivation stopped says so (its cancel request id: engine.billing.addons.StopAddOns)
    why = p.cancel_request_id.replace("_", " ") if p.cancel_request_id in ("plan_change", "deactivation") else "cancelled"
    cancelled = f" ({why} {when(p.cancel_time)})" if p.HasField("cancel_time") else ""
    return {"purchase_id": p.purchase_id, "bundle_id": p.bundle_id, "purchased": when(p.purchase_time),
            "valid_until": when(p.valid_until) or ("monthly" if p.recurrence == "monthly" else ""),
            "state": pb.AddOnState.Name(p.state).removeprefix("ADD_ON_STATE_") + cancelled,
            "fee": f"{format_amount(p.fee.amount_micros)} {p.fee.currency}", "units": f"{p.allowance} {p.unit}",
            "used": str(p.units_used), "refund": f"{format_amount(p.refund.amount_micros)} ({p.refund_policy})",
            "request_id": p.request_id}


def run(args: argparse.Namespace) -> int:
    with client_from(args) as rb:
        bc = rb.billing
        if args.action == "list":
            reply = bc.list_accounts(args.tenant, args.page_size, args.page_token)
            emit(reply.accounts, COLUMNS, args.json)
            if reply.next_page_token and not args.json:
                print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
        elif args.action == "create":
            emit_one(bc.create_account(_account(args)[0]), args.json)
        elif args.action == "update":
            m, fields = _account(args)
            if not fields:
                raise SystemExit("nothing to change: give at least one field")
            emit_one(bc.update_account(m, fields), args.json)
        elif args.action == "show":
            reply = bc.get_account(args.account_id, args.tenant)
            emit_one(reply.account, args.json)
            if not args.json:
                for a in reply.assignments:
                    until = a.valid_to.ToDatetime().isoformat() if a.HasField("valid_to") else "now"
                    print(f"  subscriber {a.subscriber_id} +{a.msisdn} from {a.valid_from.ToDatetime().isoformat()} until {until}")
        elif args.action == "assign":
            when = datetime.fromisoformat(args.since).replace(tzinfo=timezone.utc) if args.since else None
            emit_one(bc.assign(args.account_id, args.subscriber_id, when, args.tenant), args.json)
        elif args.action == "charge":
            amount = money(args.amount) if args.amount else None
            emit_one(bc.add_charge(args.account_id, args.code, amount, args.currency, args.description, args.subscriber,
                                   date.fromisoformat(args.date) if args.date else None, args.tenant), args.json)
        elif args.action == "buy-add-on":
            reply = bc.buy_add_on(args.subscriber_id, args.bundle_id, args.request_id or f"cli-{uuid.uuid4().hex}")
            emit_one(reply.purchase, args.json)
            if not reply.bought and not args.json:
                print(f"request {reply.purchase.request_id} had bought it already: nothing bought again", file=sys.stderr)
        elif args.action == "add-ons":
            listed = bc.list_add_ons(args.subscriber_id, args.page_size, args.page_token)
            if args.json:
                emit(listed.purchases, ADD_ON_COLUMNS, True)
            else:
                print_table([_add_on_row(p) for p in listed.purchases], ADD_ON_COLUMNS)
                if listed.next_page_token:
                    print(f"next page: --page-token {listed.next_page_token}", file=sys.stderr)
        elif args.action == "cancel-add-on":
            done = bc.cancel_add_on(args.purchase_id, args.request_id or f"cli-{uuid.uuid4().hex}")
            if args.json:
                emit_one(done.purchase, True)
            else:
                print_table([_add_on_row(done.purchase)], ADD_ON_COLUMNS)
            if not done.cancelled and not args.json:
                print(f"request {done.purchase.cancel_request_id} had cancelled it already: nothing cancelled again", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("accounts", help="billing accounts: payer, cycle, subscribers, one-off charges")
    s = p.add_subparsers(dest="action", required=True)
    q = s.add_parser("list", help="billing accounts"); q.add_argument("--tenant", default=""); client_flags(q); paging(q)
    _account_flags(s.add_parser("create", help="a billing account"), create=True)
    _account_flags(s.add_parser("update", help="change the given fields"), create=False)
    q = s.add_parser("show", help="one billing account"); q.add_argument("account_id"); q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("assign", help="bill a subscriber to the account (it leaves its previous account)")
    q.add_argument("account_id"); q.add_argument("subscriber_id"); q.add_argument("--since", help="UTC time, default now")
    q.add_argument("--tenant", default=""); client_flags(q)
    q = s.add_parser("charge", help="a one-off charge of the tenant's catalogue (OC_ACTIVATION ...)")
    q.add_argument("account_id"); q.add_argument("code"); q.add_argument("--amount", help="default: the catalogue's amount")
    q.add_argument("--currency", default="", help="the amount's currency, default the account's (another is refused)")
    q.add_argument("--description", default=""); q.add_argument("--subscriber", default="")
    q.add_argument("--date", help="YYYY-MM-DD, default today in the account's time zone"); q.add_argument("--tenant", default="")
    client_flags(q)
    q = s.add_parser("buy-add-on", help="buy a bundle the subscriber's plan offers (add_ons): a one_off one's units now, its fee on the "
                                        "next bill; a monthly one's every bill cycle until cancelled, its fee per cycle")
    q.add_argument("subscriber_id"); q.add_argument("bundle_id")
    q.add_argument("--request-id", default="", help="the purchase's id: the same id again buys nothing more (default: a new one)")
    client_flags(q)
    q = s.add_parser("add-ons", help="a subscriber's add-on purchases: state, validity, fee, units used, refund")
    q.add_argument("subscriber_id"); client_flags(q); paging(q)
    q = s.add_parser("cancel-add-on", help="cancel an add-on purchase: a one-off's units stop now, the bundle's refund policy credits "
                                           "the account; a monthly one stops at the cycle's end (refund none) or now (prorated)")
    q.add_argument("purchase_id")
    q.add_argument("--request-id", default="", help="the cancel's id: the same id again cancels nothing more (default: a new one)")
    client_flags(q)
    p.set_defaults(func=run)
