"""The `rulebill` command line.

Server-side commands: serve, db upgrade, bootstrap.  Client commands reach the
server found by --server / RULEBILL_SERVER / settings (default 127.0.0.1:50051)
with the token from --token / RULEBILL_TOKEN / the bootstrap credential file.
Area commands (plans, replay, mediate, tap3, vouchers ...) live in clients/commands/.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from typing import Any, Callable

import grpc

from clients.client import RulebillClient, connect, describe_error, find_server
from clients.commandkit import client_flags as _client_flags
from clients.commandkit import paging as _paging
from clients.output import emit, emit_one

AREA_COMMANDS = ("plans", "replay", "mediate", "tap3", "vouchers", "rating", "accounts", "bills", "invoices")


def _client(args: argparse.Namespace) -> RulebillClient:
    return connect(args.server, args.token)


# --- server side -------------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from engine.settings import load_settings
    from servers.app import serve

    settings = load_settings()
    if args.listen:
        settings = settings.with_overrides(listen_address=args.listen)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from engine.settings import load_settings
    from store.migrate import current_heads, upgrade

    url = load_settings().effective_database_url
    upgrade(url)
    print(f"database at revision(s): {', '.join(sorted(current_heads(url)))}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from engine.settings import load_settings
    from servers.app import bootstrap

    result = bootstrap(load_settings(), samples=not args.no_samples)
    print(f"operator {result['operator']} ready; MVNOs created: {', '.join(result['mvnos_created']) or 'none (already there)'}")
    if "plan_set_version" in result:
        state = "activated now" if result.get("plan_set_activated") else "already active"
        print(f"plan set from plans/: version {result['plan_set_version']} ({state})")
    print(f"bootstrap admin credential: {result['token_file']}" + (" (new)" if result["token_written"] else " (kept)"))
    if "billing_samples" in result:
        samples = result["billing_samples"]
        print("sample billing accounts: " + (", ".join(samples) + " (try: rulebill bills preview ACC-1001)" if isinstance(samples, list)
                                             else "already there"))
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = find_server(args.server)
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(json.dumps({"server": address, "status": status}) if args.json else f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


# --- tenants ---------------------------------------------------------------------------------

TENANT_COLUMNS = ("tenant_id", "display_name", "kind", "status", "parent_tenant_id", "currency")


def cmd_tenants(args: argparse.Namespace) -> int:
    from billing.v1 import tenant_pb2 as pb

    with _client(args) as rb:
        if args.action == "list":
            reply = rb.tenants.ListTenants(pb.ListTenantsRequest(page_size=args.page_size, page_token=args.page_token))
            emit(reply.tenants, TENANT_COLUMNS, args.json)
            if reply.next_page_token and not args.json:
                print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
            return 0
        if args.action == "show":
            reply = rb.tenants.GetTenant(pb.GetTenantRequest(tenant_id=args.tenant_id))
        elif args.action == "create":
            reply = rb.tenants.CreateTenant(pb.CreateTenantRequest(tenant_id=args.tenant_id, display_name=args.name, currency=args.currency))
        elif args.action == "suspend":
            reply = rb.tenants.SuspendTenant(pb.SuspendTenantRequest(tenant_id=args.tenant_id, reason=args.reason))
        else:
            reply = rb.tenants.ReactivateTenant(pb.ReactivateTenantRequest(tenant_id=args.tenant_id))
        emit_one(reply.tenant, args.json)
    return 0


# --- subscribers -----------------------------------------------------------------------------

SUB_COLUMNS = ("subscriber_id", "tenant_id", "msisdn", "imsi", "status", "payment_type", "tariff_plan", "billing_account")


def cmd_subscribers(args: argparse.Namespace) -> int:
    from billing.v1 import subscriber_pb2 as pb

    payment = {"postpaid": pb.PAYMENT_TYPE_POSTPAID, "prepaid": pb.PAYMENT_TYPE_PREPAID}
    with _client(args) as rb:
        s = rb.subscribers
        if args.action == "list":
            status = pb.SubscriberStatus.Value(f"SUBSCRIBER_STATUS_{args.status.upper()}") if args.status else 0
            reply = s.ListSubscribers(
                pb.ListSubscribersRequest(
                    page_size=args.page_size, page_token=args.page_token, tenant_id=args.tenant, status=status,
                    tariff_plan=args.plan or "", msisdn_prefix=args.msisdn_prefix or "",
                )
            )
            emit(reply.subscribers, SUB_COLUMNS, args.json)
            if reply.next_page_token and not args.json:
                print(f"next page: --page-token {reply.next_page_token}", file=sys.stderr)
            return 0
        if args.action == "provision":
            reply = s.ProvisionSubscriber(
                pb.ProvisionSubscriberRequest(
                    tenant_id=args.tenant, msisdn=args.msisdn, imsi=args.imsi, billing_account=args.account,
                    payment_type=payment[args.payment], tariff_plan=args.plan,
                )
            )
        elif args.action == "show":
            reply = s.GetSubscriber(pb.GetSubscriberRequest(subscriber_id="" if args.who.isdigit() or args.who.startswith("+") else args.who,
                                                            msisdn=args.who if args.who.isdigit() or args.who.startswith("+") else ""))
        elif args.action == "change-plan":
            reply = s.ChangeSubscriberPlan(pb.ChangeSubscriberPlanRequest(subscriber_id=args.subscriber_id, tariff_plan=args.plan))
        elif args.action in ("bar", "unbar"):
            reply = s.SetSubscriberBarring(pb.SetSubscriberBarringRequest(subscriber_id=args.subscriber_id, flag=args.flag,
                                                                          barred=args.action == "bar", reason=args.reason))
        elif args.action == "credit-limit":
            from billing.v1 import common_pb2
            from engine.money import AmountError, parse_amount

            try:
                micros = 0 if args.clear else parse_amount(args.amount)
            except AmountError as exc:
                raise SystemExit(f"--amount: {exc}") from None
            limit = None if args.clear else common_pb2.Money(amount_micros=micros, currency=args.currency.upper())
            reply = s.SetSubscriberCreditLimit(pb.SetSubscriberCreditLimitRequest(subscriber_id=args.subscriber_id, credit_limit=limit,
                                                                                  clear=args.clear))
        else:
            method = {"activate": "ActivateSubscriber", "suspend": "SuspendSubscriber", "reactivate": "ReactivateSubscriber",
                      "deactivate": "DeactivateSubscriber"}[args.action]
            request_type = getattr(pb, f"{method}Request")
            fields: dict[str, Any] = {"subscriber_id": args.subscriber_id}
            if "reason" in request_type.DESCRIPTOR.fields_by_name:
                fields["reason"] = args.reason
            reply = getattr(s, method)(request_type(**fields))
        emit_one(reply.subscriber, args.json)
    return 0


# --- tokens and audit -------------------------------------------------------------------------

TOKEN_COLUMNS = ("token_id", "subject", "tenant_id", "role", "expire_time", "revoke_time")


def cmd_tokens(args: argparse.Namespace) -> int:
    from billing.v1 import token_pb2 as pb

    with _client(args) as rb:
        if args.action == "issue":
            reply = rb.tokens.IssueToken(
                pb.IssueTokenRequest(subject=args.subject, tenant_id=args.tenant, role=pb.Role.Value(f"ROLE_{args.role.upper()}"),
                                     ttl_seconds=args.ttl, privileges=args.privilege or [])
            )
            if args.json:
                emit_one(reply, True)
            else:
                emit_one(reply.token, False)
                print(f"secret (shown once, store it safely): {reply.secret}")
        elif args.action == "revoke":
            emit_one(rb.tokens.RevokeToken(pb.RevokeTokenRequest(token_id=args.token_id)).token, args.json)
        elif args.action == "whoami":
            emit_one(rb.tokens.WhoAmI(pb.WhoAmIRequest()).token, args.json)
        else:
            reply = rb.tokens.ListTokens(pb.ListTokensRequest(tenant_id=args.tenant, include_revoked=args.all, page_size=args.page_size))
            emit(reply.tokens, TOKEN_COLUMNS, args.json)
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from billing.v1 import audit_pb2 as pb

    with _client(args) as rb:
        reply = rb.audit.ListAuditEntries(
            pb.ListAuditEntriesRequest(object_type=args.object_type, object_id=args.object_id, tenant_id=args.tenant,
                                       page_size=args.page_size, page_token=args.page_token)
        )
        emit(reply.entries, ("sequence", "time", "subject", "tenant_id", "action", "object_type", "object_id", "after_json"), args.json)
    return 0


# --- parser -----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rulebill", description="Rulebill billing platform")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="run the gRPC server")
    p.add_argument("--listen", help="address to listen on (default from settings: 127.0.0.1:50051)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("db", help="database schema")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply all migrations").set_defaults(func=cmd_db_upgrade)

    p = sub.add_parser("bootstrap", help="seed the operator and MVNOs from plans/, sample billing accounts, and write the admin credential")
    p.add_argument("--no-samples", action="store_true", help="skip the sample billing accounts of plans/billing/samples.yaml")
    p.set_defaults(func=cmd_bootstrap)

    p = sub.add_parser("health", help="ask the server's standard health service")
    p.add_argument("--server")
    p.add_argument("--service", default="")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("tenants", help="the MNO and its MVNOs")
    tsub = p.add_subparsers(dest="action", required=True)
    q = tsub.add_parser("list"); _client_flags(q); _paging(q)
    q = tsub.add_parser("show"); q.add_argument("tenant_id"); _client_flags(q)
    q = tsub.add_parser("create", help="create an MVNO")
    q.add_argument("tenant_id"); q.add_argument("--name", required=True); q.add_argument("--currency", default="EUR"); _client_flags(q)
    q = tsub.add_parser("suspend"); q.add_argument("tenant_id"); q.add_argument("--reason", default=""); _client_flags(q)
    q = tsub.add_parser("reactivate"); q.add_argument("tenant_id"); _client_flags(q)
    p.set_defaults(func=cmd_tenants)

    p = sub.add_parser("subscribers", help="provision and manage subscribers")
    ssub = p.add_subparsers(dest="action", required=True)
    q = ssub.add_parser("provision")
    q.add_argument("--msisdn", required=True); q.add_argument("--imsi", required=True); q.add_argument("--account", required=True)
    q.add_argument("--plan", required=True); q.add_argument("--payment", choices=("postpaid", "prepaid"), default="postpaid")
    q.add_argument("--tenant", default="", help="default: your own tenant"); _client_flags(q)
    q = ssub.add_parser("show", help="by subscriber id or MSISDN"); q.add_argument("who"); _client_flags(q)
    q = ssub.add_parser("list"); q.add_argument("--tenant", default=""); q.add_argument("--status"); q.add_argument("--plan")
    q.add_argument("--msisdn-prefix"); _client_flags(q); _paging(q)
    for action in ("activate", "suspend", "reactivate", "deactivate"):
        q = ssub.add_parser(action); q.add_argument("subscriber_id"); q.add_argument("--reason", default=""); _client_flags(q)
    q = ssub.add_parser("change-plan"); q.add_argument("subscriber_id"); q.add_argument("--plan", required=True); _client_flags(q)
    for action in ("bar", "unbar"):
        q = ssub.add_parser(action, help=f"{'set' if action == 'bar' else 'clear'} a barring flag (e.g. bar_international)")
        q.add_argument("subscriber_id"); q.add_argument("--flag", required=True); q.add_argument("--reason", default=""); _client_flags(q)
    q = ssub.add_parser("credit-limit", help="set (--amount 50.00 --currency EUR) or remove (--clear) the credit limit per cycle")
    q.add_argument("subscriber_id"); g = q.add_mutually_exclusive_group(required=True)
    g.add_argument("--amount", help="decimal amount, e.g. 50.00"); g.add_argument("--clear", action="store_true")
    q.add_argument("--currency", default="EUR"); _client_flags(q)
    p.set_defaults(func=cmd_subscribers)

    p = sub.add_parser("tokens", help="API tokens")
    ksub = p.add_subparsers(dest="action", required=True)
    q = ksub.add_parser("issue"); q.add_argument("--subject", required=True); q.add_argument("--tenant", default="")
    q.add_argument("--role", required=True, choices=("operator_admin", "mvno_admin", "csr", "product_manager", "auditor"))
    q.add_argument("--ttl", type=int, default=0, help="seconds (default 30 days)")
    q.add_argument("--privilege", action="append", help="extra privilege, e.g. voucher.reveal_pin"); _client_flags(q)
    q = ksub.add_parser("revoke"); q.add_argument("token_id"); _client_flags(q)
    q = ksub.add_parser("list"); q.add_argument("--tenant", default=""); q.add_argument("--all", action="store_true"); _client_flags(q)
    q.add_argument("--page-size", type=int, default=50)
    q = ksub.add_parser("whoami"); _client_flags(q)
    p.set_defaults(func=cmd_tokens)

    p = sub.add_parser("audit", help="read the audit log")
    p.add_argument("--object-type", default=""); p.add_argument("--object-id", default=""); p.add_argument("--tenant", default="")
    _client_flags(p); _paging(p)
    p.set_defaults(func=cmd_audit)

    for name in AREA_COMMANDS:
        try:
            module = importlib.import_module(f"clients.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"clients.commands.{name}":
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return int(func(args) or 0)
    except grpc.RpcError as err:
        print(f"error: {describe_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
