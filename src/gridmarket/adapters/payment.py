"""Auto-Reload's payment port, the ledger-only adapter, and the durable record of charges.

The port (DESIGN section 10): `PaymentProvider.charge(account_id, amount_usd_micros,
idempotency_key)` charges the account's payment method and answers `Charged` or `Declined`,
or raises `PaymentUnavailable` when the provider gave no certain answer (it was unreachable,
busy, failing, or the payment is still processing): the charge is then neither paid nor
declined, and is asked again later under the same key. Charging twice with one idempotency key
charges once and answers the same both times. Two adapters: the ledger-only one here, for
self-hosted operators (the account's "payment method" is an allowance the operator sets with
`set_method`; a charge draws it down, and is declined once it is exhausted or when the account
has no method), and a card processor's, `adapters.stripe_payment` (the method is the Stripe
customer and payment method the operator records with `set_method`).

The record (tables of migrations 0004 and 0005, all amounts integer micro-USD):
- `payment_charges`: one row per charge, keyed by its idempotency key. The caller (the
  AutoBuyer) writes it `pending` BEFORE asking the provider (`begin_charge`), so a crash
  in between leaves a row to finish; the outcome is then stored (`finish_charge`), and the
  `Deposit` that credited a charge is noted (`mark_deposited`). The monthly limit counts
  `pending` and `charged` rows of the UTC calendar month (`charged_in_month`). A Stripe
  charge also keeps the customer and payment method it was first sent with
  (`pin_stripe_method`, migration 0005), so that asking again under its key sends the same,
  as Stripe's idempotency requires, even if the operator has changed the account's method
  since.
- `payment_methods`: per account, the allowance, the Stripe customer and payment method ids
  (migration 0005), and the standing decline. A decline is stored
  (`mark_declined`) and stays until the operator sets the method again (`set_method`, which
  clears it): `POST /v1/admin/accounts/{id}/payment-method`.

Functions are synchronous SQLAlchemy Core over the store's engine, each one transaction; the
async callers run them with `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Literal, NamedTuple, Protocol

import sqlalchemy as sa

from gridmarket.adapters.schema import payment_charges, payment_methods
from gridmarket.adapters.transactions import write_transaction

ChargeStatus = Literal["pending", "charged", "declined"]
#: The longest idempotency key or decline reason stored.
MAX_KEY_CHARS = 200


class Charged(NamedTuple):
    idempotency_key: str
    amount_usd_micros: int


class Declined(NamedTuple):
    idempotency_key: str
    #: `no_payment_method`, `allowance_exhausted`, or the provider's own code.
    reason: str


ChargeResult = Charged | Declined


class PaymentUnavailable(Exception):
    """The provider gave no certain answer: the charge may or may not be made yet.

    Not a decline: the charge stays `pending` and is asked again later under the SAME
    idempotency key (never a new one, which could charge twice). `reason` names why, for logs
    and the caller's retryable error (`stripe_unreachable`, `stripe_http_503`, `processing`...).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PaymentProvider(Protocol):
    """Charges an account's saved payment method; idempotent per `idempotency_key`.

    Raises `PaymentUnavailable` when the outcome is not known (see it)."""

    async def charge(
        self, account_id: str, amount_usd_micros: int, idempotency_key: str
    ) -> ChargeResult: ...


class ChargeRecord(NamedTuple):
    idempotency_key: str
    account_id: str
    amount_usd_micros: int
    status: ChargeStatus
    decline_reason: str | None
    month: str
    created_at_ms: int
    log_seq_before: int
    deposit_seq: int | None
    #: The Stripe method the charge was first sent with (`pin_stripe_method`).
    stripe_customer_id: str | None = None
    stripe_payment_method_id: str | None = None


class PaymentMethodRecord(NamedTuple):
    account_id: str
    #: What the ledger-only adapter may still charge; None: no method.
    allowance_usd_micros: int | None
    declined_at_ms: int | None
    decline_reason: str | None
    updated_at_ms: int
    #: The Stripe adapter's method: the customer (`cus_...`) and its saved payment method
    #: (`pm_...`); None: not set (migration 0005).
    stripe_customer_id: str | None = None
    stripe_payment_method_id: str | None = None


class StripeMethod(NamedTuple):
    customer_id: str
    payment_method_id: str


def utc_month(epoch_ms: int) -> str:
    """The UTC calendar month of an instant, `YYYY-MM`: the monthly limit's period."""
    return datetime.fromtimestamp(epoch_ms // 1000, tz=UTC).strftime("%Y-%m")


# -- charges -----------------------------------------------------------------------------------


def begin_charge(
    engine: sa.Engine,
    idempotency_key: str,
    account_id: str,
    amount_usd_micros: int,
    now_ms: int,
    log_seq_before: int,
) -> ChargeRecord:
    """Record a charge about to be asked for (`pending`); the existing row if the key is taken."""
    assert 0 < len(idempotency_key) <= MAX_KEY_CHARS and amount_usd_micros > 0
    with write_transaction(engine) as connection:
        row = connection.execute(
            sa.select(payment_charges).where(payment_charges.c.idempotency_key == idempotency_key)
        ).one_or_none()
        if row is not None:
            return ChargeRecord(*row)
        record = ChargeRecord(
            idempotency_key,
            account_id,
            amount_usd_micros,
            "pending",
            None,
            utc_month(now_ms),
            now_ms,
            log_seq_before,
            None,
        )
        connection.execute(sa.insert(payment_charges).values(record._asdict()))
        return record


def finish_charge(engine: sa.Engine, result: ChargeResult) -> None:
    """Store the provider's answer on a pending charge (a finished one keeps its first answer)."""
    status, reason = (
        ("charged", None) if isinstance(result, Charged) else ("declined", result.reason)
    )
    with write_transaction(engine) as connection:
        connection.execute(
            sa.update(payment_charges)
            .where(payment_charges.c.idempotency_key == result.idempotency_key)
            .where(payment_charges.c.status == "pending")
            .values(status=status, decline_reason=reason)
        )


def pin_stripe_method(
    engine: sa.Engine, idempotency_key: str, current: StripeMethod | None
) -> StripeMethod | None:
    """The Stripe method the charge `idempotency_key` is sent with: the one it was first sent
    with, else `current`, kept on the charge's record from now on. Without a record (a charge
    asked for directly), `current`, kept nowhere."""
    with write_transaction(engine) as connection:
        if current is not None:
            connection.execute(
                sa.update(payment_charges)
                .where(payment_charges.c.idempotency_key == idempotency_key)
                .where(payment_charges.c.stripe_customer_id.is_(None))
                .values(
                    stripe_customer_id=current.customer_id,
                    stripe_payment_method_id=current.payment_method_id,
                )
            )
        row = connection.execute(
            sa.select(
                payment_charges.c.stripe_customer_id, payment_charges.c.stripe_payment_method_id
            ).where(payment_charges.c.idempotency_key == idempotency_key)
        ).one_or_none()
    if row is None or row[0] is None or row[1] is None:
        return current
    return StripeMethod(row[0], row[1])


def mark_deposited(engine: sa.Engine, idempotency_key: str, deposit_seq: int) -> None:
    with write_transaction(engine) as connection:
        connection.execute(
            sa.update(payment_charges)
            .where(payment_charges.c.idempotency_key == idempotency_key)
            .values(deposit_seq=deposit_seq)
        )


def get_charge(engine: sa.Engine, idempotency_key: str) -> ChargeRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(payment_charges).where(payment_charges.c.idempotency_key == idempotency_key)
        ).one_or_none()
    return None if row is None else ChargeRecord(*row)


def charged_in_month(engine: sa.Engine, account_id: str, month: str) -> int:
    """Micro-USD charged (or being charged) to the account in the UTC month `YYYY-MM`."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(payment_charges.c.amount_usd_micros), 0))
        .where(payment_charges.c.account_id == account_id)
        .where(payment_charges.c.month == month)
        .where(payment_charges.c.status.in_(("pending", "charged")))
    )
    with engine.connect() as connection:
        return int(connection.execute(query).scalar_one())


def unfinished_charges(engine: sa.Engine, limit: int = 1_000) -> list[ChargeRecord]:
    """Charges still pending, or charged but not yet deposited, oldest first (for recovery)."""
    undeposited = sa.and_(
        payment_charges.c.status == "charged", payment_charges.c.deposit_seq.is_(None)
    )
    return _oldest_first(engine, limit, sa.or_(payment_charges.c.status == "pending", undeposited))


def pending_charges(engine: sa.Engine, account_id: str, limit: int = 10) -> list[ChargeRecord]:
    """The account's charges still waiting for a certain answer, oldest first."""
    return _oldest_first(
        engine,
        limit,
        payment_charges.c.account_id == account_id,
        payment_charges.c.status == "pending",
    )


def _oldest_first(
    engine: sa.Engine, limit: int, *conditions: sa.ColumnElement[bool]
) -> list[ChargeRecord]:
    query = (
        sa.select(payment_charges)
        .where(*conditions)
        .order_by(payment_charges.c.created_at_ms, payment_charges.c.idempotency_key)
        .limit(limit)
    )
    with engine.connect() as connection:
        return [ChargeRecord(*row) for row in connection.execute(query)]


def claimed_deposit_seqs(engine: sa.Engine, account_id: str) -> set[int]:
    """The deposits already credited to some charge of the account."""
    query = (
        sa.select(payment_charges.c.deposit_seq)
        .where(payment_charges.c.account_id == account_id)
        .where(payment_charges.c.deposit_seq.is_not(None))
    )
    with engine.connect() as connection:
        return {int(seq) for seq in connection.execute(query).scalars()}


# -- payment methods ---------------------------------------------------------------------------


def get_method(engine: sa.Engine, account_id: str) -> PaymentMethodRecord | None:
    with engine.connect() as connection:
        row = connection.execute(
            sa.select(payment_methods).where(payment_methods.c.account_id == account_id)
        ).one_or_none()
    return None if row is None else PaymentMethodRecord(*row)


def _upsert_method(
    connection: sa.Connection, account_id: str, now_ms: int, **values: object
) -> None:
    updated = connection.execute(
        sa.update(payment_methods)
        .where(payment_methods.c.account_id == account_id)
        .values(updated_at_ms=now_ms, **values)
    )
    if updated.rowcount == 0:
        connection.execute(
            sa.insert(payment_methods).values(account_id=account_id, updated_at_ms=now_ms, **values)
        )


def set_method(
    engine: sa.Engine,
    account_id: str,
    allowance_usd_micros: int | None,
    now_ms: int,
    stripe: StripeMethod | None = None,
) -> PaymentMethodRecord:
    """Set the account's method (the ledger-only allowance, the Stripe ids; None: keep what is
    there) and clear any decline."""
    assert allowance_usd_micros is None or allowance_usd_micros >= 0
    values: dict[str, object] = {"declined_at_ms": None, "decline_reason": None}
    if allowance_usd_micros is not None:
        values["allowance_usd_micros"] = allowance_usd_micros
    if stripe is not None:
        values["stripe_customer_id"] = stripe.customer_id
        values["stripe_payment_method_id"] = stripe.payment_method_id
    with write_transaction(engine) as connection:
        _upsert_method(connection, account_id, now_ms, **values)
    method = get_method(engine, account_id)
    assert method is not None
    return method


def mark_declined(engine: sa.Engine, account_id: str, reason: str, now_ms: int) -> None:
    """Record a standing decline: Auto Mode calls answer 402 until `set_method` clears it."""
    with write_transaction(engine) as connection:
        _upsert_method(
            connection,
            account_id,
            now_ms,
            declined_at_ms=now_ms,
            decline_reason=reason[:MAX_KEY_CHARS],
        )


def declined_accounts(engine: sa.Engine) -> dict[str, str]:
    """Every account with a standing decline, and its reason."""
    query = sa.select(payment_methods.c.account_id, payment_methods.c.decline_reason).where(
        payment_methods.c.declined_at_ms.is_not(None)
    )
    with engine.connect() as connection:
        return {str(row[0]): str(row[1] or "declined") for row in connection.execute(query)}


# -- the ledger-only adapter -------------------------------------------------------------------


class LedgerPaymentProvider:
    """Self-hosted operators' payment method: a per-account allowance set by the operator.

    A charge draws the allowance down, in one transaction with its record: the method's row is
    locked first, so concurrent charges of one account never draw more than it holds. A key
    already answered returns that answer. No allowance, or less than the amount: `Declined`.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine

    async def charge(
        self, account_id: str, amount_usd_micros: int, idempotency_key: str
    ) -> ChargeResult:
        return await asyncio.to_thread(self._charge, account_id, amount_usd_micros, idempotency_key)

    def _charge(
        self, account_id: str, amount_usd_micros: int, idempotency_key: str
    ) -> ChargeResult:
        with write_transaction(self._engine) as connection:
            locked = connection.execute(
                sa.update(payment_methods)
                .where(payment_methods.c.account_id == account_id)
                .values(account_id=payment_methods.c.account_id)
            )
            row = connection.execute(
                sa.select(payment_charges).where(
                    payment_charges.c.idempotency_key == idempotency_key
                )
            ).one_or_none()
            if row is not None and row.status == "charged":
                return Charged(idempotency_key, int(row.amount_usd_micros))
            if row is not None and row.status == "declined":
                return Declined(idempotency_key, str(row.decline_reason))
            allowance = None
            if locked.rowcount == 1:
                allowance = connection.execute(
                    sa.select(payment_methods.c.allowance_usd_micros).where(
                        payment_methods.c.account_id == account_id
                    )
                ).scalar_one()
            result: ChargeResult
            if allowance is None:
                result = Declined(idempotency_key, "no_payment_method")
            elif allowance < amount_usd_micros:
                result = Declined(idempotency_key, "allowance_exhausted")
            else:
                connection.execute(
                    sa.update(payment_methods)
                    .where(payment_methods.c.account_id == account_id)
                    .values(allowance_usd_micros=allowance - amount_usd_micros)
                )
                result = Charged(idempotency_key, amount_usd_micros)
            status: ChargeStatus = "charged" if isinstance(result, Charged) else "declined"
            reason = None if isinstance(result, Charged) else result.reason
            if row is not None:  # the caller's pending record: finished in this transaction
                connection.execute(
                    sa.update(payment_charges)
                    .where(payment_charges.c.idempotency_key == idempotency_key)
                    .values(status=status, decline_reason=reason)
                )
            else:  # charged directly: recorded here, so that the key stays idempotent
                now_ms = time.time_ns() // 1_000_000
                connection.execute(
                    sa.insert(payment_charges).values(
                        ChargeRecord(
                            idempotency_key,
                            account_id,
                            amount_usd_micros,
                            status,
                            reason,
                            utc_month(now_ms),
                            now_ms,
                            0,
                            None,
                        )._asdict()
                    )
                )
            return result
