"""A billing stack for integration tests: a real server on a real database whose clock the test moves.

Bill runs need periods that have ended and plan sets that were in force in them, so the stack starts on
1 January 2026 (the sample plan set of plans/ is activated then), provisions and rates through the product
desks (SubscriberDesk, RatingDesk with counters: the usage ledger billing reads) and is then moved forward.
Every document the stack's database holds is validated against the UBL XSD and the EN 16931 Schematron when
the module ends (``validate_all_documents``).
"""

from __future__ import annotations

import secrets
import zlib
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import grpc
import pytest
from sqlalchemy import select

from clients.services.billing import BillingClient
from clients.client import RulebillClient
from tests.integration.helpers import WireClient
from engine.cdr import Direction, MediatedCdr, Service, cdr_identity
from engine.clock import FixedClock
from engine.identity import SYSTEM, Role
from engine.settings import Settings
from engine.subscribers import NewSubscriber, PaymentType
from servers.app import create_server, graceful_stop
from servers.bootstrap import bootstrap
from servers.root import Root, build_root
from store.billing import billing_invoices

START = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
ONE_YEAR = 366 * 24 * 3600


@dataclass
class BillingStack:
    root: Root
    server: grpc.Server
    address: str
    clock: FixedClock
    backend: str
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    clients: list[RulebillClient] = field(default_factory=list)

    def token(self, tenant: str, role: str = "") -> str:
        role = role or ("operator_admin" if tenant == "mno" else "mvno_admin")
        if (tenant, role) not in self.tokens:
            _, bearer = self.root.tokens.issue(None, f"test-{tenant}-{role}", tenant, Role(role), ONE_YEAR)
            self.tokens[(tenant, role)] = bearer
        return self.tokens[(tenant, role)]

    def billing(self, tenant: str = "mno", role: str = "") -> BillingClient:
        c = RulebillClient(self.address, self.token(tenant, role))
        self.clients.append(c)
        return c.billing

    def client(self, tenant: str = "mno", role: str = "") -> WireClient:
        c = WireClient(self.address, self.token(tenant, role))
        self.clients.append(c)
        return c

    def at(self, when: datetime) -> None:
        self.clock._at = when  # noqa: SLF001 - the test's clock

    def subscriber(self, tenant: str, plan: str, activated: datetime) -> tuple[str, str]:
        """Provision and activate a postpaid subscriber on ``activated``; returns (subscriber id, msisdn)."""
        self.at(activated)
        principal = replace(SYSTEM, tenant_id=tenant, subject="test", is_operator=tenant == "mno")
        msisdn = "336" + "".join(secrets.choice("0123456789") for _ in range(8))
        imsi = "20801" + "".join(secrets.choice("0123456789") for _ in range(10))
        sub = self.root.subscribers.provision(principal, NewSubscriber(tenant, msisdn, imsi, "x", PaymentType.POSTPAID, plan))
        self.root.subscribers.transition(principal, sub.subscriber_id, "activate")
        return sub.subscriber_id, msisdn

    def rate(self, tenant: str, msisdn: str, calls: list[tuple[datetime, int, str]], service: Service = Service.VOICE) -> list[Any]:
        """Rate voice calls (start, seconds, called number) of ``msisdn`` with bundle counters: the product path."""
        desk = self.root.rating
        principal = replace(SYSTEM, tenant_id=tenant, subject="test", is_operator=tenant == "mno")
        cdrs = []
        for start, seconds, b in calls:
            origin = secrets.token_hex(6)
            cdrs.append(MediatedCdr(cdr_identity("it", origin, tenant), "it", origin, service, Direction.ORIGINATING, start, msisdn, b,
                                    duration_seconds=seconds if service is Service.VOICE else 0,
                                    volume_down_bytes=seconds if service is Service.DATA else 0, tenant=tenant))
        return [o.rated for o in desk.rate_many(principal, cdrs, use_counters=True)]

    def desk(self) -> Any:
        return self.root.billing


@pytest.fixture(scope="module")
def billing_stack(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[BillingStack]:
    yield from serve_billing_stack(db_url, tmp_path_factory.mktemp("home"))


def serve_billing_stack(db_url: str, home: Path, rules_dir: Path | None = None) -> Iterator[BillingStack]:
    """The stack of ``billing_stack`` (``rules_dir``: another rules/ folder than the checkout's)."""
    clock = FixedClock(START)
    settings = Settings(home=Path(home), database_url=db_url, shutdown_grace_seconds=2.0)
    if rules_dir is not None:
        settings = replace(settings, rules_dir=rules_dir)
    root = build_root(settings, clock)
    bootstrap(settings, root, load_plans=True)  # the sample plans/, active from 1 January 2026
    server, port = create_server(root, "127.0.0.1:0")
    server.start()
    stack = BillingStack(root, server, f"127.0.0.1:{port}", clock, "sqlite" if db_url.startswith("sqlite") else "postgres")
    try:
        yield stack
        validate_all_documents(root)
    finally:
        for c in stack.clients:
            c.close()
        graceful_stop(server, root, 1.0).wait()
        root.close()


def validate_all_documents(root: Root) -> int:
    """Every UBL document the database holds passes the XSD and the EN 16931 Schematron."""
    from tests.ubl_conformance import assert_valid, corpus

    corpus()
    n = 0
    with root.db.connect() as conn:
        for number, doc in conn.execute(select(billing_invoices.c.number, billing_invoices.c.document)
                                        .where(billing_invoices.c.document.is_not(None))):
            xml = zlib.decompress(doc)
            try:
                assert_valid(xml)
            except AssertionError as exc:
                raise AssertionError(f"document {number}: {exc}") from None
            n += 1
    return n


def account_pb(account_id: str, **kw: object) -> Any:
    """A BillingService Account message: a French payer anchored on the 1st, fields overridable."""
    from billing.v1 import billing_pb2 as pb

    fields: dict[str, Any] = dict(account_id=account_id, name="Jeanne Martin", anchor_day=1, time_zone="Europe/Paris",
                                  address=pb.PostalAddress(lines=["5 rue Victor Hugo"], city="Lyon", postal_code="69001", country="FR"))
    fields.update(kw)
    return pb.Account(**fields)


def account_with_subscribers(s: BillingStack, account_id: str, count: int, since: datetime, plan: str = "TP_SMART_S") -> list[str]:
    """Account ``account_id`` of mno, created by its admin, with ``count`` new subscribers on ``plan`` from ``since``
    assigned to it: their ids."""
    admin = s.billing("mno")
    admin.create_account(account_pb(account_id))
    subs = [s.subscriber("mno", plan, since)[0] for _ in range(count)]
    for sub in subs:
        admin.assign(account_id, sub)
    return subs


def days(n: int) -> timedelta:
    return timedelta(days=n)
