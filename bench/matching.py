"""Matching throughput of the pure core, next to the simplest reference book, on the same events.

200,000 events from a fixed seed: 70% limit orders, 20% cancels, 10% market orders, around a
random-walking mid price, by 200 accounts on one instrument. The core runs with everything it
does in production (validation, holds and postings in the ledger, fees, trade and event
records); the reference book (bench/reference_book.py) does matching only. Both see the same
events in the same process. Throughput is timed over the whole run; per-event latency
(p50/p99) comes from a second, separately timed run.

    python bench/matching.py [--events N] [--seed S] [--no-compiled]

The core is measured twice: as the pure Python that `pip install -e .` runs, and compiled to
C with mypyc (the same source, built once into bench/.build/, keyed by a hash of the core's
files, about 40 s the first time), each in its own process beside its own reference run.
The last line printed is one JSON object with the figures.
"""

import argparse
import gc
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from gridmarket.core.commands import (
    CancelOrder,
    CreateAccount,
    Deposit,
    IssueUnits,
    PlaceOrder,
    SetSupplierCapacity,
    TransferIssuanceToTrading,
)
from gridmarket.core.exchange import Exchange, ExchangeConfig
from gridmarket.core.ids import AccountId, InstrumentId, OrderId
from reference_book import ReferenceBook

INSTRUMENT = InstrumentId("text-prime")
TICK = 1_000
ACCOUNTS = 200


def generate(events: int, seed: int) -> list[tuple[str, int, int, int | None, int, int]]:
    """(kind, account, side, price, quantity, target order index) tuples, reproducible."""
    rng = random.Random(seed)
    mid = 2_000  # ticks: 2.000 USD
    out: list[tuple[str, int, int, int | None, int, int]] = []
    placed = 0
    for _ in range(events):
        mid = max(1_500, min(2_500, mid + rng.choice((-1, 0, 0, 1))))
        roll = rng.random()
        account = rng.randrange(ACCOUNTS)
        side = rng.randrange(2)
        if roll < 0.70:
            offset = int(rng.expovariate(1 / 8))
            price_ticks = mid - offset - 1 if side == 0 else mid + offset + 1
            if rng.random() < 0.15:  # some limits cross the spread
                price_ticks = mid + 3 if side == 0 else mid - 3
            out.append(("limit", account, side, price_ticks * TICK, rng.randint(1, 20), 0))
            placed += 1
        elif roll < 0.90 and placed:
            out.append(
                (
                    "cancel",
                    account,
                    side,
                    None,
                    0,
                    rng.randrange(max(1, placed - 2_000), placed + 1),
                )
            )
        else:
            out.append(("market", account, side, None, rng.randint(1, 20), 0))
            placed += 1
    return out


def build_core(
    events: list[tuple[str, int, int, int | None, int, int]],
) -> tuple[Exchange, list[object], int]:
    """A funded exchange and the core commands for the events (setup is not timed)."""
    config = ExchangeConfig(max_open_orders_per_account=1_000_000)
    exchange = Exchange(config)
    seq = 0

    def setup(command: object) -> None:
        nonlocal seq
        seq += 1
        exchange.apply(command, seq, 0)  # type: ignore[arg-type]

    for i in range(ACCOUNTS):
        account = AccountId(f"a{i}")
        setup(CreateAccount(account, is_supplier=True))
        setup(Deposit(account, 10**15))
        setup(SetSupplierCapacity(account, INSTRUMENT, 10**12))
        setup(IssueUnits(account, INSTRUMENT, 100_000_000))
        setup(TransferIssuanceToTrading(account, INSTRUMENT, 100_000_000))
    first_seq = seq + 1
    commands: list[object] = []
    order_seqs: list[int] = []
    for kind, account, side, price, quantity, target in events:
        account_id = AccountId(f"a{account}")
        if kind == "cancel":
            target_seq = order_seqs[target - 1] if target - 1 < len(order_seqs) else 0
            commands.append(CancelOrder(account_id, OrderId(target_seq)))
        else:
            order_seqs.append(first_seq + len(commands))
            commands.append(
                PlaceOrder(
                    account_id, INSTRUMENT, "buy" if side == 0 else "sell", kind, quantity, price
                )  # type: ignore[arg-type]
            )
    return exchange, commands, first_seq


def run_core(
    events: list[tuple[str, int, int, int | None, int, int]], timed: bool
) -> tuple[float, list[int], int]:
    exchange, commands, first_seq = build_core(events)
    apply = exchange.apply
    latencies: list[int] = []
    trades = 0
    gc.collect()
    gc.freeze()  # the long-lived setup objects are not scanned again, as in the server
    start = time.perf_counter()
    if timed:
        clock = time.perf_counter_ns
        for offset, command in enumerate(commands):
            t0 = clock()
            apply(command, first_seq + offset, 1)  # type: ignore[arg-type]
            latencies.append(clock() - t0)
    else:
        for offset, command in enumerate(commands):
            outcome = apply(command, first_seq + offset, 1)  # type: ignore[arg-type]
            trades += len(outcome.events)
    elapsed = time.perf_counter() - start
    audit = exchange.audit()
    assert all(v == 0 for v in audit.values()), audit
    return elapsed, latencies, exchange.state.next_trade_id - 1


def run_reference(
    events: list[tuple[str, int, int, int | None, int, int]], timed: bool
) -> tuple[float, list[int], int]:
    book = ReferenceBook()
    ids: list[int] = []
    ops: list[tuple[int, int, int, int | None, int]] = []
    for kind, _account, side, price, quantity, target in events:
        if kind == "cancel":
            ops.append((1, ids[target - 1] if target - 1 < len(ids) else -1, 0, None, 0))
        else:
            ids.append(len(ops))
            ops.append((0, len(ops), side, price, quantity))
    latencies: list[int] = []
    gc.collect()
    gc.freeze()
    place, cancel = book.place, book.cancel
    start = time.perf_counter()
    if timed:
        clock = time.perf_counter_ns
        for op, order_id, side, price, quantity in ops:
            t0 = clock()
            if op:
                cancel(order_id)
            else:
                place(order_id, side, price, quantity)
            latencies.append(clock() - t0)
    else:
        for op, order_id, side, price, quantity in ops:
            if op:
                cancel(order_id)
            else:
                place(order_id, side, price, quantity)
    return time.perf_counter() - start, latencies, book.trades


def percentile_us(latencies_ns: list[int], fraction: float) -> float:
    ordered = sorted(latencies_ns)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1_000, 2)


ROOT = Path(__file__).resolve().parent.parent


def compiled_core() -> Path | None:
    """Build (or reuse) a mypyc-compiled copy of gridmarket.core; None if mypyc is missing."""
    mypyc = shutil.which("mypyc", path=str(Path(sys.executable).parent))
    if mypyc is None:
        return None
    sources = sorted((ROOT / "src" / "gridmarket" / "core").glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    build = ROOT / "bench" / ".build" / digest
    if not (build / "ok").exists():
        shutil.rmtree(build, ignore_errors=True)
        (build / "gridmarket" / "core").mkdir(parents=True)
        (build / "gridmarket" / "__init__.py").write_text("")
        for path in sources:
            shutil.copy(path, build / "gridmarket" / "core" / path.name)
        print("compiling the core with mypyc (about 40 s, once per change)...", file=sys.stderr)
        subprocess.run([mypyc, "gridmarket/core/"], cwd=build, check=True, capture_output=True)
        (build / "ok").write_text(digest)
    return build


def measure(events: list[tuple[str, int, int, int | None, int, int]]) -> dict[str, float]:
    core_s, _, core_trades = run_core(events, timed=False)
    ref_s, _, _ = run_reference(events, timed=False)
    _, core_lat, _ = run_core(events, timed=True)
    _, ref_lat, _ = run_reference(events, timed=True)
    return {
        "events_per_s": round(len(events) / core_s),
        "p50_us": percentile_us(core_lat, 0.50),
        "p99_us": percentile_us(core_lat, 0.99),
        "trades": core_trades,
        "reference_events_per_s": round(len(events) / ref_s),
        "reference_p50_us": percentile_us(ref_lat, 0.50),
        "reference_p99_us": percentile_us(ref_lat, 0.99),
        "ratio_to_reference": round(ref_s / core_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-compiled", action="store_true", help="skip the mypyc-compiled run")
    parser.add_argument("--measure-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    events = generate(args.events, args.seed)
    if args.measure_only:
        print(json.dumps(measure(events)))
        return
    pure = measure(events)
    compiled: dict[str, float] = {}
    build = None if args.no_compiled else compiled_core()
    if build is not None:
        env = dict(os.environ, PYTHONPATH=str(build))
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--measure-only",
                "--events",
                str(args.events),
                "--seed",
                str(args.seed),
            ],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        compiled = json.loads(out.stdout.strip().splitlines()[-1])
        assert compiled["trades"] == pure["trades"], (
            "the compiled core must trade exactly as the pure one"
        )
    for label, figures in (("pure Python", pure), ("mypyc-compiled", compiled)):
        if figures:
            f = figures
            print(
                f"core ({label}): {f['events_per_s']:>10,} events/s  p50 {f['p50_us']} us  "
                f"p99 {f['p99_us']} us  ({f['trades']} trades); reference in the same process: "
                f"{f['reference_events_per_s']:,} events/s  p50 {f['reference_p50_us']} us; "
                f"speed ratio {f['ratio_to_reference']}"
            )
    result = {"events": len(events), **pure}
    result.update({f"compiled_{k}": v for k, v in compiled.items()})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
