"""SIGKILL a loaded market at random moments: after every restart, each acknowledged command is
in the store with its orders and trades, none is half-applied (replaying the log yields
exactly the stored events and postings, command by command) and every asset sums to zero.

Rounds per backend: GRIDMARKET_CRASH_ROUNDS (default 3); the kill comes 0.5-2 s into the load.
Each round restarts on the store the previous kill left behind, so recovery is exercised too.
"""

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from gridmarket.adapters.store import Store
from gridmarket.core.events import Event, OrderAccepted, Posting, Trade
from gridmarket.core.exchange import Exchange
from gridmarket.service.market import MarketService

LOADGEN = Path(__file__).with_name("loadgen.py")
ROUNDS = int(os.environ.get("GRIDMARKET_CRASH_ROUNDS", "3"))
READY_TIMEOUT_S = 120

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120 + ROUNDS * 150)]


def run_and_kill(url: str, seed: int, rng: random.Random) -> list[dict[str, Any]]:
    """Start the load generator, let it run 0.5-2 s, SIGKILL it; the acks it printed."""
    process = subprocess.Popen(
        [sys.executable, str(LOADGEN), url, str(seed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line == "READY\n":
                ready.set()
            elif line.endswith("\n"):  # a torn last line was never a whole promise
                lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert ready.wait(READY_TIMEOUT_S), "the load generator did not start"
        time.sleep(rng.uniform(0.5, 2.0))
        assert process.poll() is None, "the load generator died by itself"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(30)
        reader.join(30)
    acks = [json.loads(line) for line in lines]
    assert len(acks) > 50, f"too little load before the kill: {len(acks)} acks"
    return acks


def check_store(url: str, acks: list[dict[str, Any]]) -> Exchange:
    """The store after a crash: complete, consistent, balanced. Returns the rebuilt exchange."""
    store = Store(url)
    try:
        commands = list(store.load_commands())
        stored_events = [event for _, event in store.load_events()]
        stored_postings = [posting for _, posting in store.load_postings()]
    finally:
        store.close()
    events: dict[int, list[Event]] = defaultdict(list)
    for event in stored_events:
        events[event.seq].append(event)
    postings: dict[int, list[Posting]] = defaultdict(list)
    for posting in stored_postings:
        postings[posting.seq].append(posting)

    assert [seq for seq, _, _ in commands] == list(range(1, len(commands) + 1))
    exchange = Exchange()
    for seq, ts_ms, command in commands:
        outcome = exchange.apply(command, seq, ts_ms)
        assert events.pop(seq, []) == outcome.events, f"seq {seq} stored other events"
        assert postings.pop(seq, []) == outcome.postings, f"seq {seq} stored other postings"
    assert not events and not postings, "events or postings without their command"
    assert set(exchange.audit().values()) <= {0}, exchange.audit()

    last_seq = len(commands)
    orders = {e.order_id: e.seq for e in stored_events if type(e) is OrderAccepted}
    trades = {e.trade_id: e.seq for e in stored_events if type(e) is Trade}
    for ack in acks:
        assert ack["seq"] <= last_seq, f"acknowledged seq {ack['seq']} lost"
        if ack["order_id"] is not None:
            assert orders[ack["order_id"]] == ack["seq"]
        for trade_id in ack["trade_ids"]:
            assert trades[trade_id] == ack["seq"]
    return exchange


def test_sigkill_under_load_loses_nothing_acknowledged(database_url: str) -> None:
    rng = random.Random()
    for round_number in range(1, ROUNDS + 1):
        acks = run_and_kill(database_url, seed=round_number, rng=rng)
        rebuilt = check_store(database_url, acks)
        trades = sum(len(ack["trade_ids"]) for ack in acks)
        print(f"round {round_number}: {len(acks)} acks, {trades} trades, all there")
        assert trades > 0

    async def restart() -> str:
        async with MarketService.from_url(database_url) as market:
            return market.sequencer.exchange.digest()

    assert asyncio.run(restart()) == rebuilt.digest()
