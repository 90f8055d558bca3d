"""The ledger audit, offline: rebuild the market from the store and check that it balances.

Three checks, each of which must hold for a store written by the sequencer:
1. every asset sums to zero over all ledger accounts (contra accounts included);
2. no account other than a contra account is negative;
3. the balances rebuilt by replaying the command log equal the balances obtained by summing
   the stored postings, so the journal and the log tell the same story.
It reads only; it works beside a running SQLite server (WAL readers do not block the writer).
"""

from dataclasses import dataclass

from gridmarket.adapters.store import Store
from gridmarket.core.exchange import Exchange, ExchangeConfig


@dataclass(frozen=True, slots=True)
class AuditReport:
    last_seq: int
    sums_by_asset: dict[str, int]
    negative_accounts: list[str]
    #: Ledger accounts whose replayed balance differs from the sum of its stored postings.
    journal_mismatches: dict[str, tuple[int, int]]

    @property
    def balanced(self) -> bool:
        return (
            all(total == 0 for total in self.sums_by_asset.values())
            and not self.negative_accounts
            and not self.journal_mismatches
        )


def audit_store(database_url: str, config: ExchangeConfig | None = None) -> AuditReport:
    store = Store(database_url)
    try:
        exchange = Exchange(config or ExchangeConfig())
        for seq, ts_ms, command in store.load_commands():
            exchange.apply(command, seq, ts_ms)
        from_journal: dict[str, int] = {}
        for _seq, posting in store.load_postings():
            from_journal[posting.debit] = from_journal.get(posting.debit, 0) - posting.amount
            from_journal[posting.credit] = from_journal.get(posting.credit, 0) + posting.amount
    finally:
        store.close()
    replayed = exchange.state.ledger.balances
    mismatches = {
        key: (replayed.get(key, 0), from_journal.get(key, 0))
        for key in replayed.keys() | from_journal.keys()
        if replayed.get(key, 0) != from_journal.get(key, 0)
    }
    return AuditReport(
        last_seq=exchange.last_seq,
        sums_by_asset=exchange.audit(),
        negative_accounts=exchange.state.ledger.negative_accounts(),
        journal_mismatches=mismatches,
    )
