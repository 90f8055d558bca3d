"""Replay determinism: the command log alone rebuilds the market, event for event.

Two fresh exchanges fed the same log (one with the commands as generated, one with each
command round-tripped through JSON, as the store keeps them) produce identical outcomes
(events and postings) at every step and identical state digests; and a third exchange
rebuilt from a prefix of the log, then fed the rest, ends in the same state (recovery after
a crash at any point). The digest is shown to tell states apart (else these checks would be
vacuous), and a replay in fresh interpreters with other hash seeds gives the same digest
(the sequencer rebuilds in a new process after a restart).
"""

import copy
import json
import os
import subprocess
import sys
from dataclasses import asdict, fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridmarket.core.commands import COMMAND_TYPES, Command, Deposit
from gridmarket.core.exchange import Exchange
from gridmarket.core.ids import AccountId
from gridmarket.core.state import ExchangeConfig

from . import strategies as gen
from .profiles import PROFILE, TIMEOUT_S

pytestmark = pytest.mark.timeout(TIMEOUT_S)

Log = list[tuple[Command, int, int]]


@st.composite
def scripts(draw: st.DrawFn) -> tuple[ExchangeConfig, Log, int]:
    """A market configuration, a command log (seq strictly rising, clock never going back)
    that starts from a funded, quoted market, and a crash point inside it."""
    config = draw(gen.configs())
    ticks = {i: config.instruments[i].price_tick_usd_micros for i in gen.INSTRUMENTS}
    commands = gen.setup_commands(config) + draw(
        st.lists(gen.commands(ticks), max_size=PROFILE.stateful_step_count)
    )
    log: Log = []
    seq, ts = 0, 1_000_000
    for command in commands:
        seq += draw(st.sampled_from((1, 1, 1, 2, 7)), label="seq gap")
        ts += draw(gen.clock_steps, label="clock")
        log.append((command, seq, ts))
    crash_at = draw(st.integers(0, len(log)), label="crash after")
    return config, log, crash_at


def from_storage(command: Command) -> Command:
    """The command as the store gives it back: its type name and fields through JSON."""
    stored = json.dumps([type(command).__name__, command._asdict()])
    name, values = json.loads(stored)
    return COMMAND_TYPES[name](**values)


@PROFILE
@given(script=scripts())
def test_replaying_the_log_gives_identical_events_postings_and_state(
    script: tuple[ExchangeConfig, Log, int],
) -> None:
    config, log, crash_at = script
    live, replayed = Exchange(config), Exchange(config)
    for command, seq, ts in log:
        outcome = live.apply(command, seq, ts)
        again = replayed.apply(from_storage(command), seq, ts)
        assert again == outcome, (seq, command)
    assert replayed.digest() == live.digest()

    recovered = Exchange(config)
    for command, seq, ts in log[:crash_at]:
        recovered.apply(from_storage(command), seq, ts)
    for command, seq, ts in log[crash_at:]:
        recovered.apply(command, seq, ts)
    assert recovered.digest() == live.digest()


@PROFILE
@given(script=scripts())
def test_the_digest_tells_different_states_apart(
    script: tuple[ExchangeConfig, Log, int],
) -> None:
    """A digest blind to state would make the replay checks vacuous. At one point of the log,
    fork the market: one copy applies the command, the other a command that is surely
    refused (same seq and clock). If the command moved anything, the digests differ."""
    config, log, fork_at = script
    exchange = Exchange(config)
    for command, seq, ts in log[:fork_at]:
        exchange.apply(command, seq, ts)
    if fork_at == len(log):
        return
    command, seq, ts = log[fork_at]
    other = copy.deepcopy(exchange)
    outcome = exchange.apply(command, seq, ts)
    refused = other.apply(Deposit(AccountId("nobody"), 1), seq, ts)
    assert refused.postings == []
    if outcome.postings:
        assert exchange.digest() != other.digest(), (seq, command)


_REPLAY_ELSEWHERE = """
import json, sys
from gridmarket.core.commands import COMMAND_TYPES
from gridmarket.core.exchange import Exchange
from gridmarket.core.instruments import Guarantees, Instrument
from gridmarket.core.state import ExchangeConfig

stored = json.load(sys.stdin)
instruments = {
    i: Instrument(**{**fields, "guarantees": Guarantees(**fields["guarantees"])})
    for i, fields in stored["instruments"].items()
}
exchange = Exchange(ExchangeConfig(instruments=instruments, **stored["limits"]))
for name, fields, seq, ts in stored["log"]:
    exchange.apply(COMMAND_TYPES[name](**fields), seq, ts)
print(exchange.digest())
"""


@settings(PROFILE, max_examples=min(PROFILE.max_examples, 4))
@given(script=scripts())
def test_replay_in_a_new_process_gives_the_same_state(
    script: tuple[ExchangeConfig, Log, int],
) -> None:
    """The sequencer rebuilds from the store after a restart, in a new process: nothing may
    depend on the process (string hash seeds, ids of objects). Replay the stored log in two
    fresh interpreters with different PYTHONHASHSEEDs and compare digests with this one."""
    config, log, _ = script
    live = Exchange(config)
    for command, seq, ts in log:
        live.apply(command, seq, ts)
    stored = json.dumps(
        {
            "instruments": {
                i: {
                    f.name: value
                    for f in fields(instrument)
                    if f.init  # derived fields are recomputed by the constructor
                    for value in [asdict(instrument)[f.name]]
                }
                for i, instrument in config.instruments.items()
            },
            "limits": {
                f.name: getattr(config, f.name) for f in fields(config) if f.name != "instruments"
            },
            "log": [[type(cmd).__name__, cmd._asdict(), seq, ts] for cmd, seq, ts in log],
        }
    )
    for hash_seed in ("0", "12345"):
        result = subprocess.run(
            [sys.executable, "-c", _REPLAY_ELSEWHERE],
            input=stored,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": hash_seed},
            check=True,
            timeout=60,
        )
        assert result.stdout.strip() == live.digest(), hash_seed
