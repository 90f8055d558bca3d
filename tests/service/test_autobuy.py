"""Auto Mode buys on a real market (SQLite and PostgreSQL): sizing, the slippage guard, the
402s, Auto-Reload through the ledger-only payment adapter, declines, and single flight."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from autobuy_support import (
    PRIME,
    USD,
    ask,
    buyer,
    consumption_tokens,
    enable_reload,
    orders_of,
    usd_available,
)

from gridmarket.adapters import payment
from gridmarket.bootstrap import build_app
from gridmarket.core.commands import CommitTokens, Deposit
from gridmarket.core.events import TokensCommitted
from gridmarket.core.ids import AccountId, CallId
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.gateway.autobuy import AutoBuyConfig, AutoBuyer
from gridmarket.gateway.contract import GatewayError
from gridmarket.service.market import MarketService
from gridmarket.settings import Settings


@pytest.fixture
async def market(database_url: str) -> AsyncIterator[MarketService]:
    async with MarketService.from_url(database_url, tune_gc=False) as running:
        yield running


def _buyer_of(market: MarketService, **config: int) -> AutoBuyer:
    return AutoBuyer(lambda: market, config=AutoBuyConfig(**config))


async def _refused(autobuy: AutoBuyer, *args: object) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        await autobuy.ensure(*args)  # type: ignore[arg-type]
    return caught.value


async def test_a_stampede_of_50_calls_places_exactly_one_order(market: MarketService) -> None:
    await ask(market, "s1", 10, 2 * USD)
    caller = await buyer(market, usd_micros=100 * USD)
    autobuy = _buyer_of(market)

    await asyncio.gather(*(autobuy.ensure(caller, PRIME, 10_000) for _ in range(50)))

    assert autobuy.orders_placed == 1
    assert len(orders_of(market, caller.account_id)) == 1
    assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT
    assert usd_available(market, caller.account_id) == 98 * USD
    commits = await asyncio.gather(
        *(
            market.submit(
                CommitTokens(CallId(f"c{i}"), AccountId(caller.account_id), PRIME, 10_000)
            )
            for i in range(50)
        )
    )
    assert all(isinstance(o.events[0], TokensCommitted) for o in commits)


async def test_a_batch_is_sized_for_all_its_waiters_and_whole_units(market: MarketService) -> None:
    await ask(market, "s1", 10, 3 * USD)
    caller = await buyer(market, usd_micros=100 * USD)
    autobuy = _buyer_of(market)

    await asyncio.gather(*(autobuy.ensure(caller, PRIME, 600_000) for _ in range(3)))

    # 1,800,000 tokens missing: 2 whole units, one order.
    assert autobuy.orders_placed == 1
    assert consumption_tokens(market, caller.account_id) == 2 * TOKENS_PER_UNIT
    assert usd_available(market, caller.account_id) == 94 * USD
    # Enough now: no second order.
    await autobuy.ensure(caller, PRIME, 1_500_000)
    assert autobuy.orders_placed == 1


async def test_waiters_beyond_the_unit_cap_wait_for_the_next_buy(market: MarketService) -> None:
    await ask(market, "s1", 10, USD)
    caller = await buyer(market, usd_micros=100 * USD)
    autobuy = _buyer_of(market, max_units_per_buy=2)

    await asyncio.gather(*(autobuy.ensure(caller, PRIME, TOKENS_PER_UNIT) for _ in range(5)))

    assert autobuy.orders_placed == 3  # 2 + 2 + 1 units
    assert consumption_tokens(market, caller.account_id) == 5 * TOKENS_PER_UNIT
    refused = await _refused(autobuy, caller, PRIME, 8 * TOKENS_PER_UNIT)
    assert (refused.status, refused.code) == (402, "insufficient_capacity")


async def test_an_empty_book_is_insufficient_capacity_at_once(market: MarketService) -> None:
    caller = await buyer(market, usd_micros=10 * USD)
    autobuy = _buyer_of(market)

    refused = await _refused(autobuy, caller, PRIME, 1)

    assert (refused.status, refused.kind, refused.code) == (
        402,
        "payment_required",
        "insufficient_capacity",
    )
    assert orders_of(market, caller.account_id) == []
    assert usd_available(market, caller.account_id) == 10 * USD


async def test_asks_beyond_the_slippage_guard_do_not_count(market: MarketService) -> None:
    await ask(market, "s1", 1, USD)
    await ask(market, "s2", 5, 1_060_000)  # 6% above the best ask; the guard is 5%
    caller = await buyer(market, usd_micros=10 * USD)
    autobuy = _buyer_of(market, slippage_bps=500)

    refused = await _refused(autobuy, caller, PRIME, 2 * TOKENS_PER_UNIT)
    assert refused.code == "insufficient_capacity"
    assert orders_of(market, caller.account_id) == []
    assert usd_available(market, caller.account_id) == 10 * USD

    wider = _buyer_of(market, slippage_bps=600)
    await wider.ensure(caller, PRIME, 2 * TOKENS_PER_UNIT)
    assert consumption_tokens(market, caller.account_id) == 2 * TOKENS_PER_UNIT
    assert usd_available(market, caller.account_id) == 10 * USD - USD - 1_060_000


async def test_no_usd_and_no_reload_is_insufficient_funds(market: MarketService) -> None:
    await ask(market, "s1", 5, 2 * USD)
    caller = await buyer(market, usd_micros=USD)  # half a unit's price
    autobuy = _buyer_of(market)

    refused = await _refused(autobuy, caller, PRIME, 1)

    assert (refused.status, refused.code) == (402, "insufficient_funds")
    assert orders_of(market, caller.account_id) == []


async def test_an_advanced_account_without_auto_buy_is_left_alone(market: MarketService) -> None:
    await ask(market, "s1", 5, USD)
    caller = await buyer(market, mode="advanced", usd_micros=10 * USD)
    autobuy = _buyer_of(market)

    await autobuy.ensure(caller, PRIME, TOKENS_PER_UNIT)

    assert orders_of(market, caller.account_id) == []
    assert consumption_tokens(market, caller.account_id) == 0


async def test_auto_reload_charges_the_allowance_then_buys(market: MarketService) -> None:
    await ask(market, "s1", 5, 2 * USD)
    caller = await buyer(market)  # no USD at all
    engine = market.store.engine
    await enable_reload(market, caller.account_id, 1 * USD, 5 * USD, 20 * USD)
    await asyncio.to_thread(payment.set_method, engine, caller.account_id, 12 * USD, 0)
    autobuy = _buyer_of(market)

    await autobuy.ensure(caller, PRIME, 1)

    # Cost 2 USD and keep the 1 USD threshold: 3 USD short, one 5 USD reload.
    assert usd_available(market, caller.account_id) == 3 * USD
    assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT
    method = await asyncio.to_thread(payment.get_method, engine, caller.account_id)
    assert method is not None and method.allowance_usd_micros == 7 * USD
    month = payment.utc_month(market.sequencer.exchange.state.ts_ms)
    assert await asyncio.to_thread(payment.charged_in_month, engine, caller.account_id, month) == (
        5 * USD
    )
    assert await asyncio.to_thread(payment.unfinished_charges, engine) == []


async def test_the_monthly_limit_stops_reloads(market: MarketService) -> None:
    await ask(market, "s1", 10, 4 * USD)
    caller = await buyer(market)
    await enable_reload(market, caller.account_id, 0, 5 * USD, 5 * USD)
    await asyncio.to_thread(
        payment.set_method, market.store.engine, caller.account_id, 100 * USD, 0
    )
    autobuy = _buyer_of(market)

    await autobuy.ensure(caller, PRIME, 1)  # 5 USD charged, 4 spent
    assert usd_available(market, caller.account_id) == USD
    refused = await _refused(autobuy, caller, PRIME, 2 * TOKENS_PER_UNIT)

    assert (refused.status, refused.code) == (402, "insufficient_funds")
    assert "monthly limit" in refused.message
    assert len(orders_of(market, caller.account_id)) == 1


async def test_a_decline_answers_402_until_the_method_is_fixed_even_after_restart(
    database_url: str,
) -> None:
    async with MarketService.from_url(database_url, tune_gc=False) as market:
        await ask(market, "s1", 5, 2 * USD)
        caller = await buyer(market, usd_micros=USD)
        await enable_reload(market, caller.account_id, 0, 5 * USD, 50 * USD)
        await asyncio.to_thread(
            payment.set_method, market.store.engine, caller.account_id, 3 * USD, 0
        )
        autobuy = _buyer_of(market)

        refused = await _refused(autobuy, caller, PRIME, 1)
        assert (refused.status, refused.code) == (402, "payment_declined")
        assert "allowance_exhausted" in refused.message
        assert orders_of(market, caller.account_id) == []
        # With USD deposited by other means, still 402: the method must be fixed first.
        await market.submit(Deposit(AccountId(caller.account_id), 10 * USD))
        assert (await _refused(autobuy, caller, PRIME, 1)).code == "payment_declined"

    async with MarketService.from_url(database_url, tune_gc=False) as market:
        restarted = _buyer_of(market)
        assert (await _refused(restarted, caller, PRIME, 1)).code == "payment_declined"
        await asyncio.to_thread(
            payment.set_method, market.store.engine, caller.account_id, 20 * USD, 0
        )
        restarted.clear_decline(caller.account_id)
        await restarted.ensure(caller, PRIME, 1)
        assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT


class SlowMarket:
    """A market whose submissions wait for `gate`."""

    def __init__(self, market: MarketService, gate: asyncio.Event) -> None:
        self._market = market
        self._gate = gate

    def __getattr__(self, name: str) -> object:
        return getattr(self._market, name)

    async def submit(self, command: object) -> object:
        await self._gate.wait()
        return await self._market.submit(command)  # type: ignore[arg-type]


async def test_waiters_are_bounded(market: MarketService) -> None:
    await ask(market, "s1", 5, USD)
    caller = await buyer(market, usd_micros=10 * USD)
    gate = asyncio.Event()
    slow = SlowMarket(market, gate)
    autobuy = AutoBuyer(lambda: slow, config=AutoBuyConfig(max_waiters=3))  # type: ignore[arg-type,return-value]

    calls = [asyncio.create_task(autobuy.ensure(caller, PRIME, 1)) for _ in range(5)]
    done, _pending = await asyncio.wait(calls, timeout=0.3)
    assert len(done) == 2
    for task in done:
        error = task.exception()
        assert isinstance(error, GatewayError) and error.code == "replenishment_in_progress"
    gate.set()
    await asyncio.gather(*(task for task in calls if task not in done))
    assert len(orders_of(market, caller.account_id)) == 1


async def test_a_slow_buy_answers_503_replenishment_in_progress(market: MarketService) -> None:
    await ask(market, "s1", 5, USD)
    caller = await buyer(market, usd_micros=10 * USD)
    gate = asyncio.Event()
    slow = SlowMarket(market, gate)
    autobuy = AutoBuyer(lambda: slow, config=AutoBuyConfig(wait_timeout_s=0.2))  # type: ignore[arg-type,return-value]

    refused = await _refused(autobuy, caller, PRIME, 1)
    assert (refused.status, refused.code, refused.retry_after_s) == (
        503,
        "replenishment_in_progress",
        2,
    )
    gate.set()
    await autobuy.ensure(caller, PRIME, 1)  # joins or follows the same buy
    assert len(orders_of(market, caller.account_id)) == 1


async def test_recovery_finishes_a_pending_charge_and_never_deposits_twice(
    market: MarketService,
) -> None:
    caller = await buyer(market)
    engine = market.store.engine
    await asyncio.to_thread(payment.set_method, engine, caller.account_id, 10 * USD, 0)
    last = market.sequencer.exchange.last_seq
    # A crash after the record, before the provider answered:
    await asyncio.to_thread(
        payment.begin_charge, engine, "k-pending", caller.account_id, 2 * USD, 0, last
    )
    # A crash after the deposit, before it was noted:
    await asyncio.to_thread(
        payment.begin_charge, engine, "k-done", caller.account_id, 3 * USD, 0, last
    )
    provider = payment.LedgerPaymentProvider(engine)
    assert await provider.charge(caller.account_id, 3 * USD, "k-done") == payment.Charged(
        "k-done", 3 * USD
    )
    await market.submit(Deposit(AccountId(caller.account_id), 3 * USD))

    autobuy = _buyer_of(market)
    await autobuy.recover(market)
    await autobuy.recover(market)

    assert usd_available(market, caller.account_id) == 5 * USD
    method = await asyncio.to_thread(payment.get_method, engine, caller.account_id)
    assert method is not None and method.allowance_usd_micros == 5 * USD
    assert await asyncio.to_thread(payment.unfinished_charges, engine) == []


async def test_the_ledger_adapter_is_idempotent_and_never_overdraws(market: MarketService) -> None:
    caller = await buyer(market)
    engine = market.store.engine
    await asyncio.to_thread(payment.set_method, engine, caller.account_id, 10 * USD, 0)
    provider = payment.LedgerPaymentProvider(engine)

    first = await provider.charge(caller.account_id, 4 * USD, "same")
    again = await provider.charge(caller.account_id, 4 * USD, "same")
    assert first == again == payment.Charged("same", 4 * USD)
    results = await asyncio.gather(
        *(provider.charge(caller.account_id, USD, f"k{i}") for i in range(10))
    )

    charged = [r for r in results if isinstance(r, payment.Charged)]
    declined = [r for r in results if isinstance(r, payment.Declined)]
    assert (len(charged), len(declined)) == (6, 4)
    assert {r.reason for r in declined} == {"allowance_exhausted"}
    method = await asyncio.to_thread(payment.get_method, engine, caller.account_id)
    assert method is not None and method.allowance_usd_micros == 0
    nobody = await provider.charge("acct_nobody", USD, "k-nobody")
    assert nobody == payment.Declined("k-nobody", "no_payment_method")


async def test_the_server_app_carries_an_autobuyer_on_its_market(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    app = build_app(Settings.resolve(data_dir=home, environ={}))
    supply = app.state.token_supply
    assert isinstance(supply, AutoBuyer)
    async with app.router.lifespan_context(app):
        market: MarketService = app.state.market
        await ask(market, "s1", 2, USD)
        caller = await buyer(market, usd_micros=5 * USD)
        await supply.ensure(caller, PRIME, 1_000)
        assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT
    with pytest.raises(GatewayError) as stopped:
        await supply.ensure(caller, PRIME, 1_000)
    assert (stopped.value.status, stopped.value.code) == (503, "market_not_running")


async def test_the_operator_endpoint_lifts_the_servers_decline(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    app = build_app(Settings.resolve(data_dir=home, environ={}))
    supply: AutoBuyer = app.state.token_supply
    headers = {"Authorization": f"Bearer {app.state.operator_token}"}
    async with app.router.lifespan_context(app):
        market: MarketService = app.state.market
        await ask(market, "s1", 2, USD)
        caller = await buyer(market)
        await enable_reload(market, caller.account_id, 0, 5 * USD, 50 * USD)
        assert (await _refused(supply, caller, PRIME, 1)).code == "payment_declined"

        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gm") as client:
            path = f"/v1/admin/accounts/{caller.account_id}/payment-method"
            response = await client.post(path, json={"allowance_usd": "5"}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["declined"] is False

        await supply.ensure(caller, PRIME, 1)
        assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT
        assert usd_available(market, caller.account_id) == 4 * USD
