"""`Client`: the blocking Trading API client, on `httpx.Client`.

    from gridmarket.client import Client

    with Client(key_file="alice.json") as client:          # server: $GRIDMARKET_SERVER
        order = client.place_order("text-prime", "buy", 5, price="2.50")
        for o in client.iter_orders(status="active"):
            print(o.order_id, o.price, o.quantity)
        client.cancel_order(order.order_id)

Each method builds its `Call` in `calls` and runs it through `Engine` (`core`), exactly as
`AsyncClient` does; only the sending differs. Failures raise `GridmarketError` subclasses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx

from gridmarket.client import calls
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
from gridmarket.client.calls import Call
from gridmarket.client.core import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_SERVER,
    DEFAULT_TIMEOUT_S,
    SERVER_ENV,
    Engine,
)
from gridmarket.client.credentials import Credentials, resolve_credentials
from gridmarket.client.errors import TransportError
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
from gridmarket.client.self_models import AccountSettings, ApiKey, MoneyOut, SigningKey
from gridmarket.client.usage_models import DailyUsage, UsageReceipt

T = TypeVar("T")
#: The most pages an `iter_*` method fetches unless told otherwise: 100 pages of 100.
DEFAULT_MAX_PAGES = 100
Price = Decimal | str | int


class Client:
    """A blocking client for one server and, optionally, one signing key."""

    def __init__(
        self,
        server: str | None = None,
        *,
        credentials: Credentials | None = None,
        key_file: str | Path | None = None,
        signing_key: str | bytes | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        creds = resolve_credentials(credentials, key_file=key_file, signing_key=signing_key)
        base = server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
        self.engine = Engine(base, creds, max_retries=max_retries, clock=clock)
        self._http = httpx.Client(timeout=timeout_s, transport=transport)

    @property
    def server(self) -> str:
        return self.engine.server

    @property
    def credentials(self) -> Credentials | None:
        return self.engine.credentials

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def call(self, call: Call[T]) -> T:
        """Run one `Call`, retrying only where the server cannot have acted (see `core`)."""
        attempt = 0
        while True:
            request = self.engine.request(call)
            try:
                response = self._http.send(request)
            except httpx.ConnectError as exc:
                delay = self.engine.retry_delay_s(attempt, None)
                if delay is None:
                    raise TransportError(f"cannot reach {self.server}: {exc}") from None
            except httpx.HTTPError as exc:
                raise TransportError(f"{call.method} {call.path} failed: {exc!r}") from None
            else:
                delay = self.engine.retry_delay_s(attempt, response)
                if delay is None:
                    return self.engine.result(call, response)
            attempt += 1
            time.sleep(delay)

    def _pages(self, make: Callable[[str | None], Call[Page[T]]], max_pages: int) -> Iterator[T]:
        cursor: str | None = None
        for _ in range(max_pages):
            page = self.call(make(cursor))
            yield from page.items
            if not page.has_more or page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- system and market data -----------------------------------------------------------------

    def health(self) -> Health:
        return self.call(calls.health())

    def instruments(self, max_pages: int = DEFAULT_MAX_PAGES) -> list[Instrument]:
        """The whole catalogue, page by page."""
        return list(self._pages(calls.instruments, max_pages))

    def instrument(self, instrument_id: str) -> Instrument:
        return self.call(calls.instrument(instrument_id))

    def markets(self, max_pages: int = DEFAULT_MAX_PAGES) -> list[Market]:
        return list(self._pages(calls.markets, max_pages))

    def market(self, market_id: str) -> Market:
        return self.call(calls.market(market_id))

    def orderbook(self, market_id: str, depth: int | None = None) -> OrderBook:
        return self.call(calls.orderbook(market_id, depth))

    def ticker(self, market_id: str) -> Ticker:
        return self.call(calls.ticker(market_id))

    def public_trades(
        self, market_id: str, limit: int | None = None, next_cursor: str | None = None
    ) -> Page[PublicTrade]:
        return self.call(calls.public_trades(market_id, limit, next_cursor))

    def stats(self, market_id: str) -> MarketStats:
        return self.call(calls.stats(market_id))

    def price_history(
        self, market_id: str, resolution: str, from_s: int | None = None, to_s: int | None = None
    ) -> list[Candle]:
        return self.call(calls.price_history(market_id, resolution, from_s, to_s))

    # -- the account ----------------------------------------------------------------------------

    def me(self) -> Me:
        return self.call(calls.me())

    def account_limits(self, market_id: str) -> AccountLimits:
        return self.call(calls.account_limits(market_id))

    # -- orders ---------------------------------------------------------------------------------

    def place_order(
        self,
        market_id: str,
        side: str,
        quantity: int,
        *,
        price: Price | None = None,
        type: str | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        post_only: bool = False,
    ) -> Order:
        return self.call(
            calls.place_order(
                market_id,
                side,
                quantity,
                price=price,
                type=type,
                time_in_force=time_in_force,
                client_order_id=client_order_id,
                post_only=post_only,
            )
        )

    def get_order(self, order_id: str) -> Order:
        return self.call(calls.get_order(order_id))

    def list_orders(
        self,
        *,
        status: str | None = None,
        market_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[Order]:
        return self.call(
            calls.list_orders(
                status=status, market_id=market_id, limit=limit, next_cursor=next_cursor
            )
        )

    def iter_orders(
        self,
        *,
        status: str | None = None,
        market_id: str | None = None,
        page_size: int = calls.MAX_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[Order]:
        """Every matching order, newest first, page by page (at most `max_pages` pages)."""
        return self._pages(
            lambda cursor: calls.list_orders(
                status=status, market_id=market_id, limit=page_size, next_cursor=cursor
            ),
            max_pages,
        )

    def update_order(
        self,
        order_id: str,
        *,
        price: Price | None = None,
        quantity: int | None = None,
        time_in_force: str | None = None,
    ) -> Order:
        return self.call(
            calls.update_order(
                order_id, price=price, quantity=quantity, time_in_force=time_in_force
            )
        )

    def cancel_order(self, order_id: str) -> None:
        self.call(calls.cancel_order(order_id))

    def cancel_all_orders(self, market_id: str | None = None) -> int:
        return self.call(calls.cancel_all_orders(market_id))

    def count_orders(self) -> OrderCount:
        return self.call(calls.count_orders())

    def trades(
        self,
        *,
        market_id: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[Trade]:
        return self.call(
            calls.trades(
                market_id=market_id, order_id=order_id, limit=limit, next_cursor=next_cursor
            )
        )

    def iter_trades(
        self,
        *,
        market_id: str | None = None,
        order_id: str | None = None,
        page_size: int = calls.MAX_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[Trade]:
        return self._pages(
            lambda cursor: calls.trades(
                market_id=market_id, order_id=order_id, limit=page_size, next_cursor=cursor
            ),
            max_pages,
        )

    def trade(self, trade_id: str) -> Trade:
        return self.call(calls.trade(trade_id))

    # -- balances and transfers -----------------------------------------------------------------

    def trading_accounts(self) -> list[TradingAccount]:
        return self.call(calls.trading_accounts())

    def trading_account(self, account_id: str) -> TradingAccount:
        return self.call(calls.trading_account(account_id))

    def currency_accounts(self) -> list[TradingAccount]:
        return self.call(calls.currency_accounts())

    def currency_account(self, account_id: str) -> TradingAccount:
        return self.call(calls.currency_account(account_id))

    def consumption_accounts(self) -> list[ConsumptionAccount]:
        return self.call(calls.consumption_accounts())

    def consumption_account(self, account_id: str) -> ConsumptionAccount:
        return self.call(calls.consumption_account(account_id))

    def transfer_to_consumption(self, instrument_id: str, quantity: int) -> TransferResult:
        return self.call(calls.transfer_to_consumption(instrument_id, quantity))

    def transfer_histories(
        self,
        *,
        instrument_id: str | None = None,
        market_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[TransferRecord]:
        return self.call(
            calls.transfer_histories(
                instrument_id=instrument_id,
                market_id=market_id,
                limit=limit,
                next_cursor=next_cursor,
            )
        )

    # -- supplier -------------------------------------------------------------------------------

    def issuance_accounts(self) -> list[IssuanceAccount]:
        return self.call(calls.issuance_accounts())

    def issue_supply(self, instrument_id: str, quantity: int) -> SupplyIssuance:
        return self.call(calls.issue_supply(instrument_id, quantity))

    def supply_issuances(
        self,
        *,
        instrument_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[SupplyIssuance]:
        return self.call(
            calls.supply_issuances(
                instrument_id=instrument_id, limit=limit, next_cursor=next_cursor
            )
        )

    def supply_summary(self) -> list[IssuanceSummary]:
        return self.call(calls.supply_summary())

    def transfer_from_issuance(
        self, instrument_id: str, quantity: int, trading_account_id: str | None = None
    ) -> IssuanceTransfer:
        return self.call(calls.transfer_from_issuance(instrument_id, quantity, trading_account_id))

    def supplier_liability(self) -> list[SupplierLiability]:
        return self.call(calls.supplier_liability())

    def supplier_liability_for(self, instrument_id: str) -> SupplierLiability:
        return self.call(calls.supplier_liability_for(instrument_id))

    # -- consumption usage ----------------------------------------------------------------------

    def usage(
        self,
        *,
        key_id: str | None = None,
        instrument_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[UsageReceipt]:
        """One's own usage receipts, newest first."""
        return self.call(
            calls.usage(
                key_id=key_id,
                instrument_id=instrument_id,
                status=status,
                limit=limit,
                next_cursor=next_cursor,
            )
        )

    def iter_usage(
        self,
        *,
        key_id: str | None = None,
        instrument_id: str | None = None,
        status: str | None = None,
        page_size: int = calls.MAX_PAGE_SIZE,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> Iterator[UsageReceipt]:
        """Every retained receipt, newest first, page by page."""
        return self._pages(
            lambda cursor: calls.usage(
                key_id=key_id,
                instrument_id=instrument_id,
                status=status,
                limit=page_size,
                next_cursor=cursor,
            ),
            max_pages,
        )

    def key_usage(
        self,
        key_id: str,
        *,
        instrument_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[UsageReceipt]:
        return self.call(
            calls.key_usage(
                key_id, instrument_id=instrument_id, limit=limit, next_cursor=next_cursor
            )
        )

    def usage_receipt(self, request_id: str) -> UsageReceipt:
        return self.call(calls.usage_receipt(request_id))

    def usage_daily(
        self,
        *,
        key_id: str | None = None,
        instrument_id: str | None = None,
        from_date: str | None = None,
        to_date: str | None = None,
        limit: int | None = None,
    ) -> list[DailyUsage]:
        """Totals per UTC day, key and instrument, newest day first."""
        return self.call(
            calls.usage_daily(
                key_id=key_id,
                instrument_id=instrument_id,
                from_date=from_date,
                to_date=to_date,
                limit=limit,
            )
        )

    # -- self-service ---------------------------------------------------------------------------

    def instrument_by_symbol(self, symbol: str) -> Instrument:
        return self.call(calls.instrument_by_symbol(symbol))

    def api_keys(self) -> list[ApiKey]:
        return self.call(calls.api_keys())

    def create_api_key(
        self, name: str, *, expires_at: str | None = None, spend_cap_tokens: int | None = None
    ) -> ApiKey:
        return self.call(
            calls.create_api_key(name, expires_at=expires_at, spend_cap_tokens=spend_cap_tokens)
        )

    def revoke_api_key(self, key_id: str) -> None:
        return self.call(calls.revoke_api_key(key_id))

    def signing_keys(self) -> list[SigningKey]:
        return self.call(calls.signing_keys())

    def add_signing_key(self, label: str, public_key: str) -> SigningKey:
        return self.call(calls.add_signing_key(label, public_key))

    def revoke_signing_key(self, key_ref: str) -> None:
        return self.call(calls.revoke_signing_key(key_ref))

    def settings(self) -> AccountSettings:
        return self.call(calls.settings())

    def set_account_mode(self, mode: str) -> None:
        return self.call(calls.set_account_mode(mode))

    def set_auto_transfer(self, enabled: bool) -> AccountSettings:
        return self.call(calls.set_auto_transfer(enabled))

    def set_auto_buy(self, enabled: bool) -> AccountSettings:
        return self.call(calls.set_auto_buy(enabled))

    def withdraw(self, amount_usd: Decimal | str | int) -> MoneyOut:
        return self.call(calls.withdraw(amount_usd))

    def payout(self, amount_usd: Decimal | str | int) -> MoneyOut:
        return self.call(calls.payout(amount_usd))
