"""Every Trading API call as data: method, path, query, body and how to read the answer.

A `Call[T]` is built by a pure function here and run by either client (`Client` blocking,
`AsyncClient` on asyncio), so each endpoint's request shape and result parsing is written once.
Paths are under `/v1` (grid-api-notes.md §4.0); ids in paths are percent-encoded, and the path
is signed exactly as sent. Arguments are checked before anything is sent: a float price, a
non-positive quantity or an unknown side raises `ValueError`/`TypeError` locally.

Query dialect: plain `key=value` filters (`status=active`, `market_id=`), `limit` and `next`
for paging (grid-api-notes.md §5), which Gridmarket's lists accept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Generic, Literal, TypeVar
from urllib.parse import quote

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
from gridmarket.client.errors import ResponseFormatError
from gridmarket.client.market_models import (
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
from gridmarket.client.parse import Fields, data_list, envelope_data
from gridmarket.client.self_models import AccountSettings, ApiKey, MoneyOut, SigningKey
from gridmarket.client.usage_models import DailyUsage, UsageReceipt

T = TypeVar("T")
Auth = Literal["signed", "public", "unsigned"]
"""`signed`: needs a key. `public`: signed when a key is loaded (as The Grid's client does),
sent unsigned otherwise. `unsigned`: never signed (`/health`)."""

MAX_PAGE_SIZE = 100
SIDES = ("buy", "sell")
ORDER_TYPES = ("limit", "market")
TIMES_IN_FORCE = ("gtc", "ioc", "fok")
RESOLUTIONS = ("1m", "5m", "15m", "1h", "4h", "1d", "1w")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[object], T]
    """Reads the whole decoded body (None when the answer has no body)."""
    query: tuple[tuple[str, str], ...] = ()
    body: Mapping[str, object] | None = field(default=None)
    auth: Auth = "signed"


# -- readers -------------------------------------------------------------------------------------


def _one(parse: Callable[[object], T]) -> Callable[[object], T]:
    return lambda body: parse(envelope_data(body))


def _many(parse: Callable[[object], T]) -> Callable[[object], list[T]]:
    return lambda body: [parse(item) for item in data_list(body)]


def _page(parse: Callable[[object], T]) -> Callable[[object], Page[T]]:
    def read(body: object) -> Page[T]:
        items = tuple(parse(item) for item in data_list(body))
        paging = body.get("paging") if isinstance(body, Mapping) else None
        if not isinstance(paging, Mapping):
            return Page(items, False, None, None)
        f = Fields(paging, "paging")
        next_cursor = f.opt_text("next_cursor")
        has_more = f.opt_bool("has_more")
        return Page(
            items,
            bool(next_cursor) if has_more is None else has_more and bool(next_cursor),
            next_cursor,
            f.opt_text("prev_cursor"),
        )

    return read


def _nothing(body: object) -> None:
    return None


def _cancelled(body: object) -> int:
    return Fields(envelope_data(body), "cancel result").whole("cancelled")


def _summary(body: object) -> list[IssuanceSummary]:
    # The client expects an array, or `{"data": [...]}` inside `data` (contract §2).
    data = envelope_data(body)
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise ResponseFormatError("issuance summary: expected a list", body=body)
    return [IssuanceSummary.parse(row) for row in data]


# -- argument checks ----------------------------------------------------------------------------


def _segment(value: str, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return quote(value, safe="")


def _choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, not {value!r}")
    return value


def _units(value: int, name: str = "quantity") -> int:
    if type(value) is not int or value <= 0:
        raise ValueError(f"{name} must be a positive whole number of units, not {value!r}")
    return value


def price_text(value: Decimal | str | int) -> str:
    """A price as the decimal string sent on the wire; floats are refused (not exact)."""
    if isinstance(value, float | bool):
        raise TypeError("a price must be a Decimal, a decimal string or an int, never a float")
    try:
        price = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation:
        raise ValueError(f"price {value!r} is not a decimal number") from None
    if not price.is_finite() or price <= 0:
        raise ValueError(f"price must be a positive decimal, not {value!r}")
    return format(price, "f")


def _paging(limit: int | None, next_cursor: str | None) -> list[tuple[str, str]]:
    query = []
    if limit is not None:
        if type(limit) is not int or not 1 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be an integer from 1 to {MAX_PAGE_SIZE}")
        query.append(("limit", str(limit)))
    if next_cursor is not None:
        query.append(("next", next_cursor))
    return query


def _filters(**values: str | None) -> list[tuple[str, str]]:
    return [(name, value) for name, value in values.items() if value is not None]


# -- system and market data (public) ------------------------------------------------------------


def health() -> Call[Health]:
    return Call("GET", "/v1/health", _one(Health.parse), auth="unsigned")


def instruments(next_cursor: str | None = None) -> Call[Page[Instrument]]:
    query = tuple(_paging(MAX_PAGE_SIZE, next_cursor))
    return Call("GET", "/v1/instruments", _page(Instrument.parse), query, auth="public")


def instrument(instrument_id: str) -> Call[Instrument]:
    path = f"/v1/instruments/{_segment(instrument_id, 'instrument_id')}"
    return Call("GET", path, _one(Instrument.parse), auth="public")


def instrument_by_symbol(symbol: str) -> Call[Instrument]:
    path = f"/v1/instruments/by-symbol/{_segment(symbol, 'symbol')}"
    return Call("GET", path, _one(Instrument.parse), auth="public")


def markets(next_cursor: str | None = None) -> Call[Page[Market]]:
    query = tuple(_paging(MAX_PAGE_SIZE, next_cursor))
    return Call("GET", "/v1/markets", _page(Market.parse), query, auth="public")


def market(market_id: str) -> Call[Market]:
    path = f"/v1/markets/{_segment(market_id, 'market_id')}"
    return Call("GET", path, _one(Market.parse), auth="public")


def orderbook(market_id: str, depth: int | None = None) -> Call[OrderBook]:
    path = f"/v1/markets/{_segment(market_id, 'market_id')}/orderbook"
    query: tuple[tuple[str, str], ...] = ()
    if depth is not None:
        if type(depth) is not int or depth <= 0:
            raise ValueError("depth must be a positive integer")
        query = (("depth", str(depth)),)
    return Call("GET", path, _one(OrderBook.parse), query, auth="public")


def ticker(market_id: str) -> Call[Ticker]:
    path = f"/v1/markets/{_segment(market_id, 'market_id')}/ticker"
    return Call("GET", path, _one(Ticker.parse), auth="public")


def public_trades(
    market_id: str, limit: int | None = None, next_cursor: str | None = None
) -> Call[Page[PublicTrade]]:
    path = f"/v1/markets/{_segment(market_id, 'market_id')}/trades"
    query = tuple(_paging(limit, next_cursor))
    return Call("GET", path, _page(PublicTrade.parse), query, auth="public")


def stats(market_id: str) -> Call[MarketStats]:
    path = f"/v1/markets/{_segment(market_id, 'market_id')}/stats"
    return Call("GET", path, _one(MarketStats.parse), auth="public")


def price_history(
    market_id: str, resolution: str, from_s: int | None = None, to_s: int | None = None
) -> Call[list[Candle]]:
    """OHLCV candles; `from_s`/`to_s` are Unix seconds (grid-client-contract.md §3)."""
    _segment(market_id, "market_id")
    _choice(resolution, "resolution", RESOLUTIONS)
    query = _filters(market_id=market_id, resolution=resolution)
    for name, value in (("from", from_s), ("to", to_s)):
        if value is not None:
            if type(value) is not int or value < 0:
                raise ValueError(f"{name} must be Unix seconds, a non-negative int")
            query.append((name, str(value)))
    return Call("GET", "/v1/price-histories", _many(Candle.parse), tuple(query), auth="public")


# -- the account --------------------------------------------------------------------------------


def me() -> Call[Me]:
    return Call("GET", "/v1/me", _one(Me.parse))


def account_limits(market_id: str) -> Call[AccountLimits]:
    query = (("market_id", market_id),)
    _segment(market_id, "market_id")
    return Call("GET", "/v1/account/limits", _one(AccountLimits.parse), query)


# -- orders -------------------------------------------------------------------------------------


def place_order(
    market_id: str,
    side: str,
    quantity: int,
    *,
    price: Decimal | str | int | None = None,
    type: str | None = None,
    time_in_force: str | None = None,
    client_order_id: str | None = None,
    post_only: bool = False,
) -> Call[Order]:
    """A limit order when a price is given, else a market order (unless `type` says)."""
    _segment(market_id, "market_id")
    order_type = type or ("limit" if price is not None else "market")
    body: dict[str, object] = {
        "market_id": market_id,
        "side": _choice(side, "side", SIDES),
        "type": _choice(order_type, "type", ORDER_TYPES),
        "quantity": str(_units(quantity)),
    }
    if order_type == "limit" and price is None:
        raise ValueError("a limit order needs a price")
    if price is not None:
        body["price"] = price_text(price)
    if time_in_force is not None:
        body["time_in_force"] = _choice(time_in_force, "time_in_force", TIMES_IN_FORCE)
    if client_order_id is not None:
        body["client_order_id"] = client_order_id
    if post_only:
        body["post_only"] = True
    return Call("POST", "/v1/orders", _one(Order.parse), body=body)


def get_order(order_id: str) -> Call[Order]:
    return Call("GET", f"/v1/orders/{_segment(order_id, 'order_id')}", _one(Order.parse))


def list_orders(
    *,
    status: str | None = None,
    market_id: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[Order]]:
    query = _filters(status=status, market_id=market_id) + _paging(limit, next_cursor)
    return Call("GET", "/v1/orders", _page(Order.parse), tuple(query))


def update_order(
    order_id: str,
    *,
    price: Decimal | str | int | None = None,
    quantity: int | None = None,
    time_in_force: str | None = None,
) -> Call[Order]:
    """Cancel-replace: the answer is the full new Order (PUT /v1/orders/{id})."""
    body: dict[str, object] = {}
    if price is not None:
        body["price"] = price_text(price)
    if quantity is not None:
        body["quantity"] = str(_units(quantity))
    if time_in_force is not None:
        body["time_in_force"] = _choice(time_in_force, "time_in_force", TIMES_IN_FORCE)
    if not body:
        raise ValueError("an update needs a price, a quantity or a time_in_force")
    path = f"/v1/orders/{_segment(order_id, 'order_id')}"
    return Call("PUT", path, _one(Order.parse), body=body)


def cancel_order(order_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/orders/{_segment(order_id, 'order_id')}", _nothing)


def cancel_all_orders(market_id: str | None = None) -> Call[int]:
    """Cancel every open order (of one market when given); the result is how many."""
    if market_id is None:
        return Call("DELETE", "/v1/orders", _cancelled)
    return Call("DELETE", f"/v1/markets/{_segment(market_id, 'market_id')}/orders", _cancelled)


def count_orders() -> Call[OrderCount]:
    return Call("GET", "/v1/orders/count", _one(OrderCount.parse))


def trades(
    *,
    market_id: str | None = None,
    order_id: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[Trade]]:
    """One's own fills."""
    query = _filters(market_id=market_id, order_id=order_id) + _paging(limit, next_cursor)
    return Call("GET", "/v1/trades", _page(Trade.parse), tuple(query))


def trade(trade_id: str) -> Call[Trade]:
    return Call("GET", f"/v1/trades/{_segment(trade_id, 'trade_id')}", _one(Trade.parse))


# -- balances and transfers ---------------------------------------------------------------------


def trading_accounts() -> Call[list[TradingAccount]]:
    return Call("GET", "/v1/trading-accounts", _many(TradingAccount.parse))


def trading_account(account_id: str) -> Call[TradingAccount]:
    path = f"/v1/trading-accounts/{_segment(account_id, 'account_id')}"
    return Call("GET", path, _one(TradingAccount.parse))


def currency_accounts() -> Call[list[TradingAccount]]:
    return Call("GET", "/v1/currency-trading-accounts", _many(TradingAccount.parse))


def currency_account(account_id: str) -> Call[TradingAccount]:
    path = f"/v1/currency-trading-accounts/{_segment(account_id, 'account_id')}"
    return Call("GET", path, _one(TradingAccount.parse))


def consumption_accounts() -> Call[list[ConsumptionAccount]]:
    return Call("GET", "/v1/consumption-accounts", _many(ConsumptionAccount.parse))


def consumption_account(account_id: str) -> Call[ConsumptionAccount]:
    path = f"/v1/consumption-accounts/{_segment(account_id, 'account_id')}"
    return Call("GET", path, _one(ConsumptionAccount.parse))


def transfer_to_consumption(instrument_id: str, quantity: int) -> Call[TransferResult]:
    """Move units from trading to consumption (one way; quantity a JSON integer, §3)."""
    _segment(instrument_id, "instrument_id")
    body = {"instrument_id": instrument_id, "quantity": _units(quantity)}
    return Call("POST", "/v1/transfers/trading-to-consumption", TransferResult.parse, body=body)


def transfer_histories(
    *,
    instrument_id: str | None = None,
    market_id: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[TransferRecord]]:
    query = _filters(instrument_id=instrument_id, market_id=market_id)
    query += _paging(limit, next_cursor)
    return Call("GET", "/v1/transfer-histories", _page(TransferRecord.parse), tuple(query))


# -- supplier -----------------------------------------------------------------------------------


def issuance_accounts() -> Call[list[IssuanceAccount]]:
    return Call("GET", "/v1/issuance-accounts", _many(IssuanceAccount.parse))


def issue_supply(instrument_id: str, quantity: int) -> Call[SupplyIssuance]:
    _segment(instrument_id, "instrument_id")
    body = {"instrument_id": instrument_id, "quantity": _units(quantity)}
    return Call("POST", "/v1/supply-issuances", _one(SupplyIssuance.parse), body=body)


def supply_issuances(
    *,
    instrument_id: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[SupplyIssuance]]:
    query = _filters(instrument_id=instrument_id) + _paging(limit, next_cursor)
    return Call("GET", "/v1/supply-issuances", _page(SupplyIssuance.parse), tuple(query))


def supply_summary() -> Call[list[IssuanceSummary]]:
    return Call("GET", "/v1/supply-issuances/summary", _summary)


def transfer_from_issuance(
    instrument_id: str, quantity: int, trading_account_id: str | None = None
) -> Call[IssuanceTransfer]:
    """Move issued units into trading, where they can be offered for sale."""
    _segment(instrument_id, "instrument_id")
    body: dict[str, object] = {"instrument_id": instrument_id, "quantity": _units(quantity)}
    if trading_account_id is not None:
        body["trading_account_id"] = trading_account_id
    return Call("POST", "/v1/issuance-accounts/transfer", _one(IssuanceTransfer.parse), body=body)


def supplier_liability() -> Call[list[SupplierLiability]]:
    return Call("GET", "/v1/supplier-liability", _many(SupplierLiability.parse))


def supplier_liability_for(instrument_id: str) -> Call[SupplierLiability]:
    path = f"/v1/supplier-liability/{_segment(instrument_id, 'instrument_id')}"
    return Call("GET", path, _one(SupplierLiability.parse))


# -- consumption usage --------------------------------------------------------------------------

USAGE_STATUSES = ("ok", "failed", "cancelled")
MAX_DAILY_ROWS = 1_000


def _usage_query(
    key_id: str | None, instrument_id: str | None, status: str | None
) -> list[tuple[str, str]]:
    if status is not None:
        _choice(status, "status", USAGE_STATUSES)
    return _filters(key_id=key_id, instrument_id=instrument_id, status=status)


def usage(
    *,
    key_id: str | None = None,
    instrument_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[UsageReceipt]]:
    """One's own usage receipts, newest first."""
    query = _usage_query(key_id, instrument_id, status) + _paging(limit, next_cursor)
    return Call("GET", "/v1/usage", _page(UsageReceipt.parse), tuple(query))


def key_usage(
    key_id: str,
    *,
    instrument_id: str | None = None,
    limit: int | None = None,
    next_cursor: str | None = None,
) -> Call[Page[UsageReceipt]]:
    """The receipts of one of one's consumption keys, newest first."""
    path = f"/v1/api-keys/{_segment(key_id, 'key_id')}/usage"
    query = _filters(instrument_id=instrument_id) + _paging(limit, next_cursor)
    return Call("GET", path, _page(UsageReceipt.parse), tuple(query))


def usage_receipt(request_id: str) -> Call[UsageReceipt]:
    path = f"/v1/usage/{_segment(request_id, 'request_id')}"
    return Call("GET", path, _one(UsageReceipt.parse))


def usage_daily(
    *,
    key_id: str | None = None,
    instrument_id: str | None = None,
    from_date: str | None = None,
    to_date: str | None = None,
    limit: int | None = None,
) -> Call[list[DailyUsage]]:
    """Totals per UTC day, key and instrument, newest day first."""
    query = _filters(
        key_id=key_id, instrument_id=instrument_id, from_date=from_date, to_date=to_date
    )
    if limit is not None:
        if type(limit) is not int or not 1 <= limit <= MAX_DAILY_ROWS:
            raise ValueError(f"limit must be an integer from 1 to {MAX_DAILY_ROWS}")
        query.append(("limit", str(limit)))
    return Call("GET", "/v1/usage/daily", _many(DailyUsage.parse), tuple(query))


# -- self-service: one's own keys, settings and money out ---------------------------------------

ACCOUNT_MODES = ("easy", "advanced")


def api_keys() -> Call[list[ApiKey]]:
    return Call("GET", "/v1/api-keys", _many(ApiKey.parse))


def create_api_key(
    name: str, *, expires_at: str | None = None, spend_cap_tokens: int | None = None
) -> Call[ApiKey]:
    """A new consumption key; its plaintext is in the result's `key`, and only there."""
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    fields: dict[str, object] = {"name": name}
    if expires_at is not None:
        fields["expires_at"] = expires_at
    if spend_cap_tokens is not None:
        fields["spend_cap_tokens"] = _units(spend_cap_tokens, "spend_cap_tokens")
    return Call("POST", "/v1/api-keys", _one(ApiKey.parse), body={"api_key": fields})


def revoke_api_key(key_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/api-keys/{_segment(key_id, 'key_id')}", _nothing)


def signing_keys() -> Call[list[SigningKey]]:
    return Call("GET", "/v1/signing-keys", _many(SigningKey.parse))


def add_signing_key(label: str, public_key: str) -> Call[SigningKey]:
    """Register another Ed25519 public key (standard base64 of its 32 raw bytes)."""
    if not isinstance(label, str) or not label:
        raise ValueError("label must be a non-empty string")
    _segment(public_key, "public_key")
    body = {"signing_key": {"label": label, "public_key": public_key}}
    return Call("POST", "/v1/signing-keys", _one(SigningKey.parse), body=body)


def revoke_signing_key(key_ref: str) -> Call[None]:
    """Revoke by key id or fingerprint (percent-encoded: a fingerprint may hold `/` or `+`)."""
    return Call("DELETE", f"/v1/signing-keys/{_segment(key_ref, 'key_ref')}", _nothing)


def settings() -> Call[AccountSettings]:
    return Call("GET", "/v1/self/system-settings", _one(AccountSettings.parse))


def set_account_mode(mode: str) -> Call[None]:
    body = {"mode": _choice(mode, "mode", ACCOUNT_MODES)}
    return Call("POST", "/v1/self/system-settings/account-mode", _nothing, body=body)


def set_auto_transfer(enabled: bool) -> Call[AccountSettings]:
    if type(enabled) is not bool:
        raise TypeError("enabled must be True or False")
    body = {"auto_transfer_enabled": enabled}
    path = "/v1/self/system-settings/auto-transfer"
    return Call("PATCH", path, _one(AccountSettings.parse), body=body)


def set_auto_buy(enabled: bool) -> Call[AccountSettings]:
    if type(enabled) is not bool:
        raise TypeError("enabled must be True or False")
    body = {"auto_buy_enabled": enabled}
    return Call(
        "PATCH", "/v1/self/system-settings/auto-buy", _one(AccountSettings.parse), body=body
    )


def _usd_amount(amount: Decimal | str | int) -> str:
    text = price_text(amount)  # the same rules: a positive exact decimal, never a float
    if Decimal(text) != Decimal(text).quantize(Decimal("0.000001")):
        raise ValueError("an amount has at most 6 decimals (the micro-dollar)")
    return text


def withdraw(amount_usd: Decimal | str | int) -> Call[MoneyOut]:
    body = {"amount_usd": _usd_amount(amount_usd)}
    return Call("POST", "/v1/withdrawals", _one(MoneyOut.parse), body=body)


def payout(amount_usd: Decimal | str | int) -> Call[MoneyOut]:
    """A supplier payout of its available USD."""
    body = {"amount_usd": _usd_amount(amount_usd)}
    return Call("POST", "/v1/payouts", _one(MoneyOut.parse), body=body)
