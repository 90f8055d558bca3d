"""The built-in supply agent: quotes the built-in model's capacity on the `text-local` book.

    agent = BuiltinSupplyAgent(market, directory, base_url, config)
    await agent.start()        # account, capacity, endpoint registered, first asks resting
    agent.not_ready_reason()   # None once an ask of its rests on the book (/v1/health)
    await agent.stop()

Contract:
- The supplier is the account named `builtin-local` (a supplier, Advanced Mode), opened with
  `service.accounts.open_account` on the first start and found by name after that.
- Its capacity on the instrument is set with `SetSupplierCapacity` (measured from the model at
  start, or configured); issuance is bounded by it (DESIGN section 5).
- It keeps `resting_units` units (fewer if its capacity allows fewer) on fixed-price gtc
  asks at `price_usd_micros`: whenever fewer rest (units sold), it issues what it lacks
  within capacity (`IssueUnits`), moves them to trading (`TransferIssuanceToTrading`) and
  places an ask for the difference. It checks every `interval_s` and at once after any trade
  on the instrument. It counts as ready once any of its asks rests.
- While its model is not serving (`serving()` false: the process crashed and is restarting,
  or gave up), it cancels its resting asks, so that nobody buys units it cannot deliver, and
  quotes again once the model is back.
- It registers its endpoint in the gateway's `SupplierDirectory` (supplier id: the account
  id, so the units it sold route calls back to it), and removes it on stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from gridmarket.adapters import registry
from gridmarket.core.commands import (
    CancelOrder,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import Rejected, Trade
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.gateway.contract import SupplierDirectory, SupplierEndpoint
from gridmarket.service.accounts import open_account
from gridmarket.service.errors import SubscriberDropped
from gridmarket.service.market import MarketService

log = logging.getLogger(__name__)

SUPPLIER_NAME = "builtin-local"
INSTRUMENT_ID = InstrumentId("text-local")
#: 0.010 USD per unit (per million tokens): cheap, on the default tick of 0.001.
DEFAULT_PRICE_USD_MICROS = 10_000
DEFAULT_RESTING_UNITS = 2


@dataclass(frozen=True, slots=True)
class AgentConfig:
    price_usd_micros: int = DEFAULT_PRICE_USD_MICROS
    resting_units: int = DEFAULT_RESTING_UNITS
    capacity_tokens_per_min: int = 0
    model: str = "SmolLM2-135M-Instruct"
    instrument_id: InstrumentId = INSTRUMENT_ID
    interval_s: float = 1.0


async def find_or_open_supplier(market: MarketService) -> AccountId:
    """The id of the `builtin-local` supplier account, opened if there is none yet."""
    engine = market.store.engine
    after: str | None = None
    while True:
        page = await asyncio.to_thread(
            registry.list_accounts, engine, after_account_id=after, limit=registry.MAX_PAGE_ROWS
        )
        for account in page:
            if account.name == SUPPLIER_NAME and account.is_supplier:
                return account.account_id
        if len(page) < registry.MAX_PAGE_ROWS:
            break
        after = page[-1].account_id
    opened = await open_account(market, name=SUPPLIER_NAME, is_supplier=True, mode="advanced")
    log.info("built-in supplier: opened account %s", opened.account_id)
    return opened.account_id


class BuiltinSupplyAgent:
    def __init__(
        self,
        market: MarketService,
        directory: SupplierDirectory,
        base_url: str,
        config: AgentConfig,
        serving: Callable[[], bool] = lambda: True,
    ) -> None:
        self.market = market
        self.serving = serving
        self.directory = directory
        self.base_url = base_url
        self.config = config
        self.account_id: AccountId | None = None
        self.endpoint: SupplierEndpoint | None = None
        self._ready = False
        self._problem: str | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._feed: asyncio.Task[None] | None = None

    def not_ready_reason(self) -> str | None:
        if self._ready:
            return None
        return self._problem or "the built-in supplier's asks are not on the book yet"

    async def start(self) -> None:
        config = self.config
        instrument = self.market.sequencer.exchange.state.instruments[config.instrument_id]
        if (
            config.price_usd_micros <= 0
            or config.price_usd_micros % instrument.price_tick_usd_micros
        ):
            raise ValueError(
                f"price {config.price_usd_micros} micro-USD is not a positive multiple of the "
                f"tick {instrument.price_tick_usd_micros}"
            )
        self.account_id = await find_or_open_supplier(self.market)
        outcome = await self.market.submit(
            SetSupplierCapacity(
                self.account_id, config.instrument_id, config.capacity_tokens_per_min
            )
        )
        if isinstance(outcome.events[0], Rejected):
            raise RuntimeError(f"capacity refused: {outcome.events[0].reason}")
        self.endpoint = SupplierEndpoint(
            self.account_id, config.instrument_id, self.base_url, config.model, name=SUPPLIER_NAME
        )
        self.directory.add(self.endpoint)
        await self.top_up()
        self._task = asyncio.create_task(self._run(), name="builtin-supply-agent")
        self._feed = asyncio.create_task(self._watch_trades(), name="builtin-supply-feed")

    async def stop(self) -> None:
        for task in (self._task, self._feed):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.endpoint is not None:
            self.directory.remove(self.endpoint)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.interval_s)
            self._wake.clear()
            try:
                await self.top_up()
            except Exception:  # keep quoting: a failed round is retried on the next one
                log.exception("built-in supplier: top-up failed")

    async def _watch_trades(self) -> None:
        while True:
            try:
                async with self.market.subscribe() as subscription:
                    async for outcomes in subscription.batches():
                        if any(
                            isinstance(e, Trade) and e.instrument_id == self.config.instrument_id
                            for outcome in outcomes
                            for e in outcome.events
                        ):
                            self._wake.set()
                return
            except SubscriberDropped:  # missed outcomes: the periodic check covers them
                self._wake.set()

    def _resting_asks(self) -> list[tuple[int, int]]:
        """(order id, remaining units) of the agent's open asks on its instrument."""
        state = self.market.sequencer.exchange.state
        account = state.accounts.get(self.account_id) if self.account_id else None
        if account is None:
            return []
        asks = []
        for order_id in account.open_order_ids:
            order = state.orders[order_id]
            if order.instrument_id == self.config.instrument_id and not order.is_buy:
                asks.append((order_id, order.remaining_units))
        return asks

    def resting_ask_units(self) -> int:
        return sum(units for _, units in self._resting_asks())

    async def _withdraw(self) -> None:
        assert self.account_id is not None
        for order_id, _ in self._resting_asks():
            await self.market.submit(CancelOrder(self.account_id, OrderId(order_id)))

    async def top_up(self) -> None:
        """Bring the resting asks up to `resting_units`, within capacity."""
        assert self.account_id is not None
        config = self.config
        if not self.serving():
            await self._withdraw()
            self._ready = False
            self._problem = "the built-in model is not serving: its asks are withdrawn"
            return
        missing = config.resting_units - self.resting_ask_units()
        if missing > 0:
            await self._make_tradable(missing)
            tradable = self._units("trading_available")
            quantity = min(missing, tradable)
            if quantity > 0:
                outcome = await self.market.submit(
                    PlaceOrder(
                        self.account_id,
                        config.instrument_id,
                        "sell",
                        "limit",
                        quantity,
                        config.price_usd_micros,
                    )
                )
                if isinstance(outcome.events[0], Rejected):
                    self._problem = f"ask refused: {outcome.events[0].reason}"
        resting = self.resting_ask_units()
        if resting > 0:
            # Ready with any ask resting: a small capacity may allow fewer than the target.
            self._ready = True
            self._problem = None
        elif not self._ready:
            self._problem = self._problem or (
                "the built-in supplier has no units to quote: its capacity allows none"
            )

    async def _make_tradable(self, units: int) -> None:
        assert self.account_id is not None
        instrument_id = self.config.instrument_id
        short = units - self._units("trading_available")
        if short <= 0:
            return
        to_issue = short - self._units("issuance")
        if to_issue > 0:
            to_issue = min(to_issue, self._issuable_units())
            if to_issue > 0:
                await self.market.submit(IssueUnits(self.account_id, instrument_id, to_issue))
        movable = min(short, self._units("issuance"))
        if movable > 0:
            await self.market.submit(
                TransferIssuanceToTrading(self.account_id, instrument_id, movable)
            )

    def _units(self, balance: str) -> int:
        state = self.market.sequencer.exchange.state
        assert self.account_id is not None
        account = state.accounts[self.account_id]
        holding = account.holdings.get(self.config.instrument_id)
        if holding is None:
            return 0
        return state.ledger.get(getattr(holding, balance)) // TOKENS_PER_UNIT

    def _issuable_units(self) -> int:
        state = self.market.sequencer.exchange.state
        assert self.account_id is not None
        position = state.accounts[self.account_id].supplier_positions.get(self.config.instrument_id)
        if position is None:
            return 0
        ceiling = position.capacity_tokens_per_min * state.config.issuance_horizon_min
        return max(0, ceiling - position.outstanding_tokens) // TOKENS_PER_UNIT
