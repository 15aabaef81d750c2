"""The `rulebill` command: the client commands plus the server-side ones, which may use servers and store.

* ``rulebill serve [--listen ADDRESS] [--migrate]`` — run the gRPC server until SIGTERM/SIGINT; a database that
  lacks migrations is refused (one line: run `rulebill db upgrade`) unless ``--migrate`` applies them first.
* ``rulebill db upgrade`` — apply every migration branch (alembic ``heads``).
* ``rulebill db drop-stale-stages [--older-than-hours H]`` — drop the staged usage of bill runs no run reads any more
  (``servers.root.drop_stale_stages`` → ``store.usage_stage.drop_abandoned_stages``; the server does it as it starts and on each scheduler round).
* ``rulebill bootstrap`` — seed the operator, its MVNOs and plan set, and write the admin credential.
* ``rulebill security-officer issue --subject NAME`` (or ``security-officer --subject NAME``) — on the server host, the
  first security officers' tokens (they grant voucher.reveal_pin); ``security-officer approve|reject TOKEN_ID`` are
  client commands of a second security officer (``clients/commands/tokens.py``).

Every other command comes from ``clients/cli.py`` and speaks to a server through the typed client.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from clients import cli
from clients.commands import tokens as tokens_commands
from engine.settings import load_settings
from engine.text import one_line


def cmd_serve(args: argparse.Namespace) -> int:
    from servers.app import serve
    from store.migrate import missing_migrations, upgrade

    settings = load_settings()
    if args.listen:
        settings = settings.with_overrides(listen_address=args.listen)
    url = settings.effective_database_url
    missing = missing_migrations(url)
    if missing and args.migrate:
        upgrade(url)
    elif missing:
        print(f"serve: the database is not migrated ({len(missing)} migration head(s) missing, e.g. {sorted(missing)[0]}): "
              "run `rulebill db upgrade` first, or `rulebill serve --migrate`", file=sys.stderr)
        return 2
    busy = f"serve: cannot listen on {settings.listen_address} ({{}}): stop the other server or choose another address " \
           "with --listen or RULEBILL_LISTEN_ADDRESS"
    problem = _cannot_bind(settings.listen_address)  # before the server is built: one line, not grpc's own log
    if problem:
        print(busy.format(problem), file=sys.stderr)
        return 2
    handler = logging.StreamHandler()
    handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=settings.log_level, handlers=[handler])
    try:
        serve(settings)
    except OSError as exc:  # taken between the check and the start
        print(busy.format(exc), file=sys.stderr)
        return 2
    return 0


class OneLineFormatter(logging.Formatter):
    """Each message on one line: control characters and line separators a caller's text carries (an id, a subject) are
    escaped, so no request can write a line of its own into the server log.  A traceback still follows on its lines."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)


def _cannot_bind(address: str) -> str:
    """Why ``address`` (host:port, [v6]:port) cannot be listened on now, or "" when it can (or cannot be checked)."""
    import socket

    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"
    if not port.isdigit() or port == "0":
        return ""
    try:
        infos = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"unknown host: {exc.strerror}"
    family, kind, proto, _, where = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server's own socket: TIME_WAIT is no obstacle
        try:
            probe.bind(where)
        except OSError as exc:
            return exc.strerror or str(exc)
    return ""


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from store.migrate import current_heads, upgrade

    url = load_settings().effective_database_url
    upgrade(url)
    print(f"database at revision(s): {', '.join(sorted(current_heads(url)))}")
    return 0


def cmd_db_drop_stale_stages(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from servers.root import drop_stale_stages

    settings = load_settings()
    hours = settings.billing_stage_max_age_hours if args.older_than_hours is None else args.older_than_hours
    if hours < 0:
        print("db drop-stale-stages: --older-than-hours must not be negative", file=sys.stderr)
        return 2
    dropped = drop_stale_stages(settings, timedelta(hours=hours))
    for name in dropped:
        print(f"dropped {name}")
    print(f"{len(dropped)} abandoned bill run usage stage(s) dropped")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from servers.bootstrap import bootstrap

    result = bootstrap(load_settings(), samples=not args.no_samples)
    print(f"operator {result['operator']} ready; MVNOs created: {', '.join(result['mvnos_created']) or 'none (already there)'}")
    if "plan_set_version" in result:
        state = "activated now" if result.get("plan_set_activated") else "already active"
        files = f", {result['plan_set_files']} files" if "plan_set_files" in result else ""  # counted as `plans validate` counts
        print(f"plan set from {load_settings().plans_dir}: version {result['plan_set_version']}{files} ({state})")
    print(f"bootstrap admin credential: {result['token_file']}" + (" (new)" if result["token_written"] else " (kept)"))
    if "billing_samples" in result:
        samples = result["billing_samples"]
        print("sample billing accounts: " + (", ".join(samples) + " (try: rulebill bills preview ACC-1001)" if isinstance(samples, list)
                                             else "already there"))
    if "billing_sample_usage" in result:
        u = result["billing_sample_usage"]
        print(f"sample usage of {u['month']}: {u['cdrs']} CDRs stored, {u['rated']} rated, {u['unrated']} unrated "
              f"(try: rulebill rerate --from {u['month']}-01 ...)")
    if "signing_key" in result:  # the operator's OpenPGP key that signs voucher distribution files
        print(f"voucher signing key: {result['signing_key']}" + (" (new)" if "signing_key_created" in result else " (kept)"))
    elif "signing_key_error" in result:
        print(f"voucher signing key: not created: {result['signing_key_error']}", file=sys.stderr)
    return 0


def cmd_security_officer(args: argparse.Namespace) -> int:
    """On the server host (the database and settings, not the API): a security officer's token.  No API caller can
    make one without already being a security officer, so this is the second, separate step the reveal privilege
    needs (the issue is audited like any other).  ``approve`` and ``reject`` speak to a server with a second security
    officer's token instead."""
    if args.decision in ("approve", "reject"):
        return tokens_commands.run_decision(args)
    if not args.subject:
        print("security-officer: --subject is required (the person, e.g. carol@operator.example)", file=sys.stderr)
        return 2
    from servers.root import token_administration

    with token_administration(load_settings()) as tokens:
        token, bearer = tokens.issue_security_officer(args.subject, args.ttl)
    print(f"security officer {token.subject} (token {token.token_id}, tenant {token.tenant_id}, until {token.expire_time:%Y-%m-%d})")
    print(f"secret (shown once, hand it to the security officer): {bearer}")
    return 0


def _host_issue_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--subject", help="the person, e.g. carol@operator.example")
    p.add_argument("--ttl", type=int, default=0, help="seconds (default: the settings' token lifetime)")


def register(subparsers: Any) -> None:
    """Add serve, db upgrade and bootstrap to the `rulebill` parser."""
    p = subparsers.add_parser("serve", help="run the gRPC server until SIGTERM/SIGINT")
    p.add_argument("--listen", help="address to listen on (default from settings: 127.0.0.1:50051)")
    p.add_argument("--migrate", action="store_true", help="apply missing database migrations first (default: refuse to start)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("db", help="database schema")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply every migration branch (alembic heads) to the settings' database") \
        .set_defaults(func=cmd_db_upgrade)
    p = dbsub.add_parser("drop-stale-stages", help="drop the bill runs' staged usage (PostgreSQL) no run reads: of finished runs, "
                                                   "and of runs still marked running staged longer ago than "
                                                   "billing_stage_max_age_hours (a resumed run stages again)")
    p.add_argument("--older-than-hours", type=int, default=None,
                   help="the age for runs still marked running (default: the billing_stage_max_age_hours setting)")
    p.set_defaults(func=cmd_db_drop_stale_stages)

    p = subparsers.add_parser("bootstrap", help="seed the operator and MVNOs from plans/, sample billing accounts, and write the "
                                                "admin credential")
    p.add_argument("--no-samples", action="store_true", help="skip the sample billing accounts of plans/billing/samples.yaml")
    p.set_defaults(func=cmd_bootstrap)

    p = subparsers.add_parser("security-officer", help="security officers: issue one on the server host; approve or reject "
                                                       "a pending token as a second officer")
    _host_issue_flags(p)   # `rulebill security-officer --subject NAME`, as before `issue` existed
    p.set_defaults(func=cmd_security_officer, decision=None)
    osub = p.add_subparsers(dest="decision", metavar="ACTION")
    _host_issue_flags(osub.add_parser("issue", help="on the server host: a security officer token, active at once (grants "
                                                    "voucher.reveal_pin)"))
    tokens_commands.register_decisions(osub)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, extra_commands=[register])


if __name__ == "__main__":
    sys.exit(main())
