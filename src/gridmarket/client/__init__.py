"""A typed Python client for Gridmarket's (and The Grid's) Trading API, blocking and asyncio.

    from gridmarket.client import Client, AsyncClient, NotFound

    client = Client("http://127.0.0.1:8000", key_file="alice.json")
    book = client.orderbook("text-prime", depth=10)
    order = client.place_order("text-prime", "buy", 5, price="2.50", client_order_id="b1")

- `Client` and `AsyncClient` share one implementation: `calls` describes each request and how
  its answer is read, `core.Engine` signs requests (Ed25519, as The Grid) and turns answers
  into typed results or exceptions; the two clients only send.
- Results are frozen dataclasses (`market_models`, `order_models`, `account_models`,
  `self_models`): prices
  and balances are `Decimal` (never float), quantities `int`.
- Failures are `GridmarketError` subclasses (`errors`) carrying The Grid's code and detail.
- Credentials: `credentials.Credentials` from a key file, a private key or the environment
  (`GRIDMARKET_SIGNING_KEY`, `GRIDMARKET_KEY_FILE`); the server from the argument,
  `GRIDMARKET_SERVER`, else http://127.0.0.1:8000.
"""

from gridmarket.client.account_models import (
    AccountLimits,
    ConsumptionAccount,
    IssuanceAccount,
    IssuanceSummary,
    IssuanceTransfer,
    SupplierLiability,
    SupplyIssuance,
    TradingAccount,
    TransferRecord,
    TransferResult,
)
from gridmarket.client.aio import AsyncClient
from gridmarket.client.credentials import Credentials
from gridmarket.client.errors import (
    AuthError,
    AutoModeRestricted,
    Conflict,
    CredentialsError,
    Forbidden,
    GridmarketError,
    NotFound,
    RateLimited,
    ResponseFormatError,
    ServerError,
    TransportError,
    ValidationError,
)
from gridmarket.client.market_models import (
    BookLevel,
    Candle,
    Health,
    Instrument,
    Market,
    MarketStats,
    OrderBook,
    PublicTrade,
    Ticker,
)
from gridmarket.client.order_models import Me, Order, OrderCount, Page, Trade
from gridmarket.client.self_models import AccountSettings, ApiKey, MoneyOut, SigningKey
from gridmarket.client.sync import Client
from gridmarket.client.usage_models import DailyUsage, UsageLot, UsageReceipt, UsageSubstitution

__all__ = [
    "AccountLimits",
    "AccountSettings",
    "ApiKey",
    "AsyncClient",
    "AuthError",
    "AutoModeRestricted",
    "BookLevel",
    "Candle",
    "Client",
    "Conflict",
    "ConsumptionAccount",
    "Credentials",
    "CredentialsError",
    "DailyUsage",
    "Forbidden",
    "GridmarketError",
    "Health",
    "Instrument",
    "IssuanceAccount",
    "IssuanceSummary",
    "IssuanceTransfer",
    "Market",
    "MarketStats",
    "Me",
    "MoneyOut",
    "NotFound",
    "Order",
    "OrderBook",
    "OrderCount",
    "Page",
    "PublicTrade",
    "RateLimited",
    "ResponseFormatError",
    "ServerError",
    "SigningKey",
    "SupplierLiability",
    "SupplyIssuance",
    "Ticker",
    "Trade",
    "TradingAccount",
    "TransferRecord",
    "TransferResult",
    "TransportError",
    "UsageLot",
    "UsageReceipt",
    "UsageSubstitution",
    "ValidationError",
]
