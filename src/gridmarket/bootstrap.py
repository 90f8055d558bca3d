"""The composition root: the one place that builds Gridmarket from its parts.

`gridmarket serve` runs `build_app(settings)`. Tests assemble their own app with
`gridmarket.api.app.create_app` and fakes instead; nothing else reaches for globals.
"""

from __future__ import annotations

from fastapi import FastAPI

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
from gridmarket.api.app import create_app, include_flat
from gridmarket.auth.operator import load_or_create_operator_token
from gridmarket.gateway.autobuy import AutoBuyer
from gridmarket.gateway.contract import SupplierDirectory
from gridmarket.service.runtime import open_market
from gridmarket.settings import Settings
from gridmarket.supplier.builtin import with_builtin_supplier


def build_app(settings: Settings) -> FastAPI:
    """The production app for `settings`, with the admin API and its operator token.

    The token is made on the first start (see `auth.operator`); the data dir must exist. The
    admin routes are added here, beside the only place that knows the token.
    """
    app = create_app(settings, service_factory=lambda s: with_builtin_supplier(app, open_market)(s))
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
    # Auto Mode's TokenSupply; it reads the market of the running lifespan on each call.
    app.state.token_supply = AutoBuyer(lambda: app.state.market)
    include_flat(app, usage.router)
    include_flat(app, admin_usage.router)
    include_flat(app, metrics.router)
    return app
