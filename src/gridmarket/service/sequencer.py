"""The single writer: orders every command, applies it to the core, logs it, then acknowledges.

    sequencer = Sequencer(store, Exchange, clock=system_clock_ms)
    await sequencer.start()                 # migrate, replay the whole log, resume numbering
    outcome = await sequencer.submit(cmd)   # returns once cmd and its events are committed
    outcome = await sequencer.submit_applied(cmd)  # returns once applied, commit to follow
    await sequencer.stop()                  # refuse new commands, flush, acknowledge the rest

Contract:
- Every submitted command, a rejected one included, gets the next sequence number and a
  timestamp (the injected clock, epoch ms, made non-decreasing), is applied to the live
  `Exchange`, and is written with its events and postings in a batch: one transaction per
  batch (group commit), in one writer thread. `submit` returns only after that commit.
- Pipelining: while batch k is being committed, the loop applies the commands that arrive
  into batch k+1 in memory; batch k+1 is written, and its submitters answered, only after
  batch k's commit returned. So the live state may run ahead of the store by one batch,
  never the acknowledgements. Read state from committed outcomes (`subscribe`) or the store.
  When the writer is idle, only the first half of the queue goes into the next commit and
  the rest is applied while it runs: otherwise all submitters would wait on one batch and
  the loop and the writer would take turns instead of working at the same time.
- Limits: at most `max_queue_commands` commands wait (more raise `Overloaded`), a batch holds
  at most `max_batch_commands` commands.
- Failure: if a write fails, the live state is ahead of the store and can't be trusted. The
  sequencer stops: the submitters of every command not yet acknowledged get `StoreFailed`
  (its outcome is unknown: the failed commit may or may not have landed; client order ids
  make a retry safe), and so does every later submit. The process must restart: `start()` on
  a fresh sequencer replays the store, which holds exactly the committed batches. If the core
  raises (a bug), the commands before it are committed and acknowledged, the failing one is
  not logged, and the sequencer stops the same way with `EngineFailed`.
- `submit_applied` is `submit` without the wait for the commit: the outcome as soon as the
  command is applied in memory. The command is sequenced and logged exactly like the others;
  only its submitter is answered early. For commands whose effect no one relies on outside
  this process until a later command, submitted with `submit`, is acknowledged: the log is
  written in order, so that acknowledgement covers the earlier command too, and a crash before
  it loses both together (a consumption call's token commit, say, which only the call itself
  reads until its settlement). If the commit then fails, the sequencer stops as above and the
  later command gets `StoreFailed`.
- Committed outcomes are published in seq order to subscribers (see `feed`).

A submitter that is cancelled while waiting does not withdraw its command: once queued, a
command is sequenced and logged like any other.
"""

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import msgspec

from gridmarket.adapters.codec import encode_command, loggable
from gridmarket.adapters.store import LogEntry
from gridmarket.core.commands import Command
from gridmarket.core.exchange import Exchange, Outcome
from gridmarket.service.errors import (
    EngineFailed,
    InvalidCommand,
    NotRunning,
    Overloaded,
    ServiceError,
    StoreFailed,
)
from gridmarket.service.feed import Fanout, Subscription

log = logging.getLogger(__name__)

Clock = Callable[[], int]


def system_clock_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


class LogStore(Protocol):
    """What the sequencer needs of a store (`adapters.store.Store`, or a fake in tests)."""

    def migrate(self) -> None: ...

    def load_commands(self) -> Iterator[tuple[int, int, Command]]: ...

    def prepare_batch(self, entries: Sequence[LogEntry]) -> Any:
        """Encode a batch (runs on the event loop's thread: CPU only)."""

    def write_prepared(self, prepared: Any) -> None:
        """Commit a prepared batch in one transaction (runs in the writer thread)."""


@dataclass(frozen=True, slots=True)
class SequencerLimits:
    max_queue_commands: int = 100_000
    max_batch_commands: int = 5_000
    max_subscribers: int = 1_000
    max_subscriber_outcomes: int = 10_000


DEFAULT_LIMITS = SequencerLimits()


class _Pending(NamedTuple):
    command: Command
    kind: str
    payload: str
    future: asyncio.Future[Outcome]
    #: Answer once applied (`submit_applied`), not once committed.
    early: bool = False


class _Batch:
    """Commands applied in memory, waiting for their commit to be acknowledged."""

    __slots__ = ("entries", "futures", "outcomes")

    def __init__(self) -> None:
        self.entries: list[LogEntry] = []
        self.outcomes: list[Outcome] = []
        self.futures: list[asyncio.Future[Outcome]] = []


def _fail_futures(futures: Iterator[asyncio.Future[Outcome]], error: ServiceError) -> None:
    for future in futures:
        if not future.done():
            future.set_exception(error)


class Sequencer:
    def __init__(
        self,
        store: LogStore,
        exchange_factory: Callable[[], Exchange],
        clock: Clock = system_clock_ms,
        limits: SequencerLimits = DEFAULT_LIMITS,
    ) -> None:
        self._store = store
        self._exchange_factory = exchange_factory
        self._clock = clock
        self._limits = limits
        self._inbox: deque[_Pending] = deque()
        #: Applied in memory, being committed; applied in memory, waiting to be written.
        self._writing = _Batch()
        self._batch = _Batch()
        self._waiter: asyncio.Future[None] | None = None
        self._event_loop: asyncio.AbstractEventLoop | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._task: asyncio.Task[None] | None = None
        self._exchange: Exchange | None = None
        self._accepting = False
        self._stopping = False
        self._failure: ServiceError | None = None
        self._next_seq = 1
        self._last_ts_ms = 0
        self._fanout = Fanout(limits.max_subscribers)
        #: The highest sequence number whose batch is committed (and acknowledged).
        self.committed_seq = 0

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Migrate the store, rebuild the state from its log, and begin accepting commands."""
        assert self._task is None, "a sequencer starts once"
        loop = self._event_loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gridmarket-writer")
        self._exchange = await loop.run_in_executor(self._executor, self._recover)
        self._task = loop.create_task(self._run(), name="gridmarket-sequencer")
        self._accepting = True

    def _recover(self) -> Exchange:
        """Runs in the writer thread: replay every stored command into a fresh exchange."""
        self._store.migrate()
        exchange = self._exchange_factory()
        seq = ts_ms = 0
        for seq, ts_ms, command in self._store.load_commands():
            assert seq == self._next_seq, f"gap in the command log before seq {seq}"
            exchange.apply(command, seq, ts_ms)
            self._next_seq = seq + 1
        self._last_ts_ms = ts_ms
        self.committed_seq = seq
        log.info("replayed %d commands", seq)
        return exchange

    async def stop(self) -> None:
        """Refuse new commands, commit and acknowledge every queued one, end subscriptions."""
        self._accepting = False
        self._stopping = True
        self._wake()
        if self._task is not None:
            await self._task
        self._fanout.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    @property
    def exchange(self) -> Exchange:
        """The live state. It may be ahead of the store by the batch being committed."""
        assert self._exchange is not None, "not started"
        return self._exchange

    @property
    def failure(self) -> ServiceError | None:
        """Why the sequencer stopped, if a write or the core failed."""
        return self._failure

    # -- submitting ---------------------------------------------------------------------------

    async def submit(self, command: Command) -> Outcome:
        """Sequence, apply and commit `command`; its outcome once the commit has returned."""
        return await self._submit(command, early=False)

    async def submit_applied(self, command: Command) -> Outcome:
        """Sequence, apply and commit `command`; its outcome once applied (see the contract)."""
        return await self._submit(command, early=True)

    def _submit(self, command: Command, *, early: bool) -> asyncio.Future[Outcome]:
        if self._failure is not None:
            raise type(self._failure)(str(self._failure)) from self._failure
        if not self._accepting:
            raise NotRunning("the sequencer is not running")
        if len(self._inbox) >= self._limits.max_queue_commands:
            raise Overloaded(f"{self._limits.max_queue_commands} commands already queued")
        kind, payload = _encode(command)
        assert self._event_loop is not None  # set by start(), before accepting
        future: asyncio.Future[Outcome] = self._event_loop.create_future()
        self._inbox.append(_Pending(command, kind, payload, future, early))
        self._wake()
        return future

    def subscribe(self, max_pending_outcomes: int | None = None) -> Subscription:
        """A bounded feed of committed outcomes, from the next committed batch on."""
        limit = max_pending_outcomes or self._limits.max_subscriber_outcomes
        return self._fanout.subscribe(min(limit, self._limits.max_subscriber_outcomes))

    # -- the loop -----------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _sleep(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    async def _run(self) -> None:
        try:
            await self._loop()
        except asyncio.CancelledError:
            self._fail(NotRunning("the sequencer was cancelled"))
            raise
        except BaseException as exc:
            log.exception("the sequencer loop died")
            self._fail(EngineFailed(f"the sequencer loop died: {exc!r}"))
            raise

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        store = self._store
        max_batch = self._limits.max_batch_commands
        writing: asyncio.Future[None] | None = None
        while True:
            batch = self._batch
            if self._inbox and self._failure is None and len(batch.entries) < max_batch:
                room = max_batch - len(batch.entries)
                if writing is None and not batch.entries:
                    # The writer is idle: commit the first half at once and apply the rest
                    # while it runs, so that submitters fall into two alternating groups.
                    room = min(room, (len(self._inbox) + 1) // 2)
                self._apply(batch, room)
                if writing is not None:
                    continue
            if writing is None:
                if batch.entries:
                    prepared = store.prepare_batch(batch.entries)
                    writing = loop.run_in_executor(self._executor, store.write_prepared, prepared)
                    writing.add_done_callback(lambda _: self._wake())
                    self._writing, self._batch = batch, _Batch()
                    continue
                if self._failure is not None or (self._stopping and not self._inbox):
                    break
                await self._sleep()
                continue
            if not writing.done():
                # Arrivals are applied (above) while the commit runs, until the batch is full.
                await self._sleep()
                continue
            try:
                writing.result()
            except Exception as exc:
                log.exception("commit of seq %d..%d failed", *_seq_range(self._writing))
                self._fail(StoreFailed(f"commit failed: {exc!r}"))
                return
            writing = None
            written, self._writing = self._writing, _Batch()
            self._acknowledge(written)
        if self._failure is not None:
            self._fail(self._failure)

    def _apply(self, batch: _Batch, room: int) -> None:
        """Sequence and apply up to `room` queued commands into `batch` (synchronous)."""
        inbox = self._inbox
        exchange = self.exchange
        clock = self._clock
        seq = self._next_seq
        last_ts_ms = self._last_ts_ms
        entries, outcomes, futures = batch.entries, batch.outcomes, batch.futures
        for _ in range(min(room, len(inbox))):
            pending = inbox.popleft()
            ts_ms = clock()
            if ts_ms < last_ts_ms:
                ts_ms = last_ts_ms
            try:
                outcome = exchange.apply(pending.command, seq, ts_ms)
            except Exception as exc:
                log.exception("the core raised on seq %d: %r", seq, pending.command)
                error = EngineFailed(f"the core raised on {pending.kind}: {exc!r}")
                pending.future.set_exception(error)
                self._failure = error
                self._accepting = False
                break
            entries.append(
                LogEntry(
                    seq, ts_ms, pending.kind, pending.payload, outcome.events, outcome.postings
                )
            )
            if pending.early:
                pending.future.set_result(outcome)  # `_acknowledge` skips it: already done
            outcomes.append(outcome)
            futures.append(pending.future)
            seq += 1
            last_ts_ms = ts_ms
        self._next_seq = seq
        self._last_ts_ms = last_ts_ms

    def _acknowledge(self, batch: _Batch) -> None:
        for future, outcome in zip(batch.futures, batch.outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        self.committed_seq = batch.entries[-1].seq
        self._fanout.publish(batch.outcomes)

    def _fail(self, error: ServiceError) -> None:
        """Stop for good: fail every unacknowledged command with `error`."""
        if self._failure is None:
            self._failure = error
        self._accepting = False
        for batch in (self._writing, self._batch):
            _fail_futures(iter(batch.futures), error)
        inbox, self._inbox = self._inbox, deque()
        _fail_futures((pending.future for pending in inbox), error)
        self._fanout.close()


def _seq_range(batch: _Batch) -> tuple[int, int]:
    return batch.entries[0].seq, batch.entries[-1].seq


def _encode(command: Command) -> tuple[str, str]:
    """(kind, payload) of a command that decodes back identical, or `InvalidCommand`."""
    if not loggable(command):
        raise InvalidCommand(f"cannot log {command!r} faithfully: a field of an unloggable type")
    try:
        return encode_command(command)
    except (ValueError, msgspec.MsgspecError) as exc:  # e.g. a string with a lone surrogate
        raise InvalidCommand(f"cannot log {command!r}: {exc}") from exc
