"""The gateway over a real market service (SQLite) with a clock the test moves, and two fake
upstreams: lots drawn soonest-expiring first and routed to their supplier, expired lots
skipped, the Auto Mode hook (`TokenSupply.ensure`, then one more commit), and a failover
settled between the suppliers (the funding one pays the substitute, or owes the operator)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gridmarket.core.commands import (
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
    TransferToConsumption,
    Withdraw,
)
from gridmarket.core.events import LotCreated, Rejected
from gridmarket.core.exchange import ExchangeConfig
from gridmarket.core.ids import AccountId, InstrumentId
from gridmarket.core.instruments import default_catalogue
from gridmarket.gateway.contract import (
    Caller,
    GatewayError,
    SupplierDirectory,
    SupplierEndpoint,
)
from gridmarket.gateway.service import Gateway
from gridmarket.gateway.tokens import TokenCounter
from gridmarket.service.market import MarketService
from gridmarket.service.usage import Usage
from support.fake_upstream import FakeUpstream

TP = InstrumentId("text-prime")
HOUR_MS = 3_600_000
START_MS = 1_767_227_400_000
UNIT = 1_000_000
#: One tokenizer for every test (it takes a couple of seconds to load).
COUNTER = TokenCounter()


class Clock:
    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[FakeUpstream, FakeUpstream]]:
    with FakeUpstream("a") as a, FakeUpstream("b") as b:
        yield a, b


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def market(tmp_path: Path, clock: Clock) -> AsyncIterator[MarketService]:
    catalogue = default_catalogue()
    catalogue[TP] = replace(catalogue[TP], consumption_window_ms=4 * HOUR_MS)
    config = ExchangeConfig(instruments=catalogue)
    url = f"sqlite:///{tmp_path / 'market.db'}"
    async with MarketService.from_url(url, config=config, clock=clock, tune_gc=False) as running:
        yield running


async def supplier_sells(market: MarketService, name: str, units: int, price: int) -> AccountId:
    supplier = AccountId(name)
    if supplier not in market.sequencer.exchange.state.accounts:
        await market.submit(CreateAccount(supplier, is_supplier=True))
        await market.submit(SetSupplierCapacity(supplier, TP, 10**9))
    await market.submit(IssueUnits(supplier, TP, units))
    await market.submit(TransferIssuanceToTrading(supplier, TP, units))
    await market.submit(PlaceOrder(supplier, TP, "sell", "limit", units, price))
    return supplier


async def buy_lot(market: MarketService, buyer: AccountId, units: int) -> LotCreated:
    if buyer not in market.sequencer.exchange.state.accounts:
        await market.submit(CreateAccount(buyer))
        await market.submit(Deposit(buyer, 1_000 * UNIT))
    await market.submit(PlaceOrder(buyer, TP, "buy", "market", units, None))
    outcome = await market.submit(TransferToConsumption(buyer, TP, units))
    [lot] = [e for e in outcome.events if isinstance(e, LotCreated)]
    return lot


def gateway_for(market: MarketService, a: FakeUpstream, b: FakeUpstream, **kw: Any) -> Gateway:
    directory = SupplierDirectory()
    directory.add(SupplierEndpoint("s1", TP, a.base_url, "fake-a", name="a"))
    directory.add(SupplierEndpoint("s2", TP, b.base_url, "fake-b", name="b"))
    return Gateway(market, directory, counter=COUNTER, **kw)


def remaining(market: MarketService, buyer: str) -> list[int]:
    holding = market.sequencer.exchange.state.accounts[AccountId(buyer)].holdings[TP]
    return [lot.remaining_tokens for lot in holding.lots]


def chat(text: str) -> dict[str, Any]:
    return {"model": "text-prime", "messages": [{"role": "user", "content": text}]}


async def test_the_soonest_expiring_lot_pays_and_its_supplier_serves_until_it_expires(
    market: MarketService, clock: Clock, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = upstreams
    await supplier_sells(market, "s1", 1, UNIT)
    first = await buy_lot(market, AccountId("c1"), 1)
    clock.now_ms += HOUR_MS
    await supplier_sells(market, "s2", 1, UNIT)
    second = await buy_lot(market, AccountId("c1"), 1)
    assert (first.supplier_id, second.supplier_id) == ("s1", "s2")
    assert first.expires_at_ms is not None and second.expires_at_ms is not None
    assert first.expires_at_ms < second.expires_at_ms

    gateway = gateway_for(market, a, b)
    try:
        seen_a, seen_b = len(a.requests), len(b.requests)
        answer = await gateway.chat(Caller("c1", "ck_1"), chat("one two"))
        assert answer["usage"]["total_tokens"] == 2 + 3
        await gateway.wait_settled()
        assert (len(a.requests), len(b.requests)) == (seen_a + 1, seen_b)
        assert remaining(market, "c1") == [UNIT - 5, UNIT]

        clock.now_ms = first.expires_at_ms  # the first lot expires: it is skipped
        answer = await gateway.chat(Caller("c1", "ck_1"), chat("three four five"))
        assert answer["usage"]["total_tokens"] == 3 + 4
        await gateway.wait_settled()
        assert (len(a.requests), len(b.requests)) == (seen_a + 1, seen_b + 1)
        assert remaining(market, "c1")[1] == UNIT - 7
    finally:
        await gateway.aclose()


class BuyingSupply:
    """An Auto Mode stand-in: buys the missing whole units and moves them to consumption."""

    def __init__(self, market: MarketService) -> None:
        self.market = market
        self.asked: list[int] = []

    async def ensure(self, caller: Caller, instrument_id: str, tokens: int) -> None:
        self.asked.append(tokens)
        await buy_lot(self.market, AccountId(caller.account_id), -(-tokens // UNIT))


async def test_a_short_balance_asks_the_token_supply_then_commits_again(
    market: MarketService, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = upstreams
    await supplier_sells(market, "s1", 3, UNIT)
    await market.submit(CreateAccount(AccountId("auto")))
    await market.submit(Deposit(AccountId("auto"), 10 * UNIT))
    supply = BuyingSupply(market)
    gateway = gateway_for(market, a, b, token_supply=supply)
    try:
        answer = await gateway.chat(Caller("auto", "ck_2"), chat("buy for me"))
        assert answer["choices"][0]["message"]["content"] == "echo: buy for me"
        assert len(supply.asked) == 1 and 0 < supply.asked[0] < UNIT
        await gateway.wait_settled()
        assert remaining(market, "auto") == [UNIT - (3 + 4)]
    finally:
        await gateway.aclose()


async def test_without_a_token_supply_a_short_balance_is_a_402(
    market: MarketService, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = upstreams
    await market.submit(CreateAccount(AccountId("poor")))
    gateway = gateway_for(market, a, b)
    try:
        with pytest.raises(GatewayError) as refused:
            await gateway.chat(Caller("poor", "ck_3"), chat("x"))
        assert (refused.value.status, refused.value.code) == (402, "insufficient_tokens")
    finally:
        await gateway.aclose()


async def test_settlement_survives_a_cancelled_caller(
    market: MarketService, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    a, b = upstreams
    await supplier_sells(market, "s1", 1, UNIT)
    await buy_lot(market, AccountId("quitter"), 1)
    gateway = gateway_for(market, a, b)
    try:
        body = chat(" ".join(f"w{i}" for i in range(40)) + " #mode:trickle") | {"stream": True}
        stream = gateway.chat_stream(Caller("quitter", "ck_4"), body)

        first_chunk = asyncio.Event()

        async def read_some() -> None:
            async with contextlib.aclosing(stream):  # as the surfaces do
                async for _ in stream:
                    first_chunk.set()
                    await asyncio.sleep(10)  # the caller stalls and is then cancelled

        task = asyncio.create_task(read_some())
        await asyncio.wait_for(first_chunk.wait(), 10)
        task.cancel()
        await asyncio.sleep(0)
        task.cancel()  # cancelled again while it closes the stream: settlement goes on
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await gateway.aclose()  # waits for the settlement
    state = market.sequencer.exchange.state
    assert not state.calls  # settled, nothing left committed
    [lot] = state.accounts[AccountId("quitter")].holdings[TP].lots
    prompt = COUNTER.count_prompt(body["messages"])
    assert prompt <= UNIT - lot.remaining_tokens < prompt + 20  # what came, not the budget


# -- failover: the funding supplier pays the substitute (DESIGN section 9) ----------------------

#: 2.501 USD a unit: 6 tokens are worth 15.006 micro-USD, paid as 16.
SUBSTITUTION_PRICE = 2_501_000


def usd(market: MarketService, account_id: str) -> int:
    return market.sequencer.exchange.balance(f"{account_id}/usd/available")


async def test_a_failover_has_the_funding_supplier_pay_the_substitute(
    tmp_path: Path, clock: Clock, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """s1 funded the lot, its endpoint answers 500 before the first byte, s2's delivers: s1
    pays s2 for the tokens, the receipt shows it, and a restart replays the same balances."""
    a, b = upstreams
    url = f"sqlite:///{tmp_path / 'failover.db'}"
    async with MarketService.from_url(url, clock=clock, tune_gc=False) as market:
        await supplier_sells(market, "s1", 1, SUBSTITUTION_PRICE)
        await supplier_sells(market, "s2", 1, SUBSTITUTION_PRICE)  # s2: a supplier, no sale
        await buy_lot(market, AccountId("c1"), 1)
        before = {s: usd(market, s) for s in ("s1", "s2")}
        gateway = gateway_for(market, a, b)
        async with Usage().following(market) as receipts:
            try:
                seen_b = len(b.requests)
                answer = await gateway.chat(
                    Caller("c1", "ck_5"), chat("one two #mode:fail500@a"), request_id="fo1"
                )
                await gateway.wait_settled()
            finally:
                await gateway.aclose()
            assert len(b.requests) == seen_b + 1
            tokens = answer["usage"]["total_tokens"]
            assert tokens == 3 + 3
            paid = -(-tokens * SUBSTITUTION_PRICE // UNIT)
            assert paid == 16
            assert usd(market, "s1") == before["s1"] - paid
            assert usd(market, "s2") == before["s2"] + paid
            await receipts.caught_up(market.sequencer.committed_seq)
            receipt = receipts.receipt_by_request("c1", "fo1")
            assert receipt is not None
            assert (receipt.supplier_id, receipt.model) == ("s2", "fake-b")
            assert [(s.supplier_id, s.substitute_id, s.tokens) for s in receipt.substitutions] == [
                ("s1", "s2", tokens)
            ]
            assert receipt.substitutions[0].amount_usd_micros == paid
        assert all(total == 0 for total in market.sequencer.exchange.audit().values())
        after = dict(market.sequencer.exchange.state.ledger.balances)
    async with MarketService.from_url(url, clock=clock, tune_gc=False) as restarted:
        assert restarted.sequencer.exchange.state.ledger.balances == after


async def test_a_failover_from_a_supplier_short_of_usd_books_a_receivable(
    market: MarketService, upstreams: tuple[FakeUpstream, FakeUpstream]
) -> None:
    """s1 has no USD left: s2 is paid in full all the same, the operator pays and s1 owes it,
    and may not issue until a deposit pays it back."""
    a, b = upstreams
    await supplier_sells(market, "s1", 1, SUBSTITUTION_PRICE)
    await supplier_sells(market, "s2", 1, SUBSTITUTION_PRICE)
    await buy_lot(market, AccountId("c2"), 1)
    await market.submit(Withdraw(AccountId("s1"), usd(market, "s1")))
    s2_before = usd(market, "s2")
    gateway = gateway_for(market, a, b)
    try:
        await gateway.chat(Caller("c2", "ck_6"), chat("one two #mode:fail500@a"))
        await gateway.wait_settled()
    finally:
        await gateway.aclose()
    state = market.sequencer.exchange.state
    assert usd(market, "s2") == s2_before + 16
    assert state.accounts[AccountId("s1")].receivable_usd_micros == 16
    assert market.sequencer.exchange.balance("operator/usd/receivables") == -16
    refused = await market.submit(IssueUnits(AccountId("s1"), TP, 1))
    assert [e.reason for e in refused.events if isinstance(e, Rejected)] == [
        "receivable_outstanding"
    ]
    await market.submit(Deposit(AccountId("s1"), 100))
    assert state.accounts[AccountId("s1")].receivable_usd_micros == 0
    assert usd(market, "s1") == 100 - 16
    issued = await market.submit(IssueUnits(AccountId("s1"), TP, 1))
    assert [type(e).__name__ for e in issued.events] == ["UnitsIssued"]
