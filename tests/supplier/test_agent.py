"""The built-in supply agent on a real market service: asks rest, are topped up, stay within
capacity, and the endpoint is registered for routing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gridmarket.core.commands import CreateAccount, Deposit, PlaceOrder
from gridmarket.core.events import Trade
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.gateway.contract import SupplierDirectory
from gridmarket.service.market import MarketService
from gridmarket.supplier.agent import SUPPLIER_NAME, AgentConfig, BuiltinSupplyAgent

LOCAL = InstrumentId("text-local")
URL = "http://127.0.0.1:9/v1"
#: 12,500 tokens/min x 240 min = 3,000,000 tokens: three units outstanding at most.
THREE_UNITS_TOKENS_PER_MIN = 12_500


async def _until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def _buyer(market: MarketService, name: str) -> AccountId:
    buyer = AccountId(name)
    await market.submit(CreateAccount(buyer, False, True))
    await market.submit(Deposit(buyer, 100_000_000))
    return buyer


async def _market_buy(market: MarketService, buyer: AccountId, units: int) -> list[Trade]:
    outcome = await market.submit(PlaceOrder(buyer, LOCAL, "buy", "market", units))
    return [e for e in outcome.events if isinstance(e, Trade)]


def _config(**changes: object) -> AgentConfig:
    base = {
        "price_usd_micros": 7_000,
        "resting_units": 2,
        "capacity_tokens_per_min": THREE_UNITS_TOKENS_PER_MIN,
        "interval_s": 0.05,
    }
    return AgentConfig(**(base | changes))  # type: ignore[arg-type]


async def test_asks_rest_then_are_topped_up_within_capacity(tmp_path: Path) -> None:
    directory = SupplierDirectory()
    async with MarketService.from_url(f"sqlite:///{tmp_path / 'm.db'}") as market:
        agent = BuiltinSupplyAgent(market, directory, URL, _config())
        assert agent.not_ready_reason() is not None
        await agent.start()
        try:
            assert agent.not_ready_reason() is None
            assert agent.resting_ask_units() == 2
            book = market.sequencer.exchange.state.books[LOCAL]
            assert agent.account_id is not None
            [endpoint] = directory.for_instrument(LOCAL)
            assert endpoint.supplier_id == agent.account_id
            assert (endpoint.base_url, endpoint.name) == (URL, SUPPLIER_NAME)
            assert book is not None

            buyer = await _buyer(market, "buyer-1")
            trades = await _market_buy(market, buyer, 1)
            assert [(t.quantity_units, t.price_usd_micros) for t in trades] == [(1, 7_000)]
            await _until(lambda: agent.resting_ask_units() == 2)  # topped up: 3 issued

            await _market_buy(market, buyer, 2)
            # 3 units are sold and undelivered: the capacity bounds issuance, nothing rests.
            await asyncio.sleep(0.3)
            assert agent.resting_ask_units() == 0
            position = market.sequencer.exchange.state.accounts[
                agent.account_id
            ].supplier_positions[LOCAL]
            assert position.issued_tokens == 3_000_000
        finally:
            await agent.stop()
        assert directory.for_instrument(LOCAL) == []


async def test_a_restart_reuses_the_supplier_account(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    ids = []
    for _ in range(2):
        async with MarketService.from_url(url) as market:
            agent = BuiltinSupplyAgent(market, SupplierDirectory(), URL, _config())
            await agent.start()
            await agent.stop()
            ids.append(agent.account_id)
            # The asks left resting count toward the target: no more are placed on restart.
            assert agent.resting_ask_units() == 2
    assert ids[0] == ids[1]


async def test_a_price_off_the_tick_is_refused(tmp_path: Path) -> None:
    async with MarketService.from_url(f"sqlite:///{tmp_path / 'm.db'}") as market:
        agent = BuiltinSupplyAgent(
            market, SupplierDirectory(), URL, _config(price_usd_micros=10_500)
        )
        try:
            await agent.start()
        except ValueError as refused:
            assert "tick" in str(refused)
        else:
            raise AssertionError("a price off the tick was accepted")


async def test_asks_are_withdrawn_while_the_model_is_down(tmp_path: Path) -> None:
    up = [True]
    async with MarketService.from_url(f"sqlite:///{tmp_path / 'm.db'}") as market:
        agent = BuiltinSupplyAgent(
            market, SupplierDirectory(), URL, _config(), serving=lambda: up[0]
        )
        await agent.start()
        try:
            assert agent.resting_ask_units() == 2
            up[0] = False
            await _until(lambda: agent.resting_ask_units() == 0)
            reason = agent.not_ready_reason()
            assert reason is not None and "not serving" in reason
            up[0] = True
            await _until(lambda: agent.resting_ask_units() == 2)
            assert agent.not_ready_reason() is None
        finally:
            await agent.stop()
