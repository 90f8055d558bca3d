"""Self-service: names and labels on keys, and an account's settings beside its mode.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25

Columns added to existing tables (nullable, or with a server default, so every row already
there stays valid):
- `consumption_keys.name` and `signing_keys.label`: what the owner calls a key (NULL for the
  keys made with the account by the operator before this revision);
- on `accounts`: `auto_buy_enabled` (NULL: the mode's default), `auto_reload_enabled` and the
  three Auto-Reload amounts in micro-USD (NULL: not set). Auto-transfer is not here: it is the
  core's `SetAutoTransfer`, kept in the command log.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("consumption_keys", sa.Column("name", sa.Text, nullable=True))
    op.add_column("signing_keys", sa.Column("label", sa.Text, nullable=True))
    op.add_column("accounts", sa.Column("auto_buy_enabled", sa.Boolean, nullable=True))
    op.add_column(
        "accounts",
        sa.Column("auto_reload_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in (
        "auto_reload_threshold_usd_micros",
        "auto_reload_amount_usd_micros",
        "auto_reload_monthly_limit_usd_micros",
    ):
        op.add_column("accounts", sa.Column(column, sa.BigInteger, nullable=True))


def downgrade() -> None:
    for column in (
        "auto_reload_monthly_limit_usd_micros",
        "auto_reload_amount_usd_micros",
        "auto_reload_threshold_usd_micros",
        "auto_reload_enabled",
        "auto_buy_enabled",
    ):
        op.drop_column("accounts", column)
    op.drop_column("signing_keys", "label")
    op.drop_column("consumption_keys", "name")
