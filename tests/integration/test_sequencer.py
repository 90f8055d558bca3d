"""The sequencer orders every command, acknowledges it only once its batch is committed, stops
for good when a commit fails, and a restart rebuilds exactly the state it acknowledged, on
SQLite and PostgreSQL alike."""

import asyncio
import enum
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from market_workload import workload

from gridmarket.adapters.store import LogEntry, PreparedBatch, Store
from gridmarket.core.commands import Command, CreateAccount, Deposit, ExpireLots
from gridmarket.core.events import Rejected, UsdMoved
from gridmarket.core.exchange import Exchange, Outcome
from gridmarket.core.ids import AccountId
from gridmarket.service.errors import (
    EngineFailed,
    InvalidCommand,
    NotRunning,
    Overloaded,
    StoreFailed,
    SubscriberDropped,
)
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import Sequencer, SequencerLimits

ALICE = AccountId("alice")


class StepClock:
    """Epoch ms that advance by `step_ms` at every reading (or go back, to test the guard)."""

    def __init__(self, start_ms: int = 1_767_225_600_000, step_ms: int = 7) -> None:
        self.now_ms = start_ms
        self.step_ms = step_ms

    def __call__(self) -> int:
        self.now_ms += self.step_ms
        return self.now_ms


class GatedStore:
    """A real store whose commits wait for `gate` (and can be made to fail)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.fail_next = False
        self.commits = 0

    def migrate(self) -> None:
        self.store.migrate()

    def load_commands(self) -> Iterator[tuple[int, int, Command]]:
        return self.store.load_commands()

    def prepare_batch(self, entries: Sequence[LogEntry]) -> PreparedBatch:
        return self.store.prepare_batch(entries)

    def write_prepared(self, prepared: PreparedBatch) -> None:
        self.entered.set()
        assert self.gate.wait(30)
        if self.fail_next:
            raise OSError("disk on fire")
        self.store.write_prepared(prepared)
        self.commits += 1


async def _gated(
    url: str, exchange: Callable[[], Exchange] = Exchange, **limits: SequencerLimits
) -> tuple[Store, GatedStore, Sequencer]:
    """A started sequencer over a real store whose commits pass through `GatedStore`."""
    store = Store(url)
    gated = GatedStore(store)
    sequencer = Sequencer(gated, exchange, **limits)
    await sequencer.start()
    return store, gated, sequencer


def replay(url: str) -> Exchange:
    """A fresh exchange fed the stored command log."""
    store = Store(url)
    exchange = Exchange()
    for seq, ts_ms, command in store.load_commands():
        exchange.apply(command, seq, ts_ms)
    store.close()
    return exchange


async def submit_all(market: MarketService, commands: list[Command]) -> list[Outcome]:
    return [await market.submit(command) for command in commands]


async def test_a_restart_rebuilds_the_acknowledged_state(database_url: str) -> None:
    commands = workload(seed=1, n=600)
    async with MarketService.from_url(database_url, clock=StepClock()) as market:
        outcomes = await submit_all(market, commands)
        live_digest = market.sequencer.exchange.digest()
        live_audit = market.sequencer.exchange.audit()
    assert [o.seq for o in outcomes] == list(range(1, len(commands) + 1))
    assert any(type(event).__name__ == "Trade" for o in outcomes for event in o.events)

    async with MarketService.from_url(database_url, clock=StepClock()) as market:
        assert market.sequencer.exchange.digest() == live_digest
        assert set(market.sequencer.exchange.audit().values()) == {0}
        assert market.sequencer.committed_seq == len(commands)
        # Numbering resumes after the log.
        assert (await market.submit(ExpireLots())).seq == len(commands) + 1
    assert set(live_audit.values()) == {0}


async def test_the_stored_log_replays_to_the_live_state_and_events(database_url: str) -> None:
    async with MarketService.from_url(database_url, clock=StepClock()) as market:
        outcomes = await submit_all(market, workload(seed=2, n=400))
        live_digest = market.sequencer.exchange.digest()
        stored_events = [event for _, event in market.store.load_events()]
        stored_postings = [posting for _, posting in market.store.load_postings()]

    assert replay(database_url).digest() == live_digest
    assert stored_events == [event for o in outcomes for event in o.events]
    assert stored_postings == [posting for o in outcomes for posting in o.postings]


async def test_rejected_commands_are_logged_too(database_url: str) -> None:
    async with MarketService.from_url(database_url) as market:
        outcome = await market.submit(Deposit(AccountId("nobody"), 5))
        stored = list(market.store.load_commands())
    assert [type(event) for event in outcome.events] == [Rejected]
    assert stored == [(1, outcome.ts_ms, Deposit(AccountId("nobody"), 5))]


async def test_no_acknowledgement_before_the_commit_returns(database_url: str) -> None:
    store, gated, sequencer = await _gated(database_url)
    gated.gate.clear()

    first = asyncio.ensure_future(sequencer.submit(CreateAccount(ALICE)))
    await asyncio.to_thread(gated.entered.wait, 10)
    # Batch 1 is being committed; batch 2 is applied in memory meanwhile, not acknowledged.
    second = asyncio.ensure_future(sequencer.submit(Deposit(ALICE, 10)))
    await asyncio.sleep(0.2)
    assert not first.done() and not second.done()
    assert sequencer.exchange.balance("alice/usd/available") == 10  # ahead of the store
    assert store.last_seq() == 0

    gated.gate.set()
    assert (await first).seq == 1
    assert (await second).seq == 2
    assert store.last_seq() == 2
    await sequencer.stop()
    store.close()


async def test_submit_applied_answers_before_the_commit_and_logs_in_order(
    database_url: str,
) -> None:
    store, gated, sequencer = await _gated(database_url)
    await sequencer.submit(CreateAccount(ALICE))
    gated.gate.clear()

    blocker = asyncio.ensure_future(sequencer.submit(Deposit(ALICE, 1)))
    await asyncio.to_thread(gated.entered.wait, 10)
    # The writer is held: an early command is answered once applied, a durable one is not.
    early = await asyncio.wait_for(sequencer.submit_applied(Deposit(ALICE, 20)), 10)
    durable = asyncio.ensure_future(sequencer.submit(Deposit(ALICE, 300)))
    await asyncio.sleep(0.2)
    assert early.seq == 3 and store.last_seq() == 1
    assert not blocker.done() and not durable.done()

    gated.gate.set()
    assert (await durable).seq == 4
    # The later command's acknowledgement covers the early one: the log has both, in order.
    assert [seq for seq, _, _ in store.load_commands()] == [1, 2, 3, 4]
    assert (await blocker).seq == 2
    await sequencer.stop()
    store.close()
    assert replay(database_url).balance("alice/usd/available") == 321


async def test_an_early_answer_is_lost_with_the_commit_that_failed(database_url: str) -> None:
    store, gated, sequencer = await _gated(database_url)
    await sequencer.submit(CreateAccount(ALICE))
    gated.gate.clear()
    gated.fail_next = True
    early = await asyncio.wait_for(sequencer.submit_applied(Deposit(ALICE, 20)), 10)
    assert early.seq == 2
    await asyncio.to_thread(gated.entered.wait, 10)
    gated.gate.set()
    # What comes after it is refused: nothing acknowledged durably ever depended on it.
    with pytest.raises(StoreFailed):
        await sequencer.submit(Deposit(ALICE, 300))
    await sequencer.stop()
    assert [seq for seq, _, _ in store.load_commands()] == [1]
    store.close()


async def test_a_failed_commit_fails_every_pending_and_later_submit(database_url: str) -> None:
    store, gated, sequencer = await _gated(database_url)
    acknowledged = await sequencer.submit(CreateAccount(ALICE))

    gated.gate.clear()
    gated.fail_next = True
    pending = [asyncio.ensure_future(sequencer.submit(Deposit(ALICE, n))) for n in range(1, 40)]
    await asyncio.to_thread(gated.entered.wait, 10)
    gated.gate.set()
    results = await asyncio.gather(*pending, return_exceptions=True)

    assert all(isinstance(result, StoreFailed) for result in results), results
    assert isinstance(sequencer.failure, StoreFailed)
    with pytest.raises(StoreFailed):
        await sequencer.submit(Deposit(ALICE, 1))
    await sequencer.stop()

    # The store holds exactly what was acknowledged; a restart rebuilds that.
    assert [seq for seq, _, _ in store.load_commands()] == [acknowledged.seq]
    store.close()
    assert replay(database_url).balance("alice/usd/available") == 0


async def test_many_concurrent_submitters_get_their_own_outcomes_in_order(
    database_url: str,
) -> None:
    async with MarketService.from_url(database_url) as market:
        await market.submit(CreateAccount(ALICE))
        seen: dict[int, list[int]] = {}

        async def submitter(task: int) -> None:
            for n in range(25):
                amount = task * 1_000 + n + 1
                outcome = await market.submit(Deposit(ALICE, amount))
                (event,) = outcome.events
                assert isinstance(event, UsdMoved) and event.amount_usd_micros == amount
                seen.setdefault(task, []).append(outcome.seq)

        await asyncio.gather(*(submitter(task) for task in range(200)))
        balance = market.sequencer.exchange.balance("alice/usd/available")

    every_seq = sorted(seq for seqs in seen.values() for seq in seqs)
    assert every_seq == list(range(2, 2 + 200 * 25))
    assert all(seqs == sorted(seqs) for seqs in seen.values())
    assert balance == sum(t * 1_000 + n + 1 for t in range(200) for n in range(25))
    assert replay(database_url).balance("alice/usd/available") == balance


async def test_timestamps_never_go_back(database_url: str) -> None:
    clock = StepClock(step_ms=-5)
    async with MarketService.from_url(database_url, clock=clock) as market:
        stamps = [(await market.submit(ExpireLots())).ts_ms for _ in range(5)]
    assert stamps == [stamps[0]] * 5


async def test_a_full_queue_is_overloaded_not_unbounded(database_url: str) -> None:
    limits = SequencerLimits(max_queue_commands=5, max_batch_commands=2)
    store, gated, sequencer = await _gated(database_url, limits=limits)
    gated.gate.clear()
    first = asyncio.ensure_future(sequencer.submit(ExpireLots()))
    await asyncio.to_thread(gated.entered.wait, 10)

    # While batch 1 is stuck in its commit, 5 commands may wait: the 6th, 7th, 8th are refused.
    pending = [asyncio.ensure_future(sequencer.submit(ExpireLots())) for _ in range(8)]
    await asyncio.sleep(0.1)
    refused = [p for p in pending if p.done() and isinstance(p.exception(), Overloaded)]
    assert pending[5:] == refused
    # The loop took 2 of the 5 into the next batch: 2 more fit, not 3.
    pending += [asyncio.ensure_future(sequencer.submit(ExpireLots())) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await sequencer.submit(ExpireLots())

    gated.gate.set()
    accepted = [first, *pending[:5], *pending[8:]]
    assert [o.seq for o in await asyncio.gather(*accepted)] == list(range(1, 9))
    await sequencer.stop()
    store.close()


async def test_stop_acknowledges_everything_queued_then_refuses(database_url: str) -> None:
    market = MarketService.from_url(database_url)
    await market.__aenter__()
    pending = [asyncio.ensure_future(market.submit(ExpireLots())) for _ in range(300)]
    await asyncio.sleep(0)
    await market.__aexit__(None, None, None)
    assert [o.seq for o in await asyncio.gather(*pending)] == list(range(1, 301))
    with pytest.raises(NotRunning):
        await market.sequencer.submit(ExpireLots())


async def test_a_command_that_cannot_be_logged_faithfully_is_refused(database_url: str) -> None:
    async with MarketService.from_url(database_url) as market:
        with pytest.raises(InvalidCommand):
            await market.submit(Deposit(ALICE, float("nan")))  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand):
            await market.submit(CreateAccount(("a", "b")))  # type: ignore[arg-type]
        with pytest.raises(InvalidCommand):  # would come back a plain int: the core checks types
            await market.submit(Deposit(ALICE, Cents.one))
        with pytest.raises(InvalidCommand):
            await market.submit(CreateAccount(AccountId("\ud800")))
        # Wrong but faithfully logged values reach the core, which names the problem.
        outcome = await market.submit(Deposit(ALICE, "5"))  # type: ignore[arg-type]
        assert [type(event) for event in outcome.events] == [Rejected]
        assert outcome.seq == 1


class Cents(enum.IntEnum):
    one = 10_000


class CrashOn(Exchange):
    """An exchange with a bug: it raises on deposits of 13."""

    def apply(self, command: Any, seq: int, ts_ms: int) -> Outcome:
        if isinstance(command, Deposit) and command.amount_usd_micros == 13:
            raise AssertionError("bug")
        return super().apply(command, seq, ts_ms)


async def test_a_core_bug_stops_the_sequencer_without_logging_the_command(
    database_url: str,
) -> None:
    store, gated, sequencer = await _gated(database_url, CrashOn)
    await sequencer.submit(CreateAccount(ALICE))
    gated.gate.clear()
    before = asyncio.ensure_future(sequencer.submit(Deposit(ALICE, 1)))
    await asyncio.to_thread(gated.entered.wait, 10)
    same_batch = [
        asyncio.ensure_future(sequencer.submit(Deposit(ALICE, amount))) for amount in (2, 13, 3)
    ]
    await asyncio.sleep(0.1)
    gated.gate.set()

    assert (await before).seq == 2
    ok, bug, after = await asyncio.gather(*same_batch, return_exceptions=True)
    assert isinstance(ok, Outcome) and ok.seq == 3
    assert isinstance(bug, EngineFailed) and isinstance(after, EngineFailed)
    with pytest.raises(EngineFailed):
        await sequencer.submit(ExpireLots())
    await sequencer.stop()
    assert [seq for seq, _, _ in store.load_commands()] == [1, 2, 3]
    store.close()


async def test_subscribers_get_committed_outcomes_and_a_slow_one_is_dropped(
    database_url: str,
) -> None:
    async with MarketService.from_url(database_url) as market:
        feed = market.subscribe()
        slow = market.subscribe(max_pending_outcomes=3)
        outcomes = [await market.submit(ExpireLots()) for _ in range(5)]

        assert [await anext(feed) for _ in range(5)] == outcomes
        assert [await anext(slow) for _ in range(3)] == outcomes[:3]
        with pytest.raises(SubscriberDropped):
            await anext(slow)
    with pytest.raises(StopAsyncIteration):
        await anext(feed)  # the feed ends with the market


async def test_a_subscriber_may_take_its_outcomes_a_batch_at_a_time(database_url: str) -> None:
    async with MarketService.from_url(database_url) as market:
        batched = market.subscribe()
        slow = market.subscribe(max_pending_outcomes=3)
        outcomes = [await market.submit(ExpireLots()) for _ in range(5)]
        batches = batched.batches()

        assert await anext(batches) == outcomes  # everything queued, in order, at once
        waiting = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.01)
        assert not waiting.done()  # nothing queued: it waits for the next commit
        later = await market.submit(ExpireLots())
        assert await waiting == [later]
        assert await anext(slow.batches()) == outcomes[:3]  # what was queued before the drop
        with pytest.raises(SubscriberDropped):
            await anext(slow.batches())
    with pytest.raises(StopAsyncIteration):
        await anext(batches)  # the feed ends with the market
