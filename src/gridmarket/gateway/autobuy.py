"""Auto Mode's token supply: buy the missing whole units on the book, one buy at a time.

`AutoBuyer.ensure(caller, instrument_id, tokens)` (the gateway's `TokenSupply`) makes sure the
caller's consumption account has `tokens` uncommitted, unexpired tokens of the instrument. For
an account in Auto Mode (registry mode `easy`) or with auto-buy on, a shortfall is bought with a
market order; for any other account it does nothing (the gateway's commit then answers 402).

The buy (DESIGN sections 8.3 and 10), for a batch of waiting calls:
- units = ceil((sum of the batch's tokens - tokens available now) / 1,000,000), at least the
  instrument's minimum, rounded up to its increment (`units_to_buy`);
- worst price = best ask x (10,000 + slippage_bps) / 10,000, rounded DOWN to the tick (never
  below the best ask; `worst_price`); the order is a fill-or-kill market buy with that worst
  price and `auto_transfer=True`, so it fills completely (into consumption lots) or not at all;
- if the book (others' asks up to the worst price and inside the price band) cannot fill it:
  402 `insufficient_capacity`, at once, with nothing charged;
- funded by USD credits. With Auto-Reload on, the payment method is charged first when the
  buy would leave USD below the threshold (or cannot be paid at all): whole multiples of the
  reload amount, enough to keep the threshold if the monthly limit allows, at least enough
  to pay the buy (`reload_charge`); the charge is recorded, deposited (core `Deposit`), then
  the buy is placed. Without enough USD and no reload (or the month's limit reached): 402
  `insufficient_funds`.
- the payment provider is injected (`payments`, a factory of the market store's provider:
  the ledger-only adapter by default, Stripe's when the server is configured for it);
- a charge the provider could not answer for certain (`PaymentUnavailable`: unreachable,
  rate-limited, failing, still processing) is neither deposited nor declined: it stays
  `pending` and the call gets a retryable 503 `payment_pending` (Retry-After). The account's
  next reload asks for that charge again under the SAME idempotency key before any new one
  (a provider keeps one answer per key, so it is charged at most once), and deposits it once
  it is `Charged`;
- a declined charge: 402 `payment_declined`, and from then on EVERY `ensure` of that account
  answers 402 `payment_declined` (also with tokens in hand), until the operator sets the
  payment method again: `POST /v1/admin/accounts/{id}/payment-method` (or
  `gridmarket admin payment-method`), which clears the stored decline and calls
  `clear_decline` here. The decline is stored (`payment_methods`), so it survives a restart.

Single flight: calls of one (account, instrument) that find tokens short queue as waiters
behind ONE worker, which places one buy at a time. Sizing rule: a buy is sized for every
waiter that arrived before it was sent (in arrival order, as many as fit in
`max_units_per_buy`; the rest wait for the next buy), so a stampede of concurrent calls places
one order when one order covers them all. Within one run of the worker (while calls keep
queueing), the tokens obtained for waiters already answered are counted as theirs (they may
not have committed them yet), so later rounds never hand the same tokens out twice; at worst a
later round buys up to one unit more than strictly needed. One account's buys on different
instruments run one after the other (an account lock), so two reloads never race. A waiter
gives up after `wait_timeout_s` with 503 `replenishment_in_progress` (Retry-After); at most
`max_waiters` calls wait per (account, instrument), the next ones get the same 503.

Crash safety of a reload: the charge is recorded `pending` before the provider is asked, and
its deposit seq after the `Deposit`; on first use, unfinished charges are finished (asked
again under the same idempotency key; one still without a certain answer stays pending) and
deposited unless the command log already holds their `Deposit` (`recover`).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import sqlalchemy as sa

from gridmarket.adapters import payment, registry
from gridmarket.adapters.payment import Charged, PaymentProvider, PaymentUnavailable
from gridmarket.core.commands import Deposit, PlaceOrder
from gridmarket.core.events import OrderClosed, OrderRejected, Rejected, Trade, UsdMoved
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.gateway.autobuy_math import quote_cost, reload_charge, units_to_buy, worst_price
from gridmarket.gateway.contract import Caller, GatewayError
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import system_clock_ms

__all__ = [
    "AutoBuyConfig",
    "AutoBuyer",
    "quote_cost",
    "reload_charge",
    "units_to_buy",
    "worst_price",
]

log = logging.getLogger(__name__)

#: Makes the payment provider of a market's store (the composition root chooses it).
PaymentFactory = Callable[[sa.Engine], PaymentProvider]

#: The worst-price guard of an auto-buy above the best ask, in basis points.
DEFAULT_SLIPPAGE_BPS = 500


class AutoBuyConfig(NamedTuple):
    slippage_bps: int = DEFAULT_SLIPPAGE_BPS
    #: The most units one auto-buy may buy (1 unit = 1,000,000 tokens).
    max_units_per_buy: int = 1_000
    #: The most calls that may wait for one (account, instrument)'s buy.
    max_waiters: int = 1_000
    #: How long a call waits for a buy (or a reload) before a 503.
    wait_timeout_s: float = 30.0
    retry_after_s: int = 2


DEFAULT_CONFIG = AutoBuyConfig()


# -- the buyer ----------------------------------------------------------------------------------


def _payment_required(code: str, message: str) -> GatewayError:
    return GatewayError("payment_required", code, message)


def _declined(reason: str) -> GatewayError:
    return _payment_required(
        "payment_declined",
        f"the payment method was declined ({reason}): ask the operator to fix it",
    )


@dataclass
class _Slot:
    """The waiters of one (account, instrument) and whether its worker runs."""

    waiters: list[tuple[int, asyncio.Future[None]]] = field(default_factory=list)
    worker: asyncio.Task[None] | None = None
    #: Tokens bought (or found) for waiters already answered in this run of the worker,
    #: which may not have committed them yet: not available to later waiters.
    promised: int = 0


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


def _observe(future: asyncio.Future[None]) -> None:
    # A waiter that timed out no longer reads its future: keep asyncio from warning about it.
    if not future.cancelled():
        future.exception()


class AutoBuyer:
    """The `TokenSupply` of the server (`app.state.token_supply`); see the module doc."""

    def __init__(
        self,
        market: Callable[[], MarketService | None],
        payments: PaymentFactory = payment.LedgerPaymentProvider,
        config: AutoBuyConfig = DEFAULT_CONFIG,
        clock_ms: Callable[[], int] = system_clock_ms,
    ) -> None:
        self._market_source = market
        self._payment_factory = payments
        #: The provider of the current market's store (made on first use).
        self._provider: PaymentProvider | None = None
        self._provider_engine: sa.Engine | None = None
        self.config = config
        self._clock_ms = clock_ms
        self._slots: dict[tuple[str, str], _Slot] = {}
        self._account_locks: dict[str, asyncio.Lock] = {}
        self._declined: dict[str, str] = {}
        self._ready: asyncio.Task[None] | None = None
        self._ready_for: MarketService | None = None
        #: Market orders placed (for tests and metrics).
        self.orders_placed = 0

    # -- the protocol ---------------------------------------------------------------------

    async def ensure(self, caller: Caller, instrument_id: str, tokens: int) -> None:
        market = self._market()
        await self._start(market)
        account_id = caller.account_id
        reason = self._declined.get(account_id)
        if reason is not None:
            raise _declined(reason)
        key = (account_id, instrument_id)
        slot = self._slots.get(key)
        promised = 0 if slot is None else slot.promised
        if self._available_tokens(market, account_id, instrument_id) - promised >= tokens:
            return
        if slot is None:
            slot = self._slots[key] = _Slot()
        if len(slot.waiters) >= self.config.max_waiters:
            raise self._busy()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_observe)
        slot.waiters.append((tokens, future))
        if slot.worker is None:
            slot.worker = asyncio.create_task(
                self._work(market, key, slot), name=f"autobuy-{account_id}-{instrument_id}"
            )
        try:
            await asyncio.wait_for(asyncio.shield(future), self.config.wait_timeout_s)
        except TimeoutError:
            raise self._busy() from None

    def clear_decline(self, account_id: str) -> None:
        """The operator fixed the account's payment method (see `set_method`)."""
        self._declined.pop(account_id, None)

    # -- start-up and recovery ----------------------------------------------------------------

    def _market(self) -> MarketService:
        market = self._market_source()
        if market is None:
            raise GatewayError("overloaded", "market_not_running", "the market is not running")
        return market

    def _payments(self, market: MarketService) -> PaymentProvider:
        engine = market.store.engine
        if self._provider is None or self._provider_engine is not engine:
            self._provider = self._payment_factory(engine)
            self._provider_engine = engine
        return self._provider

    async def aclose(self) -> None:
        """Release the payment provider's connections (the server's lifespan ends)."""
        provider, self._provider, self._provider_engine = self._provider, None, None
        close = getattr(provider, "aclose", None)
        if close is not None:
            await close()

    async def _start(self, market: MarketService) -> None:
        """Recover once per market (a new lifespan brings a new market): see `recover`."""
        if self._ready is None or self._ready_for is not market:
            self._ready_for = market
            self._ready = asyncio.create_task(self.recover(market), name="autobuy-recover")
        ready = self._ready
        try:
            await asyncio.shield(ready)
        except Exception:
            if self._ready is ready:
                self._ready = None  # try again on the next call
            log.exception("Auto Mode recovery failed")
            raise GatewayError(
                "internal", "auto_buy_unavailable", "Auto Mode failed to start"
            ) from None

    async def recover(self, market: MarketService) -> None:
        """Load the standing declines; finish and deposit the charges a crash left behind."""
        engine = market.store.engine
        self._declined = await asyncio.to_thread(payment.declined_accounts, engine)
        for charge in await asyncio.to_thread(payment.unfinished_charges, engine):
            if charge.status == "pending":
                # Never deposited (the deposit follows the stored answer): ask, store, deposit.
                # Still unknown: logged, left pending for the account's next reload; declined:
                # stored as a standing decline, like any other.
                try:
                    await self._charge(market, charge)
                except GatewayError as unfinished:
                    log.warning(
                        "Auto-Reload charge %s at start-up: %s",
                        charge.idempotency_key,
                        unfinished.code,
                    )
                continue
            seq = await asyncio.to_thread(self._find_deposit, market, charge)
            if seq is None:
                seq = await self._deposit(market, charge.account_id, charge.amount_usd_micros)
            await asyncio.to_thread(payment.mark_deposited, engine, charge.idempotency_key, seq)

    @staticmethod
    def _find_deposit(market: MarketService, charge: payment.ChargeRecord) -> int | None:
        """The seq of a logged `Deposit` of this charge not credited to another charge."""
        claimed = payment.claimed_deposit_seqs(market.store.engine, charge.account_id)
        for seq, _ts_ms, command in market.store.load_commands(after_seq=charge.log_seq_before):
            if (
                isinstance(command, Deposit)
                and command.account_id == charge.account_id
                and command.amount_usd_micros == charge.amount_usd_micros
                and seq not in claimed
            ):
                return seq
        return None

    # -- the worker -----------------------------------------------------------------------------

    def _busy(self) -> GatewayError:
        return GatewayError(
            "overloaded",
            "replenishment_in_progress",
            "tokens are being bought for this account: retry shortly",
            retry_after_s=self.config.retry_after_s,
        )

    async def _work(self, market: MarketService, key: tuple[str, str], slot: _Slot) -> None:
        account_id = key[0]
        try:
            while slot.waiters:
                lock = self._account_locks.setdefault(account_id, asyncio.Lock())
                async with lock:
                    await self._serve(market, key, slot)
        finally:
            self._slots.pop(key, None)
            if not any(k[0] == account_id for k in self._slots):
                self._account_locks.pop(account_id, None)

    async def _serve(self, market: MarketService, key: tuple[str, str], slot: _Slot) -> None:
        """One round: answer the waiters that need no buy, buy for a batch of the others."""
        batch = list(slot.waiters)
        try:
            settings = await asyncio.to_thread(registry.get_settings, market.store.engine, key[0])
            if settings is None or not (settings.mode == "easy" or settings.auto_buy_enabled):
                batch = self._take(slot, len(slot.waiters))
                error: BaseException | None = None
            else:
                batch = self._batch(market, key, slot)
                error = None
                if batch:
                    await self._buy(market, key, slot, sum(t for t, _ in batch), settings)
        except GatewayError as refused:
            error = refused
        except Exception:
            log.exception("auto-buy for %s on %s failed", *key)
            error = GatewayError("internal", "auto_buy_failed", "the automatic purchase failed")
        if error is not None:
            self._drop(slot, batch)
        else:
            slot.promised += sum(tokens for tokens, _ in batch)
        for _tokens, future in batch:
            _settle(future, error)

    @staticmethod
    def _take(slot: _Slot, count: int) -> list[tuple[int, asyncio.Future[None]]]:
        taken = slot.waiters[:count]
        del slot.waiters[:count]
        return taken

    @staticmethod
    def _drop(slot: _Slot, batch: list[tuple[int, asyncio.Future[None]]]) -> None:
        ids = {id(future) for _, future in batch}
        slot.waiters[:] = [w for w in slot.waiters if id(w[1]) not in ids]

    def _batch(
        self, market: MarketService, key: tuple[str, str], slot: _Slot
    ) -> list[tuple[int, asyncio.Future[None]]]:
        """The waiters this buy serves, in arrival order, as many as fit in one buy; waiters
        already covered by what is available are answered at once."""
        account_id, instrument_id = key
        instrument = market.sequencer.exchange.state.instruments[InstrumentId(instrument_id)]
        available = self._available_tokens(market, account_id, instrument_id) - slot.promised
        count, total = 0, 0
        for tokens, _future in slot.waiters:
            units = units_to_buy(
                total + tokens,
                available,
                instrument.min_quantity_units,
                instrument.quantity_increment_units,
            )
            if count and units > self.config.max_units_per_buy:
                break
            total += tokens
            count += 1
        batch = self._take(slot, count)
        if count == 1 and self._units_for(market, key, slot, total) > self.config.max_units_per_buy:
            for _tokens, future in batch:
                _settle(
                    future,
                    _payment_required(
                        "insufficient_capacity",
                        f"one call may auto-buy at most {self.config.max_units_per_buy} units",
                    ),
                )
            return []
        if self._units_for(market, key, slot, total) == 0:
            slot.promised += total
            for _tokens, future in batch:
                _settle(future, None)
            return []
        return batch

    def _units_for(
        self, market: MarketService, key: tuple[str, str], slot: _Slot, tokens: int
    ) -> int:
        instrument = market.sequencer.exchange.state.instruments[InstrumentId(key[1])]
        return units_to_buy(
            tokens,
            self._available_tokens(market, *key) - slot.promised,
            instrument.min_quantity_units,
            instrument.quantity_increment_units,
        )

    def _available_tokens(self, market: MarketService, account_id: str, instrument_id: str) -> int:
        state = market.sequencer.exchange.state
        if instrument_id not in state.instruments:
            raise GatewayError("not_found", "model_not_found", f"no instrument {instrument_id!r}")
        account = state.accounts.get(AccountId(account_id))
        holding = None if account is None else account.holdings.get(instrument_id)
        if holding is None:
            return 0
        now_ms = self._clock_ms()
        return sum(lot.available_tokens for lot in holding.lots if not lot.expired(now_ms))

    def _quote(self, market: MarketService, key: tuple[str, str], units: int) -> tuple[int, int]:
        """(worst price, cost) of buying `units` now; 402 `insufficient_capacity` if the book
        cannot fill them."""
        account_id, instrument_id = key
        state = market.sequencer.exchange.state
        instrument = state.instruments[InstrumentId(instrument_id)]
        asks = state.books[InstrumentId(instrument_id)].asks
        levels: list[tuple[int, int]] = []
        for price, _units in asks.depth():
            others = sum(
                maker.remaining_units
                for maker in asks.levels[price].orders
                if maker.account_id != account_id and maker.status in ("active", "partially_filled")
            )
            if others:
                levels.append((price, others))
        cost = None
        worst = 0
        if levels:
            worst = worst_price(
                levels[0][0], self.config.slippage_bps, instrument.price_tick_usd_micros
            )
            cost = quote_cost(
                levels,
                units,
                worst,
                instrument.taker_fee_bps,
                state.books[InstrumentId(instrument_id)].last_price_usd_micros,
                instrument.price_band_bps,
            )
        if cost is None:
            raise _payment_required(
                "insufficient_capacity",
                f"the {instrument_id} book cannot fill {units} units within"
                f" {self.config.slippage_bps} bps of the best ask",
            )
        return worst, cost

    async def _buy(
        self,
        market: MarketService,
        key: tuple[str, str],
        slot: _Slot,
        tokens: int,
        settings: registry.AccountSettingsRecord,
    ) -> None:
        account_id, instrument_id = key
        units = self._units_for(market, key, slot, tokens)
        if not units:
            return
        _worst, cost = self._quote(market, key, units)
        if settings.auto_reload_enabled:
            await self._reload(market, account_id, cost, settings)
        elif cost > self._usd(market, account_id):
            raise _payment_required(
                "insufficient_funds",
                "not enough USD credits to buy tokens, and Auto-Reload is off",
            )
        worst, cost = self._quote(market, key, units)  # the book may have moved meanwhile
        order = PlaceOrder(
            AccountId(account_id),
            InstrumentId(instrument_id),
            "buy",
            "market",
            units,
            price_usd_micros=worst,
            time_in_force="fok",
            auto_transfer=True,
        )
        self.orders_placed += 1
        outcome = await market.submit(order)
        if any(isinstance(event, Trade) for event in outcome.events):
            return
        for event in outcome.events:
            if isinstance(event, OrderRejected) and event.reason == "insufficient_funds":
                raise _payment_required("insufficient_funds", "not enough USD credits")
            if isinstance(event, OrderClosed):
                usd = market.sequencer.exchange.balance(f"{account_id}/usd/available")
                if usd < cost:
                    raise _payment_required("insufficient_funds", "not enough USD credits")
        raise _payment_required(
            "insufficient_capacity", f"the {instrument_id} book could not fill {units} units"
        )

    async def _reload(
        self,
        market: MarketService,
        account_id: str,
        cost: int,
        settings: registry.AccountSettingsRecord,
    ) -> None:
        """Charge the payment method if the buy needs it (see `reload_charge`). Charges of the
        account still pending are asked again first, under their own keys: what they deposit
        may be all the buy needs, and a new charge must not pile up behind an unknown one."""
        engine = market.store.engine
        amount = settings.auto_reload_amount_usd_micros or 0
        if amount <= 0:
            if cost > self._usd(market, account_id):
                raise _payment_required("insufficient_funds", "not enough USD credits")
            return
        charge = await self._reload_charge(market, account_id, cost, settings)
        if charge == 0:
            return
        pending = await asyncio.to_thread(payment.pending_charges, engine, account_id)
        if pending:
            for record in pending:
                await self._charge(market, record)
            charge = await self._reload_charge(market, account_id, cost, settings)
        if charge is None:
            raise _payment_required(
                "insufficient_funds",
                "not enough USD credits, and Auto-Reload reached its monthly limit",
            )
        if not charge:
            return
        record = await asyncio.to_thread(
            payment.begin_charge,
            engine,
            f"reload_{uuid.uuid4().hex}",
            account_id,
            charge,
            self._clock_ms(),
            market.sequencer.exchange.last_seq,
        )
        await self._charge(market, record)

    async def _reload_charge(
        self,
        market: MarketService,
        account_id: str,
        cost: int,
        settings: registry.AccountSettingsRecord,
    ) -> int | None:
        month = payment.utc_month(self._clock_ms())
        month_total = await asyncio.to_thread(
            payment.charged_in_month, market.store.engine, account_id, month
        )
        return reload_charge(
            self._usd(market, account_id),
            cost,
            settings.auto_reload_threshold_usd_micros or 0,
            settings.auto_reload_amount_usd_micros or 0,
            month_total,
            settings.auto_reload_monthly_limit_usd_micros or 0,
        )

    async def _charge(self, market: MarketService, record: payment.ChargeRecord) -> None:
        """Ask the provider for a recorded (pending) charge, store its answer, deposit it.

        A decline is stored and stands (402 `payment_declined`, now and on every later call);
        no certain answer (`PaymentUnavailable`) leaves the charge pending, to be asked again
        under the same key, and answers a retryable 503 `payment_pending`."""
        engine = market.store.engine
        account_id, key = record.account_id, record.idempotency_key
        try:
            result = await self._payments(market).charge(account_id, record.amount_usd_micros, key)
        except PaymentUnavailable as unknown:
            log.warning("Auto-Reload charge %s is not confirmed yet: %s", key, unknown.reason)
            raise GatewayError(
                "overloaded",
                "payment_pending",
                f"an Auto-Reload payment is not confirmed yet ({unknown.reason}): retry shortly",
                retry_after_s=self.config.retry_after_s,
            ) from None
        await asyncio.to_thread(payment.finish_charge, engine, result)
        if not isinstance(result, Charged):
            await asyncio.to_thread(
                payment.mark_declined, engine, account_id, result.reason, self._clock_ms()
            )
            self._declined[account_id] = result.reason
            raise _declined(result.reason)
        seq = await self._deposit(market, account_id, record.amount_usd_micros)
        await asyncio.to_thread(payment.mark_deposited, engine, key, seq)

    @staticmethod
    def _usd(market: MarketService, account_id: str) -> int:
        return market.sequencer.exchange.balance(f"{account_id}/usd/available")

    @staticmethod
    async def _deposit(market: MarketService, account_id: str, amount_usd_micros: int) -> int:
        outcome = await market.submit(Deposit(AccountId(account_id), amount_usd_micros))
        for event in outcome.events:
            if isinstance(event, UsdMoved):
                return outcome.seq
            if isinstance(event, Rejected):
                raise RuntimeError(f"the reload deposit was refused: {event.reason}")
        raise RuntimeError(f"unexpected deposit outcome {outcome.events}")
