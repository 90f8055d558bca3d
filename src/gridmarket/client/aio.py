"""`AsyncClient`: the asyncio Trading API client, on `httpx.AsyncClient`.

    from gridmarket.client import AsyncClient

    async with AsyncClient(key_file="alice.json") as client:
        order = await client.place_order("text-prime", "buy", 5, price="2.50")
        async for o in client.iter_orders(status="active"):
            print(o.order_id, o.price, o.quantity)
        await client.cancel_order(order.order_id)

The same methods as `Client`, each awaitable: the `Call` of each comes from `calls`, and the
signing and reading from `Engine` (`core`), shared with the blocking client.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
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
from gridmarket.client.sync import DEFAULT_MAX_PAGES
from gridmarket.client.usage_models import DailyUsage, UsageReceipt

T = TypeVar("T")
Price = Decimal | str | int


class AsyncClient:
    """An asyncio client for one server and, optionally, one signing key."""

    def __init__(
        self,
        server: str | None = None,
        *,
        credentials: Credentials | None = None,
        key_file: str | Path | None = None,
        signing_key: str | bytes | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = DEFAULT_MAX_RETRIES,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        creds = resolve_credentials(credentials, key_file=key_file, signing_key=signing_key)
        base = server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER
        self.engine = Engine(base, creds, max_retries=max_retries, clock=clock)
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)

    @property
    def server(self) -> str:
        return self.engine.server

    @property
    def credentials(self) -> Credentials | None:
        return self.engine.credentials

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def call(self, call: Call[T]) -> T:
        """Run one `Call`, retrying only where the server cannot have acted (see `core`)."""
        attempt = 0
        while True:
            request = self.engine.request(call)
            try:
                response = await self._http.send(request)
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
            await asyncio.sleep(delay)

    async def _pages(
        self, make: Callable[[str | None], Call[Page[T]]], max_pages: int
    ) -> AsyncIterator[T]:
        cursor: str | None = None
        for _ in range(max_pages):
            page = await self.call(make(cursor))
            for item in page.items:
                yield item
            if not page.has_more or page.next_cursor is None:
                return
            cursor = page.next_cursor

    # -- system and market data -----------------------------------------------------------------

    async def health(self) -> Health:
        return await self.call(calls.health())

    async def instruments(self, max_pages: int = DEFAULT_MAX_PAGES) -> list[Instrument]:
        """The whole catalogue, page by page."""
        return [i async for i in self._pages(calls.instruments, max_pages)]

    async def instrument(self, instrument_id: str) -> Instrument:
        return await self.call(calls.instrument(instrument_id))

    async def markets(self, max_pages: int = DEFAULT_MAX_PAGES) -> list[Market]:
        return [m async for m in self._pages(calls.markets, max_pages)]

    async def market(self, market_id: str) -> Market:
        return await self.call(calls.market(market_id))

    async def orderbook(self, market_id: str, depth: int | None = None) -> OrderBook:
        return await self.call(calls.orderbook(market_id, depth))

    async def ticker(self, market_id: str) -> Ticker:
        return await self.call(calls.ticker(market_id))

    async def public_trades(
        self, market_id: str, limit: int | None = None, next_cursor: str | None = None
    ) -> Page[PublicTrade]:
        return await self.call(calls.public_trades(market_id, limit, next_cursor))

    async def stats(self, market_id: str) -> MarketStats:
        return await self.call(calls.stats(market_id))

    async def price_history(
        self, market_id: str, resolution: str, from_s: int | None = None, to_s: int | None = None
    ) -> list[Candle]:
        return await self.call(calls.price_history(market_id, resolution, from_s, to_s))

    # -- the account ----------------------------------------------------------------------------

    async def me(self) -> Me:
        return await self.call(calls.me())

    async def account_limits(self, market_id: str) -> AccountLimits:
        return await self.call(calls.account_limits(market_id))

    # -- orders ---------------------------------------------------------------------------------

    async def place_order(
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
        return await self.call(
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

    async def get_order(self, order_id: str) -> Order:
        return await self.call(calls.get_order(order_id))

    async def list_orders(
        self,
        *,
        status: str | None = None,
        market_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[Order]:
        return await self.call(
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
    ) -> AsyncIterator[Order]:
        """Every matching order, newest first, page by page (at most `max_pages` pages)."""
        return self._pages(
            lambda cursor: calls.list_orders(
                status=status, market_id=market_id, limit=page_size, next_cursor=cursor
            ),
            max_pages,
        )

    async def update_order(
        self,
        order_id: str,
        *,
        price: Price | None = None,
        quantity: int | None = None,
        time_in_force: str | None = None,
    ) -> Order:
        return await self.call(
            calls.update_order(
                order_id, price=price, quantity=quantity, time_in_force=time_in_force
            )
        )

    async def cancel_order(self, order_id: str) -> None:
        await self.call(calls.cancel_order(order_id))

    async def cancel_all_orders(self, market_id: str | None = None) -> int:
        return await self.call(calls.cancel_all_orders(market_id))

    async def count_orders(self) -> OrderCount:
        return await self.call(calls.count_orders())

    async def trades(
        self,
        *,
        market_id: str | None = None,
        order_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[Trade]:
        return await self.call(
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
    ) -> AsyncIterator[Trade]:
        return self._pages(
            lambda cursor: calls.trades(
                market_id=market_id, order_id=order_id, limit=page_size, next_cursor=cursor
            ),
            max_pages,
        )

    async def trade(self, trade_id: str) -> Trade:
        return await self.call(calls.trade(trade_id))

    # -- balances and transfers -----------------------------------------------------------------

    async def trading_accounts(self) -> list[TradingAccount]:
        return await self.call(calls.trading_accounts())

    async def trading_account(self, account_id: str) -> TradingAccount:
        return await self.call(calls.trading_account(account_id))

    async def currency_accounts(self) -> list[TradingAccount]:
        return await self.call(calls.currency_accounts())

    async def currency_account(self, account_id: str) -> TradingAccount:
        return await self.call(calls.currency_account(account_id))

    async def consumption_accounts(self) -> list[ConsumptionAccount]:
        return await self.call(calls.consumption_accounts())

    async def consumption_account(self, account_id: str) -> ConsumptionAccount:
        return await self.call(calls.consumption_account(account_id))

    async def transfer_to_consumption(self, instrument_id: str, quantity: int) -> TransferResult:
        return await self.call(calls.transfer_to_consumption(instrument_id, quantity))

    async def transfer_histories(
        self,
        *,
        instrument_id: str | None = None,
        market_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[TransferRecord]:
        return await self.call(
            calls.transfer_histories(
                instrument_id=instrument_id,
                market_id=market_id,
                limit=limit,
                next_cursor=next_cursor,
            )
        )

    # -- supplier -------------------------------------------------------------------------------

    async def issuance_accounts(self) -> list[IssuanceAccount]:
        return await self.call(calls.issuance_accounts())

    async def issue_supply(self, instrument_id: str, quantity: int) -> SupplyIssuance:
        return await self.call(calls.issue_supply(instrument_id, quantity))

    async def supply_issuances(
        self,
        *,
        instrument_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[SupplyIssuance]:
        return await self.call(
            calls.supply_issuances(
                instrument_id=instrument_id, limit=limit, next_cursor=next_cursor
            )
        )

    async def supply_summary(self) -> list[IssuanceSummary]:
        return await self.call(calls.supply_summary())

    async def transfer_from_issuance(
        self, instrument_id: str, quantity: int, trading_account_id: str | None = None
    ) -> IssuanceTransfer:
        return await self.call(
            calls.transfer_from_issuance(instrument_id, quantity, trading_account_id)
        )

    async def supplier_liability(self) -> list[SupplierLiability]:
        return await self.call(calls.supplier_liability())

    async def supplier_liability_for(self, instrument_id: str) -> SupplierLiability:
        return await self.call(calls.supplier_liability_for(instrument_id))

    # -- consumption usage ----------------------------------------------------------------------

    async def usage(
        self,
        *,
        key_id: str | None = None,
        instrument_id: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[UsageReceipt]:
        """One's own usage receipts, newest first."""
        return await self.call(
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
    ) -> AsyncIterator[UsageReceipt]:
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

    async def key_usage(
        self,
        key_id: str,
        *,
        instrument_id: str | None = None,
        limit: int | None = None,
        next_cursor: str | None = None,
    ) -> Page[UsageReceipt]:
        return await self.call(
            calls.key_usage(
                key_id, instrument_id=instrument_id, limit=limit, next_cursor=next_cursor
            )
        )

    async def usage_receipt(self, request_id: str) -> UsageReceipt:
        return await self.call(calls.usage_receipt(request_id))

    async def usage_daily(
        self,
        *,
        key_id: str | None = None,
        instrument_id: str | None = None,
        from_date: str | None = None,
        to_date: str | None = None,
        limit: int | None = None,
    ) -> list[DailyUsage]:
        """Totals per UTC day, key and instrument, newest day first."""
        return await self.call(
            calls.usage_daily(
                key_id=key_id,
                instrument_id=instrument_id,
                from_date=from_date,
                to_date=to_date,
                limit=limit,
            )
        )

    # -- self-service ---------------------------------------------------------------------------

    async def instrument_by_symbol(self, symbol: str) -> Instrument:
        return await self.call(calls.instrument_by_symbol(symbol))

    async def api_keys(self) -> list[ApiKey]:
        return await self.call(calls.api_keys())

    async def create_api_key(
        self, name: str, *, expires_at: str | None = None, spend_cap_tokens: int | None = None
    ) -> ApiKey:
        return await self.call(
            calls.create_api_key(name, expires_at=expires_at, spend_cap_tokens=spend_cap_tokens)
        )

    async def revoke_api_key(self, key_id: str) -> None:
        return await self.call(calls.revoke_api_key(key_id))

    async def signing_keys(self) -> list[SigningKey]:
        return await self.call(calls.signing_keys())

    async def add_signing_key(self, label: str, public_key: str) -> SigningKey:
        return await self.call(calls.add_signing_key(label, public_key))

    async def revoke_signing_key(self, key_ref: str) -> None:
        return await self.call(calls.revoke_signing_key(key_ref))

    async def settings(self) -> AccountSettings:
        return await self.call(calls.settings())

    async def set_account_mode(self, mode: str) -> None:
        return await self.call(calls.set_account_mode(mode))

    async def set_auto_transfer(self, enabled: bool) -> AccountSettings:
        return await self.call(calls.set_auto_transfer(enabled))

    async def set_auto_buy(self, enabled: bool) -> AccountSettings:
        return await self.call(calls.set_auto_buy(enabled))

    async def withdraw(self, amount_usd: Decimal | str | int) -> MoneyOut:
        return await self.call(calls.withdraw(amount_usd))

    async def payout(self, amount_usd: Decimal | str | int) -> MoneyOut:
        return await self.call(calls.payout(amount_usd))
