"""Migration 0005 (SQLite and PostgreSQL): a payment method written before it keeps its
allowance and decline and gets no Stripe method, a charge written before it gets no pinned
method; the Stripe ids are then stored and read."""

from __future__ import annotations

from migrations import upgrade_with_rows

from gridmarket.adapters import payment
from gridmarket.adapters.payment import ChargeRecord, PaymentMethodRecord, StripeMethod
from gridmarket.adapters.store import Store


def test_migration_0005_keeps_payment_methods_written_before_it(database_url: str) -> None:
    store = Store(database_url)
    try:
        upgrade_with_rows(
            store,
            "0004",
            "INSERT INTO payment_methods VALUES ('acct_old', 7000000, 5, 'allowance_exhausted', 9)",
            "INSERT INTO payment_charges VALUES"
            " ('reload_old', 'acct_old', 5000000, 'pending', NULL, '2026-11', 9, 3, NULL)",
        )
        store.migrate()
        assert payment.get_charge(store.engine, "reload_old") == ChargeRecord(
            "reload_old", "acct_old", 5_000_000, "pending", None, "2026-11", 9, 3, None, None, None
        )
        pinned = payment.pin_stripe_method(
            store.engine, "reload_old", StripeMethod("cus_Old1", "pm_card_visa")
        )
        assert pinned == StripeMethod("cus_Old1", "pm_card_visa")
        assert payment.get_method(store.engine, "acct_old") == PaymentMethodRecord(
            "acct_old", 7_000_000, 5, "allowance_exhausted", 9, None, None
        )
        method = StripeMethod("cus_Old1", "pm_card_visa")
        stored = payment.set_method(store.engine, "acct_old", None, 10, method)
        assert stored == PaymentMethodRecord(
            "acct_old", 7_000_000, None, None, 10, "cus_Old1", "pm_card_visa"
        )
    finally:
        store.close()
