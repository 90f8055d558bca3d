"""Per-account history read model: transfers, supply issuances and balance activity times.

Fed only by committed outcomes, exactly like `service.market_data` (whose start-up and
catch-up it follows): on start it subscribes to the sequencer's feed first, notes
`committed_seq` with no await in between, backfills everything up to it from the store
(`Store.load_events`, in a thread), then follows the feed; outcomes at or below the last
applied seq are skipped. A dropped subscriber resubscribes and catches up the same way. So the
history survives restarts, with no gap and no double.

What it records, per account (newest last, at most `max_records` of each kind per account;
older ones stay in the store's event log):

- transfers (`TransferRecord`), from the events of one command:
  - `UnitsTransferred` issuance -> trading (`trigger` "issuance") and trading -> consumption
    (`trigger` "transfer": an explicit transfer or a scheduled sweep; their events are the
    same, so they are not told apart);
  - auto-transfer on fill (`trigger` "auto_transfer"): a fill into consumption creates lots
    without a `UnitsTransferred`, so per (account, instrument) the lot tokens of the outcome
    beyond what its `UnitsTransferred` explain are one auto-transfer record;
- supply issuances (`IssuanceRecord`, from `UnitsIssued`);
- consumption totals per (account, instrument): tokens transferred in, committed to calls,
  delivered (billed) and forfeited, with the time of the last of each;
- the time of the last change per (account, asset) (`usd` or an instrument id; substitution
  payments and receivable settlements change USD too), the last trade per (account,
  instrument), and each account's creation time.

Ids are stable across restarts because they derive from the log: a transfer is
`tr_<seq>_<n>` (n counts the transfers of that command from 0), an issuance `iss_<seq>`.
Everything runs on the event loop; reads call `caught_up(committed_seq)` first, so a client
that was just acknowledged sees its own transfer (read-your-writes).
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from typing import NamedTuple, TypeVar

from gridmarket.core.events import (
    AccountCreated,
    CallSettled,
    LotCreated,
    OrderAccepted,
    OrderCancelled,
    OrderClosed,
    ReceivableSettled,
    SubstitutionSettled,
    TokensCommitted,
    TokensForfeited,
    Trade,
    UnitsIssued,
    UnitsTransferred,
    UsdMoved,
)
from gridmarket.core.units import TOKENS_PER_UNIT
from gridmarket.service.followed import FollowedModel

log = logging.getLogger(__name__)

DEFAULT_MAX_RECORDS = 10_000
USD_ASSET = "usd"
_R = TypeVar("_R")


class TransferRecord(NamedTuple):
    transfer_id: str
    seq: int
    #: Which transfer of its command this is (0, 1, ...): (seq, position) orders them all.
    position: int
    ts_ms: int
    account_id: str
    instrument_id: str
    from_account: str
    to_account: str
    quantity_units: int
    trigger: str


class IssuanceRecord(NamedTuple):
    issuance_id: str
    seq: int
    ts_ms: int
    account_id: str
    instrument_id: str
    quantity_units: int


class ConsumptionTotals:
    """One account's consumption activity in one instrument, in tokens."""

    __slots__ = (
        "committed_tokens",
        "delivered_tokens",
        "first_ms",
        "forfeited_tokens",
        "last_commitment_ms",
        "last_transfer_ms",
        "last_withdrawal_ms",
        "transferred_in_tokens",
    )

    def __init__(self, first_ms: int) -> None:
        self.first_ms = first_ms
        self.transferred_in_tokens = 0
        self.committed_tokens = 0
        self.delivered_tokens = 0
        self.forfeited_tokens = 0
        self.last_transfer_ms: int | None = None
        self.last_commitment_ms: int | None = None
        self.last_withdrawal_ms: int | None = None


class AccountHistory(FollowedModel):
    """Transfers, issuances and activity per account (see the module docstring)."""

    EVENTS = (
        AccountCreated,
        CallSettled,
        LotCreated,
        OrderAccepted,
        OrderCancelled,
        OrderClosed,
        ReceivableSettled,
        SubstitutionSettled,
        TokensCommitted,
        TokensForfeited,
        Trade,
        UnitsIssued,
        UnitsTransferred,
        UsdMoved,
    )
    LABEL = "account history"

    def __init__(self, *, max_records: int = DEFAULT_MAX_RECORDS) -> None:
        assert max_records > 0
        super().__init__()
        self._max_records = max_records
        self.transfers: dict[str, deque[TransferRecord]] = {}
        self.issuances: dict[str, deque[IssuanceRecord]] = {}
        self.consumption: dict[tuple[str, str], ConsumptionTotals] = {}
        #: (account, asset) -> when a balance in it last changed; asset `usd` or an instrument.
        self.touched_ms: dict[tuple[str, str], int] = {}
        self.last_trade_ms: dict[tuple[str, str], int] = {}
        self.created_ms: dict[str, int] = {}

    # -- feeding ------------------------------------------------------------------------------

    def apply_events(self, seq: int, ts_ms: int, events: Iterable[object]) -> None:
        lot_units: dict[tuple[str, str], int] = {}
        moved_units: dict[tuple[str, str], int] = {}
        count = 0
        touch = self.touched_ms
        where: tuple[str, str]
        for event in events:
            kind = type(event)
            if kind is Trade:
                assert isinstance(event, Trade)
                instrument = event.instrument_id
                for account in (event.buyer_account_id, event.seller_account_id):
                    touch[account, USD_ASSET] = touch[account, instrument] = ts_ms
                    self.last_trade_ms[account, instrument] = ts_ms
            elif kind is OrderAccepted or kind is OrderCancelled or kind is OrderClosed:
                assert isinstance(event, OrderAccepted | OrderCancelled | OrderClosed)
                touch[event.account_id, USD_ASSET] = ts_ms
                touch[event.account_id, event.instrument_id] = ts_ms
            elif kind is LotCreated:
                assert isinstance(event, LotCreated)
                where = (event.account_id, event.instrument_id)
                lot_units[where] = lot_units.get(where, 0) + event.tokens // TOKENS_PER_UNIT
                totals = self._consumption(where, ts_ms)
                totals.transferred_in_tokens += event.tokens
                totals.last_transfer_ms = ts_ms
                touch[where] = ts_ms
            elif kind is UnitsTransferred:
                assert isinstance(event, UnitsTransferred)
                if event.quantity_units <= 0:
                    continue  # a sweep with nothing to move
                where = (event.account_id, event.instrument_id)
                touch[where] = ts_ms
                if event.to_account == "consumption":
                    moved_units[where] = moved_units.get(where, 0) + event.quantity_units
                trigger = "issuance" if event.from_account == "issuance" else "transfer"
                self._add_transfer(
                    seq, ts_ms, count, where, event.from_account, event.to_account,
                    event.quantity_units, trigger,
                )  # fmt: skip
                count += 1
            elif kind is UnitsIssued:
                assert isinstance(event, UnitsIssued)
                touch[event.account_id, event.instrument_id] = ts_ms
                record = IssuanceRecord(
                    f"iss_{seq}",
                    seq,
                    ts_ms,
                    event.account_id,
                    event.instrument_id,
                    event.quantity_units,
                )
                self._append(self.issuances, event.account_id, record)
            elif kind is TokensCommitted:
                assert isinstance(event, TokensCommitted)
                where = (event.account_id, event.instrument_id)
                totals = self._consumption(where, ts_ms)
                totals.committed_tokens += event.tokens
                totals.last_commitment_ms = touch[where] = ts_ms
            elif kind is CallSettled:
                assert isinstance(event, CallSettled)
                where = (event.account_id, event.instrument_id)
                totals = self._consumption(where, ts_ms)
                totals.delivered_tokens += event.billed_tokens
                totals.last_withdrawal_ms = touch[where] = ts_ms
            elif kind is TokensForfeited:
                assert isinstance(event, TokensForfeited)
                where = (event.account_id, event.instrument_id)
                totals = self._consumption(where, ts_ms)
                totals.forfeited_tokens += event.tokens
                totals.last_withdrawal_ms = touch[where] = ts_ms
            elif kind is UsdMoved or kind is ReceivableSettled:
                assert isinstance(event, UsdMoved | ReceivableSettled)
                touch[event.account_id, USD_ASSET] = ts_ms
            elif kind is SubstitutionSettled:
                assert isinstance(event, SubstitutionSettled)
                if event.amount_usd_micros:  # the lot's supplier paid its substitute
                    touch[event.supplier_id, USD_ASSET] = ts_ms
                    touch[event.substitute_id, USD_ASSET] = ts_ms
            elif kind is AccountCreated:
                assert isinstance(event, AccountCreated)
                self.created_ms.setdefault(event.account_id, ts_ms)
        for where, units in lot_units.items():
            auto_units = units - moved_units.get(where, 0)
            if auto_units > 0:
                self._add_transfer(
                    seq, ts_ms, count, where, "trading", "consumption", auto_units,
                    "auto_transfer",
                )  # fmt: skip
                count += 1

    def _consumption(self, where: tuple[str, str], ts_ms: int) -> ConsumptionTotals:
        totals = self.consumption.get(where)
        if totals is None:
            totals = self.consumption[where] = ConsumptionTotals(ts_ms)
        return totals

    def _add_transfer(
        self,
        seq: int,
        ts_ms: int,
        index: int,
        where: tuple[str, str],
        from_account: str,
        to_account: str,
        quantity_units: int,
        trigger: str,
    ) -> None:
        account_id, instrument_id = where
        record = TransferRecord(
            f"tr_{seq}_{index}",
            seq,
            index,
            ts_ms,
            account_id,
            instrument_id,
            from_account,
            to_account,
            quantity_units,
            trigger,
        )
        self._append(self.transfers, account_id, record)

    def _append(self, table: dict[str, deque[_R]], account_id: str, record: _R) -> None:
        records = table.get(account_id)
        if records is None:
            records = table[account_id] = deque(maxlen=self._max_records)
        records.append(record)

    # -- reading ------------------------------------------------------------------------------

    def transfers_of(self, account_id: str) -> list[TransferRecord]:
        """The account's retained transfers, oldest first."""
        return list(self.transfers.get(account_id, ()))

    def issuances_of(self, account_id: str) -> list[IssuanceRecord]:
        """The account's retained issuances, oldest first."""
        return list(self.issuances.get(account_id, ()))
