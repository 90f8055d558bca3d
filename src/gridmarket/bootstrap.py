"""The composition root: the one place that builds Gridmarket from its parts.

`gridmarket serve` runs `build_app(settings)`. Tests assemble their own app with
`gridmarket.api.app.create_app` and fakes instead; nothing else reaches for globals.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa
from fastapi import FastAPI

from gridmarket.adapters.payment import LedgerPaymentProvider, PaymentProvider
from gridmarket.adapters.stripe_payment import StripeConfig, StripePaymentProvider
from gridmarket.api import (
    account_limits,
    accounts,
    admin,
    admin_keys,
    admin_payment,
    admin_receivables,
    admin_usage,
    anthropic_messages,
    feed,
    me,
    metrics,
    openai_chat,
    orders,
    price_histories,
    self_service,
    supply,
    trades,
    usage,
)
from gridmarket.api.app import ServiceFactory, create_app, include_flat
from gridmarket.auth.operator import load_or_create_operator_token
from gridmarket.gateway.autobuy import AutoBuyer, PaymentFactory
from gridmarket.gateway.contract import SupplierDirectory
from gridmarket.service.runtime import open_market
from gridmarket.settings import PaymentSettings, Settings
from gridmarket.supplier.builtin import with_builtin_supplier


def build_app(settings: Settings) -> FastAPI:
    """The production app for `settings`, with the admin API and its operator token.

    The token is made on the first start (see `auth.operator`); the data dir must exist. The
    admin routes are added here, beside the only place that knows the token.
    """
    # Auto Mode's TokenSupply; it reads the market of the running lifespan on each call.
    buyer = AutoBuyer(lambda: app.state.market, payments=payment_factory(settings.payment))
    app = create_app(
        settings,
        service_factory=lambda s: _closing(buyer, with_builtin_supplier(app, open_market))(s),
    )
    app.state.supplier_directory = SupplierDirectory()
    app.state.builtin_supplier = None  # the built-in supplier's run, while it runs
    app.state.operator_token = load_or_create_operator_token(settings.data_dir)
    # Routes are matched in the order they are included, one pattern at a time: the hot paths
    # (consumption calls, then orders) come first, ahead of some ninety other routes.
    include_flat(app, openai_chat.router)
    include_flat(app, anthropic_messages.router)
    include_flat(app, orders.router)
    include_flat(app, admin.router)
    include_flat(app, me.router)
    include_flat(app, accounts.router)
    include_flat(app, supply.router)
    include_flat(app, price_histories.router)
    include_flat(app, self_service.router)
    include_flat(app, admin_keys.router)
    include_flat(app, feed.router)
    include_flat(app, trades.router)
    include_flat(app, account_limits.router)
    include_flat(app, admin_payment.router)
    include_flat(app, admin_receivables.router)
    app.state.token_supply = buyer
    include_flat(app, usage.router)
    include_flat(app, admin_usage.router)
    include_flat(app, metrics.router)
    return app


def payment_factory(payment: PaymentSettings) -> PaymentFactory:
    """Auto-Reload's payment provider for a market's store, as the settings choose it."""
    if payment.provider == "ledger":
        return LedgerPaymentProvider
    assert payment.stripe_secret_key is not None  # `PaymentSettings.resolve` requires it
    config = StripeConfig(payment.stripe_secret_key, payment.stripe_api_base)

    def stripe(engine: sa.Engine) -> PaymentProvider:
        return StripePaymentProvider(engine, config)

    return stripe


def _closing(buyer: AutoBuyer, factory: ServiceFactory) -> ServiceFactory:
    """`factory`, releasing Auto Mode's payment provider (its connections) when it stops."""

    @asynccontextmanager
    async def service(settings: Settings) -> AsyncIterator[object]:
        try:
            async with factory(settings) as market:
                yield market
        finally:
            await buyer.aclose()

    return service
