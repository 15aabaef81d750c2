"""The composition root: every desk of the server, built once from the settings, before the server starts.

The one place that wires settings, store and engine.  Servicers receive the desks
they need in their constructors (``servers/app.py`` registers them); nothing is
built lazily or on the side.  A new area adds its desks to :class:`Root` and one
``_<area>`` builder here (see docs/dev/INTEGRATION.md).
"""

from __future__ import annotations

import logging
import stat
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterator

from sqlalchemy.engine import Engine

from engine.audit import AuditDesk
from engine.billing.addons import StopAddOns
from engine.billing.catalogue import PlanSetCatalogues
from engine.billing.chargerules import SubscriberEventCharges, load_charge_rules
from engine.billing.desk import BillingDesk
from engine.billing.runs import BillRunner
from engine.billing.profile import BillingProfile
from engine.billing.profile import load_profiles as load_billing_profiles
from engine.clock import Clock, SystemClock
from engine.eventrules import BACKENDS as EVENT_RULE_BACKENDS, RuleBook, RuleFilesInvalid, load_rule_book
from engine.mediation.desk import MediationDesk
from engine.mediation.rows import CdrRow
from engine.plans.catalogue import PlanDesk, StoredCdrs
from engine.plans.limits import PlanSetLimits
from engine.plans.offer import OfferedPlans
from engine.rating.authorise import CallAuthoriser, settable_barring_flags
from engine.rating.desk import RatingDesk
from engine.rating.limits import CdrLimits
from engine.rating.rerate import RerateDesk
from engine.settings import Settings
from engine.subscribers import SubscriberDesk
from engine.tenancy import TenantAdmin
from engine.tokens import NO_AUTH_CACHE, AuthCache, TokenDesk
from engine.vouchers.desk import VoucherDesk
from engine.vouchers.distribution import Distributor
from engine.vouchers.face_value import FaceValueError, parse_face_value_limits
from engine.vouchers.keyring import KeyringError, ReloadableKeyProvider, keys_from_environment
from engine.vouchers.profile import ProfileCatalogue, load_profiles
from engine.vouchers.recharge import Recharger
from engine.vouchers.rules import VoucherRulesMissing, load_voucher_rules
from engine.vouchers.settings import VoucherSettings
from engine.yamlio import format_problems
from store.billing import SqlBillingUnitOfWork, SqlBillingUnitOfWorkFactory
from servers.adapters.bill_run_processes import BillRunProcesses
from servers.adapters.gpg import DistributionSealing, SigningKeyError, create_signing_key
from servers.adapters.keyring_file import generate_keyring, key_file_provider
from servers.health import ServerHealth
from store.db import make_engine
from store.mediation import SqlMediationStore, SqlSubscriberTenants, stored_cdrs_between
from store.plans import SqlPlanUnitOfWorkFactory, StoredCdrReader
from store.uow import SqlUnitOfWorkFactory
from store.usage_stage import drop_abandoned_stages
from store.vouchers import SqlVoucherUnitOfWorkFactory

log = logging.getLogger("rulebill.server")


@dataclass(frozen=True)
class VoucherParts:
    """The voucher area's desks (VoMS) and the key material they share."""

    desk: VoucherDesk
    recharger: Recharger
    distributor: Distributor
    keys: ReloadableKeyProvider
    profiles: ProfileCatalogue
    sealing: DistributionSealing   # distribution files' sealers, signed with the operator's key


@dataclass
class Root:
    """Everything a servicer may need, built once per process by :func:`build_root`."""

    settings: Settings
    clock: Clock
    db: Engine
    uow: SqlUnitOfWorkFactory
    tenants: TenantAdmin
    subscribers: SubscriberDesk
    tokens: TokenDesk
    audit: AuditDesk
    plans: PlanDesk
    plan_uow: SqlPlanUnitOfWorkFactory
    rule_book: RuleBook
    rating: RatingDesk
    calls: CallAuthoriser
    rerate: RerateDesk
    mediation: MediationDesk
    vouchers: VoucherParts
    billing: BillingDesk
    # set by servers.app.create_server: the health statuses, the calls in flight, the drain at shutdown
    health: ServerHealth | None = None

    def drop_abandoned_stages(self) -> list[str]:
        """The bill runs' usage stages no run reads any more, dropped now (store.usage_stage.drop_abandoned_stages, aged
        by this root's clock); run as the server starts and on each billing scheduler round."""
        return drop_abandoned_stages(self.db, self.clock.now(), timedelta(hours=self.settings.billing_stage_max_age_hours))

    def close(self) -> None:
        # the health monitor probes the database until stopped: a closed root (a server stopped without the drain,
        # as tests and embedders do) must not keep asking a database that may be gone
        if self.health is not None:
            self.health.stop()
        self.billing.runs.close()   # the bill runs' worker processes (built in _billing), kept from their first run
        self.db.dispose()
        if self.uow.read_engine is not None:
            self.uow.read_engine.dispose()


def build_root(settings: Settings, clock: Clock | None = None) -> Root:
    clock = clock or SystemClock()
    db = make_engine(settings.effective_database_url)
    read_db = make_engine(settings.effective_database_url, read_only=True) if db.dialect.name == "sqlite" else None
    uow = SqlUnitOfWorkFactory(db, read_db)
    plan_uow = SqlPlanUnitOfWorkFactory(uow)
    limits = CdrLimits.from_settings(settings)
    auth_cache = AuthCache(timedelta(seconds=settings.auth_cache_seconds))
    plans = PlanDesk(plan_uow, clock, _stored_cdrs(db), PlanSetLimits.of(settings), cdr_limits=limits)
    try:
        rule_book = load_rule_book(settings.rules_dir)
    except RuleFilesInvalid as exc:  # every problem, each as file:line:col, and no half-built server
        raise SystemExit(f"cannot start: {exc}") from None
    backend = settings.event_rules_backend  # barring, credit alerts and the voucher lifecycles all run on it
    if backend not in EVENT_RULE_BACKENDS:
        raise SystemExit(f"cannot start: setting event_rules_backend: {backend!r} is not one of {', '.join(EVENT_RULE_BACKENDS)}")
    log.info("event rules (barring, credit alerts, lifecycles) on the %s backend", backend)
    rating = RatingDesk(plans, plan_uow, uow, clock, rule_book.credit_alerts(backend), limits)

    parent_of = _parent_of(uow)
    profiles = _billing_profiles(settings)
    return Root(
        settings=settings,
        clock=clock,
        db=db,
        uow=uow,
        tenants=TenantAdmin(uow, clock, on_status_change=auth_cache.forget_tenant),
        # subscribers may only be put on tariff plans their tenant offers in the active plan set, and staff may set
        # only the barring flags the barring rules (or credit alerts) know
        subscribers=SubscriberDesk(uow, clock, OfferedPlans(plans.compiled_at, parent_of, clock), settable_barring_flags(rule_book),
                                   on_event=StopAddOns(SqlBillingUnitOfWork.joined, SubscriberEventCharges(profiles, SqlBillingUnitOfWork.joined),
                                                       PlanSetCatalogues(plans.compiled_at, parent_of))),
        tokens=_tokens(settings, uow, clock, auth_cache),
        audit=AuditDesk(uow),
        plans=plans,
        plan_uow=plan_uow,
        rule_book=rule_book,
        rating=rating,
        calls=CallAuthoriser(rating, rule_book.barring(backend), uow, clock),
        rerate=RerateDesk(rating, plans, plan_uow, uow, StoredCdrReader(db)),
        mediation=MediationDesk(Path(settings.rules_dir) / "mediation", lambda tenant_id: SqlMediationStore(db, tenant_id),
                                rating=lambda: rating, subscribers=SqlSubscriberTenants(db), max_tap3_bytes=settings.max_tap3_bytes),
        vouchers=_vouchers(settings, uow, clock),
        billing=_billing(settings, uow, clock, plans, parent_of, profiles),
    )


def _tokens(settings: Settings, uow: SqlUnitOfWorkFactory, clock: Clock, auth_cache: AuthCache = NO_AUTH_CACHE) -> TokenDesk:
    return TokenDesk(uow, clock, settings.default_token_ttl_seconds, auth_cache, settings.token_approval_seconds)


@contextmanager
def token_administration(settings: Settings, clock: Clock | None = None) -> Iterator[TokenDesk]:
    """The token desk as the server has it, on a database engine of its own (disposed on exit), without the rest of
    the server's parts: ``rulebill security-officer`` issues the first security officer with it on the server host."""
    db = make_engine(settings.effective_database_url)
    try:
        yield _tokens(settings, SqlUnitOfWorkFactory(db), clock or SystemClock())
    finally:
        db.dispose()


def drop_stale_stages(settings: Settings, older_than: timedelta, clock: Clock | None = None) -> list[str]:
    """``rulebill db drop-stale-stages``: the bill runs' usage stages no run reads any more (those of runs still marked
    running once older than ``older_than``) dropped now, on a database engine of its own (disposed on return)."""
    db = make_engine(settings.effective_database_url)
    try:
        return drop_abandoned_stages(db, (clock or SystemClock()).now(), older_than)
    finally:
        db.dispose()


def _parent_of(uow: SqlUnitOfWorkFactory) -> Callable[[str], str]:
    def parent_of(tenant_id: str) -> str:
        with uow(read_only=True) as unit:
            tenant = unit.tenants.get(tenant_id)
        return tenant.parent_tenant_id if tenant is not None else ""

    return parent_of


def bill_run_worker(settings: Settings) -> BillRunner:
    """What a bill run's worker process runs batches with (``servers.adapters.bill_run_processes``): a runner on its own database
    engine, plan sets and billing profiles read as the server reads them; the time of each batch comes with it."""
    db = make_engine(settings.effective_database_url)
    uow = SqlUnitOfWorkFactory(db, None)
    plans = PlanDesk(SqlPlanUnitOfWorkFactory(uow), SystemClock(), _stored_cdrs(db), PlanSetLimits.of(settings),
                     cdr_limits=CdrLimits.from_settings(settings))
    return BillRunner(SqlBillingUnitOfWorkFactory(uow), SystemClock(), _billing_profiles(settings), PlanSetCatalogues(plans.compiled_at, _parent_of(uow)))


def _billing_profiles(settings: Settings) -> dict[str, BillingProfile]:
    """The billing profiles of plans/billing with the charge rules of rules/billing (one-off charges raised by
    events): the server and each bill-run worker process read them the same way."""
    profiles, problems = load_billing_profiles(Path(settings.plans_dir) / "billing")
    if problems:
        raise ValueError("invalid billing profiles:\n" + format_problems(problems))
    profiles, problems = load_charge_rules(Path(settings.rules_dir) / "billing", profiles)
    if problems:
        raise ValueError("invalid charge rules:\n" + format_problems(problems))
    return profiles


def _billing(settings: Settings, uow: SqlUnitOfWorkFactory, clock: Clock, plans: PlanDesk, parent_of: Callable[[str], str],
             profiles: dict[str, BillingProfile]) -> BillingDesk:
    """Billing profiles from plans/billing, plan sets through the plan desk (a tenant without one bills with its
    operator's), the SQL store, and the PDF printer when weasyprint and Pango load."""
    from servers.billing_mail import mailer_from
    from servers.billing_pdf import printer

    # on PostgreSQL large runs' batches go to worker processes, each on its own connection (SQLite has one writer at a
    # time); they start with the first such run or as the server starts (servers.app.start_scheduler)
    processes = (BillRunProcesses(partial(bill_run_worker, settings), settings.billing_workers)
                 if uow.engine.dialect.name == "postgresql" else None)
    return BillingDesk.build(SqlBillingUnitOfWorkFactory(uow), clock, profiles, PlanSetCatalogues(plans.compiled_at, parent_of),
                             printer(), workers=settings.billing_workers, mailer=mailer_from(settings.billing_mail_url),
                             batch_workers=processes)


def _stored_cdrs(db: Engine) -> StoredCdrs:
    def stored_cdrs(tenants: set[str] | None, start: datetime, end: datetime) -> Iterator[CdrRow]:
        # rows of the normalised layout, straight into the evaluator's batch loop (what-if over a period)
        return stored_cdrs_between(db, tenants, start, end)

    return stored_cdrs


def _vouchers(settings: Settings, uow: SqlUnitOfWorkFactory, clock: Clock) -> VoucherParts:
    """The voucher desks; missing or invalid rule files, and key files others may read, stop the start with one message."""
    try:
        rules = load_voucher_rules(Path(settings.rules_dir), settings.event_rules_backend)
        keys = _keys(settings)
    except (VoucherRulesMissing, KeyringError, RuleFilesInvalid) as exc:
        raise SystemExit(f"cannot start the voucher service: {exc}") from None
    signing = settings.effective_voucher_signing_key_file
    if signing.exists():
        _private_file(signing, "the voucher signing key")
    profiles = _profiles(settings)
    voucher_uow = SqlVoucherUnitOfWorkFactory(uow)
    sealing = DistributionSealing(signing)
    log.info("voucher rules from %s; recharge lockout: %d wrong PINs bar for %d s", rules.folder, rules.lockout.max_failures,
             rules.lockout.bar_seconds)
    return VoucherParts(
        desk=VoucherDesk(voucher_uow, profiles, keys, rules.lifecycle, clock, _voucher_settings(settings),  # type: ignore[arg-type]
                         key_file=keys if keys.from_key_file else None),
        recharger=Recharger(voucher_uow, keys, rules.lifecycle, clock, rules.lockout),  # type: ignore[arg-type]
        distributor=Distributor(voucher_uow, keys, rules.lifecycle, clock, sealers=sealing.sealer),  # type: ignore[arg-type]
        keys=keys, profiles=profiles, sealing=sealing,
    )


def _voucher_settings(settings: Settings) -> VoucherSettings:
    try:
        limits = parse_face_value_limits(settings.voucher_csr_face_value_limits)
    except FaceValueError as exc:
        raise SystemExit(f"setting voucher_csr_face_value_limits: {exc}") from None
    return VoucherSettings(max_batch=settings.max_voucher_batch, csr_face_value_limits=limits,
                           reservation_timeout=timedelta(seconds=settings.voucher_reservation_timeout_seconds))


def provision_voucher_keys(settings: Settings, signing_key: bool = True) -> dict[str, str]:
    """Create the installation's voucher key files that are missing, each 0600, and say where they are.

    The one place that makes them (``rulebill bootstrap`` and the server's first start call it): the keyring
    of master and lookup keys (unless the keys are given as settings) and, with ``signing_key``, the operator's
    OpenPGP key that signs distribution files (it needs the gpg binary; without it everything but exports works).
    """
    out: dict[str, str] = {}
    if settings.voucher_key_variables() is None:
        path = Path(settings.effective_keyring_file)
        if not path.exists():
            generate_keyring(path)
            log.warning("created a new voucher keyring at %s; back it up: losing it makes exported PINs unrecoverable", path)
            out["keyring_created"] = "yes"
        out["keyring"] = str(path)
    if signing_key:
        signing = settings.effective_voucher_signing_key_file
        if not signing.exists():
            try:
                fingerprint = create_signing_key(signing, "Rulebill voucher distribution <voms@localhost>")
            except SigningKeyError as exc:
                out["signing_key_error"] = str(exc)
                return out
            log.warning("created the operator's OpenPGP signing key %s at %s; give distributors its public key", fingerprint, signing)
            out["signing_key_created"] = fingerprint
        out["signing_key"] = str(signing)
    return out


def _private_file(path: Path, what: str) -> None:
    """Refuse to start on a key file that group or others may read."""
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SystemExit(f"{path}: {what} must be readable by its owner only (chmod 600 {path})")


def _keys(settings: Settings) -> ReloadableKeyProvider:
    given = settings.voucher_key_variables()
    if given is not None:
        return ReloadableKeyProvider(lambda: keys_from_environment(given))
    provision_voucher_keys(settings, signing_key=False)  # the first start of an installation without bootstrap
    path = Path(settings.effective_keyring_file)
    return key_file_provider(path)


def _profiles(settings: Settings) -> ProfileCatalogue:
    folder = Path(settings.plans_dir) / "vouchers"
    if not folder.is_dir():
        return ProfileCatalogue({}, [])
    catalogue = load_profiles([folder], root=Path(settings.plans_dir).parent)
    if catalogue.problems:
        raise ValueError("invalid voucher profiles:\n" + format_problems(catalogue.problems))
    return catalogue
