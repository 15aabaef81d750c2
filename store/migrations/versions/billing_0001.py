"""Billing (PBS): accounts, subscriber assignments, one-off charges, claimed bill periods, gapless invoice number
series, invoices and credit notes with their lines and documents, frozen usage, the account ledger, bill runs.

Revision ID: billing_0001
Revises: 0001_foundation
Create Date: 2026-12-06

``billing_periods`` (one row per tenant, account and period start) is what makes bill runs idempotent;
``uq_billing_invoices_number`` makes a duplicate invoice number impossible; ``billing_usage`` holds each billed
CDR once.
"""

import sqlalchemy as sa
from alembic import op

revision = "billing_0001"
down_revision = "0001_foundation"
branch_labels = ("billing",)
depends_on = None

TS = sa.DateTime(timezone=True)
HAS_NUMBER = sa.text("number <> ''")
TABLES = ("billing_runs", "billing_ledger", "billing_usage", "billing_invoice_lines", "billing_invoices", "billing_series",
          "billing_periods", "billing_charges", "billing_assignments", "billing_accounts")


def upgrade() -> None:
    op.create_table(
        "billing_accounts",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address_json", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("anchor_day", sa.Integer(), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("delivery", sa.String(16), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("vat_id", sa.String(32), nullable=False),
        sa.Column("company_id", sa.String(200), nullable=False),
        sa.Column("payment_terms_days", sa.Integer(), nullable=False),
        sa.Column("tax_exemption", sa.String(200), nullable=False),
        sa.Column("discount_plans", sa.Text(), nullable=False),
        sa.Column("buyer_reference", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("create_time", TS, nullable=False),
        sa.Column("update_time", TS, nullable=False),
        sa.Column("close_time", TS, nullable=True),
    )
    op.create_table(
        "billing_assignments",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("subscriber_id", sa.String(40), primary_key=True),
        sa.Column("valid_from", TS, primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("msisdn", sa.String(32), nullable=False),
        sa.Column("valid_to", TS, nullable=True),
    )
    op.create_index("ix_billing_assignments_account", "billing_assignments", ["tenant_id", "account_id"])
    op.create_table(
        "billing_charges",
        sa.Column("charge_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("subscriber_id", sa.String(40), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("tax_category", sa.String(40), nullable=False),
        sa.Column("charge_date", sa.Date(), nullable=False),
        sa.Column("raised_by", sa.String(200), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False, server_default=""),
    )
    op.create_index("ix_billing_charges_account", "billing_charges", ["tenant_id", "account_id", "invoice_id"])
    op.create_table(
        "billing_periods",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("period_start", sa.Date(), primary_key=True),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
    )
    op.create_table(
        "billing_series",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("series", sa.String(16), primary_key=True),
        sa.Column("next_number", sa.BigInteger(), nullable=False),
    )
    op.create_table(
        "billing_invoices",
        sa.Column("invoice_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("series", sa.String(16), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("period_end", sa.Date(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=True),
        sa.Column("due_date", sa.Date(), nullable=True),
        sa.Column("line_extension", sa.BigInteger(), nullable=False),
        sa.Column("allowances", sa.BigInteger(), nullable=False),
        sa.Column("charges", sa.BigInteger(), nullable=False),
        sa.Column("tax_exclusive", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("tax_inclusive", sa.BigInteger(), nullable=False),
        sa.Column("prepaid", sa.BigInteger(), nullable=False),
        sa.Column("payable", sa.BigInteger(), nullable=False),
        sa.Column("paid_micros", sa.BigInteger(), nullable=False),
        sa.Column("credited_micros", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("reference_id", sa.String(40), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("create_time", TS, nullable=False),
        sa.Column("issue_time", TS, nullable=True),
        sa.Column("bill", sa.LargeBinary(), nullable=False),
        sa.Column("document", sa.LargeBinary(), nullable=True),
    )
    op.create_index("ix_billing_invoices_run", "billing_invoices", ["run_id"])
    op.create_index("ix_billing_invoices_tenant", "billing_invoices", ["tenant_id", "invoice_id"])
    op.create_index("ix_billing_invoices_account", "billing_invoices", ["tenant_id", "account_id", "period_start"])
    op.create_index("uq_billing_invoices_number", "billing_invoices", ["tenant_id", "number"], unique=True, sqlite_where=HAS_NUMBER, postgresql_where=HAS_NUMBER)
    op.create_table(
        "billing_invoice_lines",
        sa.Column("invoice_id", sa.String(40), primary_key=True),
        sa.Column("line_id", sa.String(16), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("subscriber_id", sa.String(40), nullable=False),
        sa.Column("charge_type", sa.String(16), nullable=False),
        sa.Column("item_id", sa.String(64), nullable=False),
        sa.Column("advance", sa.Boolean(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("ref_line_id", sa.String(16), nullable=False),
    )
    op.create_index("ix_billing_lines_advance", "billing_invoice_lines", ["tenant_id", "account_id", "period_start"])
    op.create_table(
        "billing_usage",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("cdr_id", sa.String(64), primary_key=True),
        sa.Column("invoice_id", sa.String(40), nullable=False),
        sa.Column("charge_micros", sa.BigInteger(), nullable=False),
    )
    op.create_index("ix_billing_usage_invoice", "billing_usage", ["invoice_id"])
    op.create_table(
        "billing_ledger",
        sa.Column("tenant_id", sa.String(40), primary_key=True),
        sa.Column("source", sa.String(120), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("amount_micros", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("time", TS, nullable=False),
        sa.Column("invoice_id", sa.String(40), nullable=False),
    )
    op.create_index("ix_billing_ledger_account", "billing_ledger", ["tenant_id", "account_id"])
    op.create_table(
        "billing_runs",
        sa.Column("run_id", sa.String(40), primary_key=True),
        sa.Column("tenant_id", sa.String(40), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("cycle_date", sa.Date(), nullable=True),
        sa.Column("account_ids", sa.Text(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("review", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("start_time", TS, nullable=False),
        sa.Column("end_time", TS, nullable=True),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("issued", sa.BigInteger(), nullable=False),
        sa.Column("drafts", sa.BigInteger(), nullable=False),
        sa.Column("empty", sa.BigInteger(), nullable=False),
        sa.Column("skipped", sa.BigInteger(), nullable=False),
        sa.Column("failed", sa.BigInteger(), nullable=False),
        sa.Column("failures_json", sa.Text(), nullable=False),
    )
    op.create_index("ix_billing_runs_tenant", "billing_runs", ["tenant_id", "start_time"])


def downgrade() -> None:
    for name in TABLES:
        op.drop_table(name)
