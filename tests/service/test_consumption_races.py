"""Race-freedom of the balance checks (issue 4), on SQLite and PostgreSQL: many concurrent calls
against the last tokens of an account never overspend, with and without key spend caps; the
ledger audit balances; a restart keeps everything acknowledged; Auto Mode calls stampeding an
empty account place one order."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict

from autobuy_support import PRIME, USD, ask, buyer, consumption_tokens, orders_of

from gridmarket.core.commands import CommitTokens, PlaceOrder, SettleCall
from gridmarket.core.events import CallSettled, Rejected, TokensCommitted, Trade
from gridmarket.core.ids import AccountId, CallId
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.gateway.autobuy import AutoBuyer
from gridmarket.gateway.contract import Caller
from gridmarket.service.audit import audit_store
from gridmarket.service.market import MarketService

CALLS = 60
COMMIT_TOKENS = 5_000
LEFT_TOKENS = 100_000  # what the account holds when the calls start: room for 20 commits


async def _account_with_few_tokens(market: MarketService) -> Caller:
    """An account holding one unit, most of it already used: `LEFT_TOKENS` left."""
    await ask(market, "s1", 3, USD)
    caller = await buyer(market, mode="advanced", usd_micros=10 * USD)
    account = AccountId(caller.account_id)
    bought = await market.submit(PlaceOrder(account, PRIME, "buy", "market", 1, auto_transfer=True))
    assert any(isinstance(e, Trade) for e in bought.events), bought.events
    used = TOKENS_PER_UNIT - LEFT_TOKENS
    committed = await market.submit(CommitTokens(CallId("warm-up"), account, PRIME, used))
    assert isinstance(committed.events[0], TokensCommitted)
    await market.submit(SettleCall(CallId("warm-up"), used))
    assert consumption_tokens(market, caller.account_id) == LEFT_TOKENS
    return caller


async def _call(
    market: MarketService,
    account: AccountId,
    index: int,
    key_id: str | None,
    cap: int | None,
    rng: random.Random,
    overage: bool,
    in_flight: list[int],
) -> CallSettled | str:
    """One metered call: commit, yield to the others, settle. Its settlement or the refusal."""
    call_id = CallId(f"call-{index}")
    outcome = await market.submit(CommitTokens(call_id, account, PRIME, COMMIT_TOKENS, key_id, cap))
    event = outcome.events[0]
    if isinstance(event, Rejected):
        return event.reason
    assert isinstance(event, TokensCommitted)
    in_flight[0] += 1
    in_flight[1] = max(in_flight[1], in_flight[0])
    await asyncio.sleep(rng.random() / 100)
    used = rng.randint(0, COMMIT_TOKENS + (2_000 if overage else 0))
    settled = await market.submit(SettleCall(call_id, used, request_id=f"req-{index}"))
    in_flight[0] -= 1
    result = settled.events[-1]
    assert isinstance(result, CallSettled), settled.events
    return result


async def _race(database_url: str, *, caps: bool, overage: bool, seed: int) -> None:
    rng = random.Random(seed)
    cap = 20_000
    keys = ("k1", "k2", "k3")
    async with MarketService.from_url(database_url, tune_gc=False) as market:
        caller = await _account_with_few_tokens(market)
        account = AccountId(caller.account_id)
        in_flight = [0, 0]  # calls committed and not yet settled: now, and the most at once
        results = await asyncio.gather(
            *(
                _call(
                    market,
                    account,
                    i,
                    keys[i % 3] if caps else None,
                    cap if caps else None,
                    rng,
                    overage,
                    in_flight,
                )
                for i in range(CALLS)
            )
        )
        settled = [r for r in results if isinstance(r, CallSettled)]
        refusals = {r for r in results if isinstance(r, str)}
        billed = sum(s.billed_tokens for s in settled)
        left = consumption_tokens(market, caller.account_id)

        # Never more billed than there was; nothing lost or made up; refusals for the rest.
        assert 0 < len(settled) < CALLS
        assert in_flight[1] > 5  # the calls really overlapped
        assert billed <= LEFT_TOKENS
        assert billed + left == LEFT_TOKENS
        assert refusals <= {"insufficient_tokens", "spend_cap_reached"}
        exchange = market.sequencer.exchange
        assert exchange.state.ledger.negative_accounts() == []
        assert all(total == 0 for total in exchange.audit().values())
        assert exchange.balance(f"{account}/{PRIME}/consumption_committed") == 0
        if caps:
            per_key: dict[str | None, int] = defaultdict(int)
            for s in settled:
                per_key[s.key_id] += s.billed_tokens
            assert set(per_key) <= set(keys)
            assert all(tokens <= cap for tokens in per_key.values()), per_key
            assert "spend_cap_reached" in refusals or sum(per_key.values()) < 3 * cap
        digest = exchange.digest()
        last_seq = exchange.last_seq

    report = await asyncio.to_thread(audit_store, database_url)
    assert report.balanced, report
    async with MarketService.from_url(database_url, tune_gc=False) as reopened:
        assert reopened.sequencer.exchange.last_seq == last_seq
        assert reopened.sequencer.exchange.digest() == digest
        assert consumption_tokens(reopened, caller.account_id) == left
        stored = [
            event
            for _id, event in reopened.store.load_events()
            if isinstance(event, CallSettled) and event.account_id == account
        ]
        assert sum(e.billed_tokens for e in stored) == billed + TOKENS_PER_UNIT - LEFT_TOKENS


async def test_concurrent_calls_on_the_last_tokens_never_overspend(database_url: str) -> None:
    await _race(database_url, caps=False, overage=False, seed=1)


async def test_usage_beyond_the_commitment_never_overspends_either(database_url: str) -> None:
    await _race(database_url, caps=False, overage=True, seed=2)


async def test_key_spend_caps_hold_under_concurrency(database_url: str) -> None:
    await _race(database_url, caps=True, overage=False, seed=3)


async def test_auto_mode_calls_stampeding_an_empty_account_buy_once(database_url: str) -> None:
    async with MarketService.from_url(database_url, tune_gc=False) as market:
        await ask(market, "s1", 5, USD)
        caller = await buyer(market, usd_micros=10 * USD)
        account = AccountId(caller.account_id)
        autobuy = AutoBuyer(lambda: market)

        async def call(index: int) -> CallSettled:
            # As the gateway meters: make the tokens available, commit, settle.
            await autobuy.ensure(caller, PRIME, 20_000)
            call_id = CallId(f"auto-{index}")
            committed = await market.submit(CommitTokens(call_id, account, PRIME, 20_000))
            assert isinstance(committed.events[0], TokensCommitted), committed.events
            settled = await market.submit(SettleCall(call_id, 15_000))
            event = settled.events[-1]
            assert isinstance(event, CallSettled)
            return event

        results = await asyncio.gather(*(call(i) for i in range(50)))

        assert autobuy.orders_placed == 1
        assert len(orders_of(market, caller.account_id)) == 1
        assert sum(r.billed_tokens for r in results) == 50 * 15_000
        assert consumption_tokens(market, caller.account_id) == TOKENS_PER_UNIT - 50 * 15_000
        assert all(total == 0 for total in market.sequencer.exchange.audit().values())
    report = await asyncio.to_thread(audit_store, database_url)
    assert report.balanced, report
