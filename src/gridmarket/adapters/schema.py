"""The store's tables (SQLAlchemy Core), as created by migration 0001.

- `commands`: the log. One row per sequenced command, rejected ones included; replaying it in
  `seq` order through a fresh core rebuilds the whole state. `seq` is the primary key, so a
  sequence number can never be written twice.
- `events`: what each command did, `id` numbered by the writer (0, 1, 2, ... in seq order, so
  an id is a stable cursor for feeds), `seq` the command that caused it.
- `postings`: the double-entry journal, one row per movement, numbered like events.
- `meta`: key/value facts about the store (the payload encoding).

Payloads are JSON objects as text (see `codec`); money and quantities are BIGINT. Indexes are
kept to the primary keys on purpose: every extra index costs the single writer on every row.
Ids are INTEGER on SQLite so that the primary key is the rowid (one B-tree, appends only).
"""

import sqlalchemy as sa

#: BIGINT on PostgreSQL; INTEGER (64-bit, the rowid alias when primary key) on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

commands = sa.Table(
    "commands",
    metadata,
    sa.Column("seq", BigId, primary_key=True, autoincrement=False),
    sa.Column("ts_ms", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
)

postings = sa.Table(
    "postings",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("asset", sa.Text, nullable=False),
    sa.Column("debit", sa.Text, nullable=False),
    sa.Column("credit", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
)

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

#: `meta` key whose value names the payload encoding this code reads and writes.
PAYLOAD_FORMAT_KEY = "payload_format"
PAYLOAD_FORMAT = "json-object-v1"

# -- The account registry (migration 0002): who the accounts are, beside the ledger. -----------
# The core knows an account only by its id and its flags; names, modes and keys live here.
# Secrets never do: a consumption key is stored as its SHA-256 hash, a signing key as its
# public half. Times are epoch milliseconds; a revoked key keeps its row with `revoked_at_ms`.

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("is_supplier", sa.Boolean, nullable=False),
    sa.Column("mode", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    # Settings (migration 0003). NULL `auto_buy_enabled`: the mode's default; NULL amounts: unset.
    sa.Column("auto_buy_enabled", sa.Boolean, nullable=True),
    sa.Column("auto_reload_enabled", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("auto_reload_threshold_usd_micros", sa.BigInteger, nullable=True),
    sa.Column("auto_reload_amount_usd_micros", sa.BigInteger, nullable=True),
    sa.Column("auto_reload_monthly_limit_usd_micros", sa.BigInteger, nullable=True),
)

signing_keys = sa.Table(
    "signing_keys",
    metadata,
    sa.Column("fingerprint", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False, index=True),
    sa.Column("public_key", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
    sa.Column("label", sa.Text, nullable=True),  # migration 0003
)

consumption_keys = sa.Table(
    "consumption_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False, index=True),
    sa.Column("key_hash", sa.Text, nullable=False, unique=True),
    sa.Column("prefix", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    sa.Column("expires_at_ms", sa.BigInteger, nullable=True),
    sa.Column("spend_cap_tokens", sa.BigInteger, nullable=True),
    sa.Column("revoked_at_ms", sa.BigInteger, nullable=True),
    sa.Column("name", sa.Text, nullable=True),  # migration 0003
)

# -- Payments (migration 0004): Auto-Reload's payment method and its charges. ----------------
# `payment_methods`: per account, the ledger-only adapter's allowance (what the operator lets
# it charge; NULL: no method) and the standing decline (NULL: none), which makes every Auto
# Mode call answer 402 until the operator fixes the method. `payment_charges`: every charge
# attempt, keyed by its idempotency key, with the deposit that credited it (NULL: not yet).

payment_methods = sa.Table(
    "payment_methods",
    metadata,
    sa.Column("account_id", sa.Text, primary_key=True),
    sa.Column("allowance_usd_micros", sa.BigInteger, nullable=True),
    sa.Column("declined_at_ms", sa.BigInteger, nullable=True),
    sa.Column("decline_reason", sa.Text, nullable=True),
    sa.Column("updated_at_ms", sa.BigInteger, nullable=False),
    # Migration 0005: the Stripe adapter's method, the customer and its saved payment method.
    sa.Column("stripe_customer_id", sa.Text, nullable=True),
    sa.Column("stripe_payment_method_id", sa.Text, nullable=True),
)

payment_charges = sa.Table(
    "payment_charges",
    metadata,
    sa.Column("idempotency_key", sa.Text, primary_key=True),
    sa.Column("account_id", sa.Text, nullable=False, index=True),
    sa.Column("amount_usd_micros", sa.BigInteger, nullable=False),
    #: `pending`, `charged` or `declined`.
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("decline_reason", sa.Text, nullable=True),
    #: The UTC calendar month of the charge, `YYYY-MM` (the monthly limit's period).
    sa.Column("month", sa.Text, nullable=False),
    sa.Column("created_at_ms", sa.BigInteger, nullable=False),
    #: The command log's last seq when the charge was made (recovery looks for its deposit
    #: after it), and the seq of the `Deposit` that credited the charge.
    sa.Column("log_seq_before", sa.BigInteger, nullable=False),
    sa.Column("deposit_seq", sa.BigInteger, nullable=True),
    # Migration 0005: the Stripe method the charge was first sent with (retries send the same).
    sa.Column("stripe_customer_id", sa.Text, nullable=True),
    sa.Column("stripe_payment_method_id", sa.Text, nullable=True),
)
