"""Orders through the sequencer with durable group commit: acknowledged orders/s and latency.

    .venv/bin/python bench/order_path.py [--orders 200000] [--tasks 512] [--seed 7]

Each of `--tasks` submitter tasks owns one trading account (funded with USD and issued units)
and submits its own pre-generated order flow, one command at a time, waiting for each
acknowledgement (so up to `--tasks` commands are in flight): 80% limit orders at a random
distance of 0-20 ticks on either side of a random-walking mid price (mostly resting; those
priced through the opposite side cross and trade), 5% market orders, 15% cancels of the task's
oldest open order (which keep the books from growing without bound). Every command counts as
an order. The store is a fresh SQLite file in a temporary directory (WAL, synchronous=FULL:
each batch is fsynced before anyone is acknowledged) and, when `GRIDMARKET_BENCH_POSTGRES_URL`
or `GRIDMARKET_TEST_POSTGRES_URL` is set, a fresh schema in that PostgreSQL (COPY per batch;
the server shares this machine's cores). After each run the stored log is replayed into a
fresh core and must give the live state's digest.

Two reference figures come first: `baseline_core_only` (the same flow on the bare core, in the
same process, with no store and no asyncio) and `sequencer_no_store` (the same flow through
the sequencer with a store that keeps nothing: the cost of sequencing alone). The last line
printed is one JSON object with every figure.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from gridmarket.adapters.store import LogEntry, Store
from gridmarket.core.commands import (
    CancelOrder,
    Command,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.events import OrderAccepted
from gridmarket.core.exchange import Exchange, Outcome
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from gridmarket.service.market import MarketService
from gridmarket.service.sequencer import Sequencer, SequencerLimits

INSTRUMENT = InstrumentId("text-prime")
TICK_USD_MICROS = 1_000
MID_START_USD_MICROS = 2_500_000
OPEN_ORDERS_KEPT = 20
CANCEL = None  # an intent: cancel this task's oldest open order

Intent = PlaceOrder | None


def setup_commands(accounts: list[AccountId], units: int) -> list[Command]:
    commands: list[Command] = []
    for account in accounts:
        commands += [
            CreateAccount(account, is_supplier=True),
            Deposit(account, 10**13),
            SetSupplierCapacity(account, INSTRUMENT, 10**12),
            IssueUnits(account, INSTRUMENT, units),
            TransferIssuanceToTrading(account, INSTRUMENT, units),
        ]
    return commands


def order_flow(seed: int, accounts: list[AccountId], per_task: int) -> list[list[Intent]]:
    """Each account's intents: limit orders around a random-walking mid, markets, cancels."""
    rng = random.Random(seed)
    mid = MID_START_USD_MICROS
    flows: list[list[Intent]] = [[] for _ in accounts]
    for _ in range(per_task):
        for flow, account in zip(flows, accounts, strict=True):
            # A slow walk, pulled back towards the start, so resting orders stay near the touch.
            pull = 1 if mid < MID_START_USD_MICROS else -1
            mid += rng.choice((-1, 1, pull, 0, 0, 0, 0, 0)) * TICK_USD_MICROS
            roll = rng.random()
            side = rng.choice(("buy", "sell"))
            quantity = rng.randint(1, 20)
            if roll < 0.15:
                flow.append(CANCEL)
            elif roll < 0.20:
                flow.append(PlaceOrder(account, INSTRUMENT, side, "market", quantity))
            else:
                # Positive distance: behind the mid (rests); negative: through it (may cross).
                distance = rng.randint(-2, 30) * TICK_USD_MICROS
                price = mid - distance if side == "buy" else mid + distance
                flow.append(PlaceOrder(account, INSTRUMENT, side, "limit", quantity, price))
    return flows


def next_command(account: AccountId, intent: Intent, open_orders: deque[OrderId]) -> Command:
    if intent is not None:
        return intent
    if open_orders:
        return CancelOrder(account, open_orders.popleft())
    return CancelOrder(account, OrderId(0))


def note_outcome(outcome: Outcome, open_orders: deque[OrderId]) -> None:
    for event in outcome.events:
        if type(event) is OrderAccepted and event.order_type == "limit":
            open_orders.append(event.order_id)
    while len(open_orders) > OPEN_ORDERS_KEPT:
        open_orders.popleft()


def run_core_only(
    setup: list[Command], accounts: list[AccountId], flows: list[list[Intent]]
) -> float:
    """Orders/s of the same flow on the bare core (tasks interleaved round-robin)."""
    exchange = Exchange()
    seq = 0
    for command in setup:
        seq += 1
        exchange.apply(command, seq, 0)
    open_orders: list[deque[OrderId]] = [deque() for _ in accounts]
    count = 0
    started = time.perf_counter()
    for step in range(len(flows[0])):
        for i, account in enumerate(accounts):
            seq += 1
            outcome = exchange.apply(next_command(account, flows[i][step], open_orders[i]), seq, 0)
            note_outcome(outcome, open_orders[i])
            count += 1
    return count / (time.perf_counter() - started)


class NullStore:
    """A store that keeps nothing: what the sequencer costs by itself, without durability."""

    def migrate(self) -> None:
        pass

    def load_commands(self) -> Iterator[tuple[int, int, Command]]:
        return iter(())

    def prepare_batch(self, entries: list[LogEntry]) -> list[LogEntry]:
        return entries

    def write_prepared(self, prepared: list[LogEntry]) -> None:
        pass

    def close(self) -> None:
        pass


def open_market(url: str | None, tasks: int) -> MarketService:
    """The market the bench drives: on `url`, or on a `NullStore` if None."""
    limits = SequencerLimits(max_queue_commands=tasks * 2)
    if url is not None:
        return MarketService.from_url(url, limits=limits)
    store: Any = NullStore()
    return MarketService(store, Sequencer(store, Exchange, limits=limits))


async def run_sequenced(
    url: str | None, setup: list[Command], accounts: list[AccountId], flows: list[list[Intent]]
) -> tuple[float, float, float]:
    """(orders/s, p50 µs, p99 µs) through the sequencer, each acknowledged after its commit."""
    latencies_ns: list[int] = []
    async with open_market(url, len(accounts)) as market:

        async def open_account(commands: list[Command]) -> None:
            for command in commands:
                await market.submit(command)

        per_account = len(setup) // len(accounts)
        await asyncio.gather(
            *(open_account(setup[i : i + per_account]) for i in range(0, len(setup), per_account))
        )

        async def trader(i: int) -> None:
            account = accounts[i]
            open_orders: deque[OrderId] = deque()
            submit = market.submit
            clock = time.perf_counter_ns
            for intent in flows[i]:
                command = next_command(account, intent, open_orders)
                sent_ns = clock()
                outcome = await submit(command)
                latencies_ns.append(clock() - sent_ns)
                note_outcome(outcome, open_orders)

        started = time.perf_counter()
        await asyncio.gather(*(trader(i) for i in range(len(accounts))))
        elapsed_s = time.perf_counter() - started
        live = market.sequencer.exchange.digest()
    if url is not None:
        assert replay(url).digest() == live, "replay of the stored log differs from the live state"
    quantiles = statistics.quantiles(latencies_ns, n=100)
    return len(latencies_ns) / elapsed_s, quantiles[49] / 1e3, quantiles[98] / 1e3


def replay(url: str) -> Exchange:
    store = Store(url)
    exchange = Exchange()
    for seq, ts_ms, command in store.load_commands():
        exchange.apply(command, seq, ts_ms)
    store.close()
    return exchange


@contextmanager
def postgres_schema(url: str) -> Iterator[str]:
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        scoped = sa.make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield scoped.render_as_string(hide_password=False)
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


@contextmanager
def backend(name: str, data_dir: str, postgres_url: str | None) -> Iterator[str | None]:
    """The database URL of a fresh store for `name` (None: no store at all)."""
    if name == "sqlite":
        yield f"sqlite:///{Path(data_dir) / 'market.db'}"
    elif name == "postgres":
        assert postgres_url is not None
        with postgres_schema(postgres_url) as url:
            yield url
    else:
        yield None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=200_000, help="orders in the timed run")
    parser.add_argument("--tasks", type=int, default=512, help="concurrent submitter tasks")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    accounts = [AccountId(f"trader{i:04d}") for i in range(args.tasks)]
    per_task = max(1, args.orders // args.tasks)
    flows = order_flow(args.seed, accounts, per_task)
    setup = setup_commands(accounts, units=per_task * 20)
    postgres_url = os.environ.get("GRIDMARKET_BENCH_POSTGRES_URL") or os.environ.get(
        "GRIDMARKET_TEST_POSTGRES_URL"
    )
    figures: dict[str, float] = {"orders": per_task * len(accounts), "tasks": len(accounts)}

    baseline = run_core_only(setup, accounts, flows)
    figures["baseline_core_only_orders_per_s"] = round(baseline)
    print(f"core only            : {baseline:10,.0f} orders/s (no sequencer, no store)", flush=True)

    names = ["sequencer_no_store", "sqlite"] + (["postgres"] if postgres_url else [])
    with tempfile.TemporaryDirectory(prefix="gridmarket-bench-") as data_dir:
        for name in names:
            with backend(name, data_dir, postgres_url) as url:
                rate, p50_us, p99_us = asyncio.run(run_sequenced(url, setup, accounts, flows))
            figures[f"{name}_orders_per_s"] = round(rate)
            figures[f"{name}_p50_us"] = round(p50_us)
            figures[f"{name}_p99_us"] = round(p99_us)
            print(
                f"{name:21}: {rate:10,.0f} orders/s acknowledged,"
                f" p50 {p50_us:8,.0f} µs, p99 {p99_us:8,.0f} µs",
                flush=True,
            )
    print(json.dumps(figures))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
