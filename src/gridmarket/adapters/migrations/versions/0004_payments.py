"""Payments: Auto-Reload's payment methods and charges.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25

Two new tables (see `adapters.schema` and `adapters.payment`): `payment_methods` (per account,
the ledger-only adapter's allowance and the standing decline) and `payment_charges` (every
charge attempt by idempotency key, its UTC month and the deposit that credited it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_methods",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("allowance_usd_micros", sa.BigInteger, nullable=True),
        sa.Column("declined_at_ms", sa.BigInteger, nullable=True),
        sa.Column("decline_reason", sa.Text, nullable=True),
        sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "payment_charges",
        sa.Column("idempotency_key", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("amount_usd_micros", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("decline_reason", sa.Text, nullable=True),
        sa.Column("month", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("log_seq_before", sa.BigInteger, nullable=False),
        sa.Column("deposit_seq", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_payment_charges_account_id", "payment_charges", ["account_id"])


def downgrade() -> None:
    op.drop_table("payment_charges")
    op.drop_table("payment_methods")
