"""Payments: the Stripe adapter's payment method per account.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26

Two nullable columns on `payment_methods` (see `adapters.payment`): `stripe_customer_id`
(`cus_...`) and `stripe_payment_method_id` (`pm_...`), the customer and its saved payment
method that `adapters.stripe_payment` charges off-session; and the same two on
`payment_charges`: the method a charge was first sent with, which every retry of its key sends
again. Existing rows keep their allowance and decline and get no Stripe method (NULL). Plain
`ADD COLUMN`s: SQLite and PostgreSQL both add a nullable column without rewriting the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


TABLES = ("payment_methods", "payment_charges")


def upgrade() -> None:
    for table in TABLES:
        op.add_column(table, sa.Column("stripe_customer_id", sa.Text, nullable=True))
        op.add_column(table, sa.Column("stripe_payment_method_id", sa.Text, nullable=True))


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("stripe_payment_method_id")
            batch.drop_column("stripe_customer_id")
