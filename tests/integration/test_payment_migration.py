"""Migration 0005 (SQLite and PostgreSQL): a payment method written before it keeps its
allowance and decline and gets no Stripe method; the Stripe ids are then stored and read."""

from __future__ import annotations

from alembic import command as alembic_command
from alembic.config import Config as AlembicConfig

from gridmarket.adapters import payment
from gridmarket.adapters.payment import PaymentMethodRecord, StripeMethod
from gridmarket.adapters.store import MIGRATIONS_DIR, Store


def test_migration_0005_keeps_payment_methods_written_before_it(database_url: str) -> None:
    store = Store(database_url)
    try:
        config = AlembicConfig()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with store.engine.begin() as connection:
            config.attributes["connection"] = connection
            alembic_command.upgrade(config, "0004")
            connection.exec_driver_sql(
                "INSERT INTO payment_methods VALUES"
                " ('acct_old', 7000000, 5, 'allowance_exhausted', 9)"
            )
        store.migrate()
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
