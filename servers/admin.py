"""The `rulebill` command: the client commands plus the server-side ones, which may use servers and store.

* ``rulebill serve [--listen ADDRESS]`` — run the gRPC server until SIGTERM/SIGINT.
* ``rulebill db upgrade`` — apply every migration branch (alembic ``heads``).
* ``rulebill bootstrap`` — seed the operator, its MVNOs and plan set, and write the admin credential.
* ``rulebill security-officer --subject NAME`` — the first security officer's token (grants voucher.reveal_pin).

Every other command comes from ``clients/cli.py`` and speaks to a server through the typed client.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from clients import cli
from engine.settings import load_settings


def cmd_serve(args: argparse.Namespace) -> int:
    from servers.app import serve

    settings = load_settings()
    if args.listen:
        settings = settings.with_overrides(listen_address=args.listen)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(settings)
    return 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from store.migrate import current_heads, upgrade

    url = load_settings().effective_database_url
    upgrade(url)
    print(f"database at revision(s): {', '.join(sorted(current_heads(url)))}")
    return 0


def cmd_bootstrap(args: argparse.Namespace) -> int:
    from servers.bootstrap import bootstrap

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
    if "signing_key" in result:  # the operator's OpenPGP key that signs voucher distribution files
        print(f"voucher signing key: {result['signing_key']}" + (" (new)" if "signing_key_created" in result else " (kept)"))
    elif "signing_key_error" in result:
        print(f"voucher signing key: not created: {result['signing_key_error']}", file=sys.stderr)
    return 0


def cmd_security_officer(args: argparse.Namespace) -> int:
    """On the server host (the database and settings, not the API): a security officer's token.  No API caller can
    make one without already being a security officer, so this is the second, separate step the reveal privilege
    needs (the issue is audited like any other)."""
    from engine.clock import SystemClock
    from engine.tokens import TokenDesk
    from store.db import make_engine
    from store.uow import SqlUnitOfWorkFactory

    settings = load_settings()
    db = make_engine(settings.effective_database_url)
    try:
        token, bearer = TokenDesk(SqlUnitOfWorkFactory(db), SystemClock(), settings.default_token_ttl_seconds) \
            .issue_security_officer(args.subject, args.ttl)
    finally:
        db.dispose()
    print(f"security officer {token.subject} (token {token.token_id}, tenant {token.tenant_id}, until {token.expire_time:%Y-%m-%d})")
    print(f"secret (shown once, hand it to the security officer): {bearer}")
    return 0


def register(subparsers: Any) -> None:
    """Add serve, db upgrade and bootstrap to the `rulebill` parser."""
    p = subparsers.add_parser("serve", help="run the gRPC server")
    p.add_argument("--listen", help="address to listen on (default from settings: 127.0.0.1:50051)")
    p.set_defaults(func=cmd_serve)

    p = subparsers.add_parser("db", help="database schema")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    dbsub.add_parser("upgrade", help="apply all migrations").set_defaults(func=cmd_db_upgrade)

    p = subparsers.add_parser("bootstrap", help="seed the operator and MVNOs from plans/, sample billing accounts, and write the "
                                                "admin credential")
    p.add_argument("--no-samples", action="store_true", help="skip the sample billing accounts of plans/billing/samples.yaml")
    p.set_defaults(func=cmd_bootstrap)

    p = subparsers.add_parser("security-officer", help="on the server host: issue a security officer token (grants voucher.reveal_pin)")
    p.add_argument("--subject", required=True, help="the person, e.g. carol@operator.example")
    p.add_argument("--ttl", type=int, default=0, help="seconds (default: the settings' token lifetime)")
    p.set_defaults(func=cmd_security_officer)


def main(argv: list[str] | None = None) -> int:
    return cli.main(argv, extra_commands=[register])


if __name__ == "__main__":
    sys.exit(main())
