"""Payments: the Stripe adapter's payment method per account.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Two nullable columns on `payment_methods` (see `adapters.payment`): `stripe_customer_id`
(`cus_...`) and `stripe_payment_method_id` (`pm_...`), the customer and its saved payment
method that `adapters.stripe_payment` charges off-session. Existing rows keep their allowance
and decline and get no Stripe method (NULL). Plain `ADD COLUMN`s: SQLite and PostgreSQL both
add a nullable column without rewriting the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payment_methods", sa.Column("stripe_customer_id", sa.Text, nullable=True))
    op.add_column("payment_methods", sa.Column("stripe_payment_method_id", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payment_methods") as batch:
        batch.drop_column("stripe_payment_method_id")
        batch.drop_column("stripe_customer_id")
