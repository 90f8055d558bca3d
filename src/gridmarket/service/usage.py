"""The usage read model: a receipt per settled call, the calls in flight, daily totals.

Fed only by committed outcomes, exactly like `service.market_data` and `service.own_trades`
(see their docstrings): on start it subscribes to the sequencer's feed first, notes
`committed_seq` with no await in between, replays every event up to it from the store
(`Store.load_events`, in a thread), then follows the feed, skipping outcomes at or below the
last applied seq; a subscriber the feed drops catches up from the store the same way. So
receipts, totals and metrics are the same after a restart as before it. Reads wait for
`caught_up(committed_seq)` first (read-your-writes).

What it holds:

- **Receipts** (`Receipt`), one per `CallSettled`, keyed by the settle command's seq (unique
  and ascending, so it is the list's paging key). A receipt carries what `SettleCall` reported
  (request id, supplier, model, prompt/completion tokens, TTFT, duration, status, whether
  the usage was estimated), what the core did (used, billed, released, unbilled tokens, the
  lots billed) and what this model adds: each billed lot's supplier, price and funding trades
  (from its `LotCreated`), the USD value of the billed tokens, the tokens per second, and
  the time the call's tokens were committed. When someone other than a lot's supplier
  (another supplier, or the operator's own endpoint) delivered its tokens, the receipt lists
  the substitutions (`Substitution`: lot, its supplier, the substitute, tokens, the micro-USD
  the supplier paid the substitute and the part the operator paid for it), from the
  `SubstitutionSettled` events that follow the `CallSettled` in the same command.
- **Calls in flight** (`InFlight`): `TokensCommitted` not yet settled. `TokensCommitted`
  does not name the consumption key, so an in-flight call has none (its receipt will).
- **Daily totals** (`Totals`) per account, UTC day, key and instrument; and **lifetime
  totals** per (instrument, key), per (instrument, status) and latency histograms per
  supplier, for /metrics (`api.metrics`).

Arithmetic (integers only). A billed lot's value is `ceil(tokens × price_usd_micros ÷
1,000,000)` micro-USD (a lot's price is per unit of 1,000,000 tokens), rounded up per lot as
DESIGN §9 values a lot's tokens, and the receipt's `billed_usd_micros` is the sum over its
lots, so it is never below what the tokens cost. Tokens per second is `completion_tokens ×
1000 // generation_ms`, where generation is `duration_ms - ttft_ms` (the time spent
streaming after the first token) or the whole duration when TTFT is unknown or not below it;
None when there is no duration or no completion token.

Bounds (STYLE: a limit on everything): the newest `max_receipts_per_account` receipts of each
account (10,000 by default; over that, its oldest tenth is dropped: older receipts stay in the
store's event log, and daily totals still count them); daily rows per account at most
`max_daily_rows_per_account` (oldest days dropped first); lot details only for lots with
tokens left (a lot leaves the cache once delivered or forfeited to zero); calls in flight as
many as the core holds. Everything runs on the event loop only, so a read sees whole outcomes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from gridmarket.core.events import (
    CallSettled,
    LotCreated,
    SubstitutionSettled,
    TokensCommitted,
    TokensForfeited,
)
from gridmarket.core.units import TOKENS_PER_UNIT, ceil_div
from gridmarket.service.followed import FollowedModel

log = logging.getLogger(__name__)

DEFAULT_MAX_RECEIPTS_PER_ACCOUNT = 10_000
DEFAULT_MAX_DAILY_ROWS_PER_ACCOUNT = 20_000
DAY_MS = 86_400_000
#: Upper bounds (ms) of the latency histogram buckets exposed on /metrics.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000)
STATUSES = ("ok", "failed", "cancelled")


class BilledLot(NamedTuple):
    """Tokens of one lot billed to a call, with where the lot came from."""

    lot_id: int
    tokens: int
    supplier_id: str | None
    price_usd_micros: int | None
    trade_ids: tuple[int, ...]
    #: ceil(tokens × price ÷ 1,000,000); None when the lot is unknown to this model.
    value_usd_micros: int | None


class Substitution(NamedTuple):
    """Tokens of one lot delivered by someone other than its supplier, and what that cost."""

    lot_id: int
    supplier_id: str
    substitute_id: str
    tokens: int
    amount_usd_micros: int
    #: The part the operator paid because the supplier's USD fell short (owed to it).
    receivable_usd_micros: int


class Receipt(NamedTuple):
    seq: int
    settled_ms: int
    #: When the call's tokens were committed (None if the commit predates the log read).
    started_ms: int | None
    call_id: str
    request_id: str
    account_id: str
    key_id: str | None
    instrument_id: str
    supplier_id: str | None
    model: str | None
    prompt_tokens: int
    completion_tokens: int
    committed_tokens: int | None
    used_tokens: int
    billed_tokens: int
    released_tokens: int
    unbilled_tokens: int
    ttft_ms: int | None
    duration_ms: int | None
    tokens_per_second: int | None
    status: str
    usage_estimated: bool
    billed_lots: tuple[BilledLot, ...]
    billed_usd_micros: int
    substitutions: tuple[Substitution, ...] = ()


class InFlight(NamedTuple):
    seq: int
    started_ms: int
    call_id: str
    account_id: str
    instrument_id: str
    committed_tokens: int
    key_id: str | None = None


class Totals:
    """Counts over a set of receipts (calls by status; tokens; micro-USD billed)."""

    __slots__ = (
        "billed_tokens",
        "billed_usd_micros",
        "calls",
        "cancelled_calls",
        "completion_tokens",
        "failed_calls",
        "ok_calls",
        "prompt_tokens",
        "unbilled_tokens",
        "used_tokens",
    )

    def __init__(self) -> None:
        self.calls = self.ok_calls = self.failed_calls = self.cancelled_calls = 0
        self.prompt_tokens = self.completion_tokens = self.used_tokens = 0
        self.billed_tokens = self.unbilled_tokens = self.billed_usd_micros = 0

    def add(self, receipt: Receipt) -> None:
        self.calls += 1
        if receipt.status == "ok":
            self.ok_calls += 1
        elif receipt.status == "failed":
            self.failed_calls += 1
        else:
            self.cancelled_calls += 1
        self.prompt_tokens += receipt.prompt_tokens
        self.completion_tokens += receipt.completion_tokens
        self.used_tokens += receipt.used_tokens
        self.billed_tokens += receipt.billed_tokens
        self.unbilled_tokens += receipt.unbilled_tokens
        self.billed_usd_micros += receipt.billed_usd_micros


class DailyKey(NamedTuple):
    #: Days since 1970-01-01 (UTC).
    day: int
    key_id: str | None
    instrument_id: str


class Histogram:
    """Counts of integer-ms observations per bucket of `LATENCY_BUCKETS_MS` (+Inf last)."""

    __slots__ = ("counts", "sum_ms")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS_MS) + 1)
        self.sum_ms = 0

    def observe(self, ms: int) -> None:
        i = 0
        while i < len(LATENCY_BUCKETS_MS) and ms > LATENCY_BUCKETS_MS[i]:
            i += 1
        self.counts[i] += 1
        self.sum_ms += ms


class _Lot:
    __slots__ = ("price_usd_micros", "remaining_tokens", "supplier_id", "trade_ids")

    def __init__(self, event: LotCreated) -> None:
        self.supplier_id: str = event.supplier_id
        self.price_usd_micros = event.price_usd_micros
        self.trade_ids: tuple[int, ...] = tuple(event.trade_ids)
        self.remaining_tokens = event.tokens


class _Account:
    __slots__ = ("by_request", "by_seq", "daily", "seqs")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.by_seq: dict[int, Receipt] = {}
        self.by_request: dict[str, int] = {}
        self.daily: dict[DailyKey, Totals] = {}


def lot_value_usd_micros(tokens: int, price_usd_micros: int) -> int:
    """What `tokens` of a lot are worth, rounded up to the micro-USD."""
    return ceil_div(tokens * price_usd_micros, TOKENS_PER_UNIT)


def tokens_per_second(
    completion_tokens: int, ttft_ms: int | None, duration_ms: int | None
) -> int | None:
    """Completion tokens per second of generation (module docstring), integer arithmetic."""
    if duration_ms is None or completion_tokens <= 0:
        return None
    generation_ms = duration_ms
    if ttft_ms is not None and ttft_ms < duration_ms:
        generation_ms = duration_ms - ttft_ms
    if generation_ms <= 0:
        return None
    return completion_tokens * 1_000 // generation_ms


class Usage(FollowedModel):
    """Receipts, calls in flight and totals, from committed outcomes (module docstring)."""

    EVENTS = (LotCreated, TokensCommitted, CallSettled, SubstitutionSettled, TokensForfeited)
    LABEL = "usage"

    def __init__(
        self,
        *,
        max_receipts_per_account: int = DEFAULT_MAX_RECEIPTS_PER_ACCOUNT,
        max_daily_rows_per_account: int = DEFAULT_MAX_DAILY_ROWS_PER_ACCOUNT,
    ) -> None:
        assert max_receipts_per_account >= 10 and max_daily_rows_per_account >= 1
        super().__init__()
        self._max_receipts = max_receipts_per_account
        self._max_daily = max_daily_rows_per_account
        self._accounts: dict[str, _Account] = {}
        self._lots: dict[int, _Lot] = {}
        self.in_flight: dict[str, InFlight] = {}
        #: Lifetime totals for /metrics: per (instrument, key id or None).
        self.totals: dict[tuple[str, str | None], Totals] = {}
        #: Lifetime calls per (instrument, status).
        self.calls_by_status: dict[tuple[str, str], int] = {}
        #: Latency histograms per supplier ("" when none was reported).
        self.ttft_ms: dict[str, Histogram] = {}
        self.duration_ms: dict[str, Histogram] = {}

    # -- feeding ------------------------------------------------------------------------------

    def apply_event(self, event: object) -> None:
        kind = type(event)
        if kind is LotCreated:
            assert isinstance(event, LotCreated)
            self._lots[event.lot_id] = _Lot(event)
        elif kind is TokensCommitted:
            assert isinstance(event, TokensCommitted)
            self.in_flight[event.call_id] = InFlight(
                event.seq,
                event.ts_ms,
                event.call_id,
                event.account_id,
                event.instrument_id,
                event.tokens,
                event.key_id,
            )
        elif kind is CallSettled:
            assert isinstance(event, CallSettled)
            self._settle(event)
        elif kind is SubstitutionSettled:
            assert isinstance(event, SubstitutionSettled)
            self._substituted(event)
        elif kind is TokensForfeited:
            assert isinstance(event, TokensForfeited)
            self._spend_lot(event.lot_id, event.tokens)

    def _substituted(self, event: SubstitutionSettled) -> None:
        """Add a substitution to its receipt (made by the `CallSettled` of the same seq)."""
        account = self._accounts.get(event.account_id)
        receipt = None if account is None else account.by_seq.get(event.seq)
        if account is None or receipt is None:
            return  # never expected: the receipt comes first, in the same command
        substitution = Substitution(
            event.lot_id,
            event.supplier_id,
            event.substitute_id,
            event.tokens,
            event.amount_usd_micros,
            event.receivable_usd_micros,
        )
        account.by_seq[event.seq] = receipt._replace(
            substitutions=(*receipt.substitutions, substitution)
        )

    def _spend_lot(self, lot_id: int, tokens: int) -> None:
        lot = self._lots.get(lot_id)
        if lot is not None:
            lot.remaining_tokens -= tokens
            if lot.remaining_tokens <= 0:
                del self._lots[lot_id]

    def _settle(self, event: CallSettled) -> None:
        started = self.in_flight.pop(event.call_id, None)
        billed: list[BilledLot] = []
        for lot_id, tokens in event.billed_lots:
            lot = self._lots.get(lot_id)
            if lot is None:  # never expected: every lot's creation is in the log
                billed.append(BilledLot(lot_id, tokens, None, None, (), None))
            else:
                value = lot_value_usd_micros(tokens, lot.price_usd_micros)
                billed.append(
                    BilledLot(
                        lot_id, tokens, lot.supplier_id, lot.price_usd_micros, lot.trade_ids, value
                    )
                )
                self._spend_lot(lot_id, tokens)
        receipt = Receipt(
            seq=event.seq,
            settled_ms=event.ts_ms,
            started_ms=None if started is None else started.started_ms,
            call_id=event.call_id,
            request_id=event.request_id,
            account_id=event.account_id,
            key_id=event.key_id,
            instrument_id=event.instrument_id,
            supplier_id=event.supplier_id,
            model=event.model,
            prompt_tokens=event.prompt_tokens,
            completion_tokens=event.completion_tokens,
            committed_tokens=None if started is None else started.committed_tokens,
            used_tokens=event.used_tokens,
            billed_tokens=event.billed_tokens,
            released_tokens=event.released_tokens,
            unbilled_tokens=event.unbilled_tokens,
            ttft_ms=event.ttft_ms,
            duration_ms=event.duration_ms,
            tokens_per_second=tokens_per_second(
                event.completion_tokens, event.ttft_ms, event.duration_ms
            ),
            status=event.status,
            usage_estimated=event.usage_estimated,
            billed_lots=tuple(billed),
            billed_usd_micros=sum(b.value_usd_micros or 0 for b in billed),
        )
        self._record(receipt)

    def _record(self, receipt: Receipt) -> None:
        account = self._accounts.get(receipt.account_id)
        if account is None:
            account = self._accounts[receipt.account_id] = _Account()
        account.seqs.append(receipt.seq)
        account.by_seq[receipt.seq] = receipt
        if receipt.request_id:
            account.by_request[receipt.request_id] = receipt.seq
        if len(account.seqs) > self._max_receipts:
            dropped = len(account.seqs) - self._max_receipts + self._max_receipts // 10
            for seq in account.seqs[:dropped]:
                old = account.by_seq.pop(seq)
                if account.by_request.get(old.request_id) == seq:
                    del account.by_request[old.request_id]
            del account.seqs[:dropped]
        day = DailyKey(receipt.settled_ms // DAY_MS, receipt.key_id, receipt.instrument_id)
        totals = account.daily.get(day)
        if totals is None:
            totals = account.daily[day] = Totals()
            if len(account.daily) > self._max_daily:  # drop a row of the oldest day
                del account.daily[min(account.daily, key=lambda k: k.day)]
        totals.add(receipt)
        lifetime_key = (receipt.instrument_id, receipt.key_id)
        lifetime = self.totals.get(lifetime_key)
        if lifetime is None:
            lifetime = self.totals[lifetime_key] = Totals()
        lifetime.add(receipt)
        status_key = (receipt.instrument_id, receipt.status)
        self.calls_by_status[status_key] = self.calls_by_status.get(status_key, 0) + 1
        supplier = receipt.supplier_id or ""
        if receipt.ttft_ms is not None:
            self.ttft_ms.setdefault(supplier, Histogram()).observe(receipt.ttft_ms)
        if receipt.duration_ms is not None:
            self.duration_ms.setdefault(supplier, Histogram()).observe(receipt.duration_ms)

    def apply_events(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        for event in events:
            self.apply_event(event)

    # -- reading ------------------------------------------------------------------------------

    def receipt_seqs(self, account_id: str) -> list[int]:
        """The account's retained receipt keys, ascending (do not modify)."""
        account = self._accounts.get(account_id)
        return [] if account is None else account.seqs

    def receipt(self, account_id: str, seq: int) -> Receipt | None:
        account = self._accounts.get(account_id)
        return None if account is None else account.by_seq.get(seq)

    def receipt_by_request(self, account_id: str, request_id: str) -> Receipt | None:
        """The newest retained receipt of `request_id`, or of the call id `request_id`."""
        account = self._accounts.get(account_id)
        if account is None:
            return None
        seq = account.by_request.get(request_id)
        if seq is not None:
            return account.by_seq[seq]
        for seq in reversed(account.seqs):
            if account.by_seq[seq].call_id == request_id:
                return account.by_seq[seq]
        return None

    def daily(self, account_id: str) -> list[tuple[DailyKey, Totals]]:
        """The account's daily rows, newest day first, then by instrument and key."""
        account = self._accounts.get(account_id)
        if account is None:
            return []
        return sorted(
            account.daily.items(),
            key=lambda row: (-row[0].day, row[0].instrument_id, row[0].key_id or ""),
        )

    def key_ids(self, account_id: str) -> set[str]:
        """Keys the account's daily rows name (its receipts, old and new)."""
        account = self._accounts.get(account_id)
        if account is None:
            return set()
        return {k.key_id for k in account.daily if k.key_id is not None}

    def in_flight_of(self, account_id: str) -> list[InFlight]:
        return [c for c in self.in_flight.values() if c.account_id == account_id]

    def in_flight_by_instrument(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.in_flight.values():
            counts[call.instrument_id] = counts.get(call.instrument_id, 0) + 1
        return counts
