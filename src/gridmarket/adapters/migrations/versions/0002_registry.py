"""The account registry: accounts, signing keys, consumption keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Written out in full, like 0001. Secrets are never stored: consumption keys as SHA-256 hashes
(`key_hash`, unique: the lookup on every consumption call), signing keys as public keys.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("is_supplier", sa.Boolean, nullable=False),
        sa.Column("mode", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "signing_keys",
        sa.Column("fingerprint", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("public_key", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_signing_keys_account_id", "signing_keys", ["account_id"])
    op.create_table(
        "consumption_keys",
        sa.Column("key_id", sa.Text, primary_key=True),
        sa.Column("account_id", sa.Text, nullable=False),
        sa.Column("key_hash", sa.Text, nullable=False, unique=True),
        sa.Column("prefix", sa.Text, nullable=False),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("expires_at_ms", sa.BigInteger, nullable=True),
        sa.Column("spend_cap_tokens", sa.BigInteger, nullable=True),
        sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_consumption_keys_account_id", "consumption_keys", ["account_id"])


def downgrade() -> None:
    op.drop_table("consumption_keys")
    op.drop_table("signing_keys")
    op.drop_table("accounts")
