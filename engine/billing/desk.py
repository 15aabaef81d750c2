"""The billing area's use cases in one place: what BillingService, the CLI and the scheduler call."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timezone
from typing import Mapping

from engine.billing.accounts import AccountDesk
from engine.billing.addons import AddOnDesk
from engine.billing.catalogue import BillingCatalogue
from engine.billing.delivery import BillMailer, Mailer
from engine.billing.invoices import InvoiceDesk, Printer
from engine.billing.ports import BatchWorkers, BillingUnitOfWorkFactory, BillRun
from engine.billing.profile import BillingProfile
from engine.billing.runs import DEFAULT_WORKERS, BillRunner, CatalogueSource
from engine.clock import Clock
from engine.errors import NotFound
from engine.identity import Permission, Principal


@dataclass
class BillingDesk:
    accounts: AccountDesk
    runs: BillRunner
    invoices: InvoiceDesk
    uow: BillingUnitOfWorkFactory
    clock: Clock
    mail: BillMailer
    add_ons: AddOnDesk
    mailer: Mailer | None = None      # where bill e-mails go (servers/billing_mail.py); None: they wait in the outbox

    @classmethod
    def build(cls, uow: BillingUnitOfWorkFactory, clock: Clock, profiles: Mapping[str, BillingProfile], catalogues: CatalogueSource,
              printer: Printer | None = None, batch_size: int = 200, workers: int = DEFAULT_WORKERS,
              mailer: Mailer | None = None, batch_workers: BatchWorkers | None = None) -> "BillingDesk":
        def discount_known(tenant: str, discount_id: str) -> bool:
            catalogue: BillingCatalogue | None = catalogues(tenant, clock.now())
            return catalogue is not None and catalogue.discount(discount_id) is not None

        return cls(AccountDesk(uow, clock, profiles, discount_known),
                   BillRunner(uow, clock, profiles, catalogues, batch_size, workers, batch_workers),
                   InvoiceDesk(uow, clock, profiles, catalogues, printer), uow, clock, BillMailer(uow, clock, profiles, printer),
                   AddOnDesk(uow, clock, profiles, catalogues), mailer)

    def get_run(self, principal: Principal, run_id: str) -> BillRun:
        principal.require(Permission.BILLING_READ)
        with self.uow(read_only=True) as uow:
            run = uow.get_run(run_id)
        if run is None or not principal.can_see_tenant(run.tenant_id):
            raise NotFound("bill run", run_id)
        return run

    def scheduler_tick(self) -> list[BillRun]:
        """One round of the server's scheduler: scheduled bill runs, overdue invoices, then the bills waiting to be e-mailed."""
        runs = self.runs.scheduled_tick()
        self.invoices.mark_overdue(self.clock.now().astimezone(timezone.utc).date())
        if self.mailer is not None:
            self.mail.deliver(self.mailer)
        return runs


