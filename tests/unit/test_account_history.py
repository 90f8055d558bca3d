"""The account history read model, fed a real exchange's outcomes: transfers of every kind
(explicit, auto-transfer on fill, sweep, issuance), issuances, consumption totals, replays."""

from gridmarket.core.commands import SettleCall, Sweep, TransferToConsumption, TransferToTrading
from gridmarket.core.exchange import Outcome
from gridmarket.core.ids import AccountId, CallId
from gridmarket.service.account_history import AccountHistory, TransferRecord

from .helpers import TP, UNIT, Market, variant


class Fed(Market):
    """A market whose every outcome also goes to an `AccountHistory`, as the feed would."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.history = AccountHistory()

    def apply(self, command: object) -> Outcome:
        outcome = super().apply(command)  # type: ignore[arg-type]
        self.history.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
        return outcome


def shape(records: list[TransferRecord]) -> list[tuple[str, str, int, str]]:
    return [(r.from_account, r.to_account, r.quantity_units, r.trigger) for r in records]


def test_issuance_and_issuance_to_trading_are_recorded() -> None:
    m = Fed()
    m.supplier("s1", 4)
    [issued] = m.history.issuances_of("s1")
    assert (issued.instrument_id, issued.quantity_units) == (TP, 4)
    assert issued.issuance_id == f"iss_{issued.seq}"
    [moved] = m.history.transfers_of("s1")
    assert shape([moved]) == [("issuance", "trading", 4, "issuance")]
    assert moved.transfer_id == f"tr_{moved.seq}_0" and moved.seq == issued.seq + 1


def test_auto_transfer_on_fill_is_one_record_per_buyer() -> None:
    m = Fed()
    m.supplier("s1", 2)
    m.supplier("s2", 3)
    m.ask("s1", 2, 1_000_000)
    m.ask("s2", 3, 1_000_000)
    m.account("c1", 10_000_000, auto_transfer=True)
    outcome = m.buy("c1", 5, 1_000_000)
    [record] = m.history.transfers_of("c1")
    # Two sellers, two lots: still one transfer of all five units.
    assert shape([record]) == [("trading", "consumption", 5, "auto_transfer")]
    assert (record.seq, record.position) == (outcome.seq, 0)


def test_an_explicit_transfer_is_not_also_an_auto_transfer() -> None:
    m = Fed()
    m.bought("c1", 3, 1_000_000)
    m.apply(TransferToConsumption(AccountId("c1"), TP, 2))
    assert shape(m.history.transfers_of("c1")) == [("trading", "consumption", 2, "transfer")]
    totals = m.history.consumption[("c1", TP)]
    assert totals.transferred_in_tokens == 2 * UNIT


def test_a_refused_transfer_records_nothing() -> None:
    m = Fed()
    m.bought("c1", 1, 1_000_000)
    m.apply(TransferToConsumption(AccountId("c1"), TP, 5))
    m.apply(TransferToTrading(AccountId("c1"), TP, 1))
    assert m.history.transfers_of("c1") == []


def test_a_sweep_records_each_account_with_its_own_position() -> None:
    m = Fed(variant(TP, sweep_enabled=True))
    m.bought("c1", 2, 1_000_000)
    m.bought("c2", 3, 1_000_000)
    outcome = m.apply(Sweep(TP))
    [c1] = m.history.transfers_of("c1")
    [c2] = m.history.transfers_of("c2")
    assert {c1.transfer_id, c2.transfer_id} == {f"tr_{outcome.seq}_0", f"tr_{outcome.seq}_1"}
    assert shape([c1, c2]) == [
        ("trading", "consumption", 2, "transfer"),
        ("trading", "consumption", 3, "transfer"),
    ]


def test_consumption_totals_follow_commitments_and_settlements() -> None:
    m = Fed()
    m.consume("c1", 2)
    m.commit("call-1", "c1", 500_000)
    m.settle("call-1", 300_000)
    totals = m.history.consumption[("c1", TP)]
    assert totals.committed_tokens == 500_000
    assert totals.delivered_tokens == 300_000
    assert totals.last_commitment_ms == totals.last_withdrawal_ms == m.now_ms
    assert m.history.touched_ms[("c1", TP)] == m.now_ms


def test_a_substitution_payment_changes_both_suppliers_usd() -> None:
    m = Fed()
    m.consume("c1", 1)  # funded by s1, which has the sale's USD
    m.supplier("s2")
    m.advance(60_000)
    m.commit("call-1", "c1", 500_000)
    s1_before = m.history.touched_ms[("s1", "usd")]
    m.advance(60_000)
    m.apply(SettleCall(CallId("call-1"), 400_000, supplier_id=AccountId("s2")))
    assert m.usd("s2")[0] == 400_000  # ceil(400,000 tokens × 1 USD per unit)
    assert m.history.touched_ms[("s1", "usd")] == m.history.touched_ms[("s2", "usd")] == m.now_ms
    assert s1_before < m.now_ms
    # The consumer's USD did not move: only its tokens did.
    assert m.history.touched_ms.get(("c1", "usd"), 0) < m.now_ms


def test_an_outcome_applied_twice_counts_once() -> None:
    m = Fed()
    m.supplier("s1", 1)
    outcome = m.apply(TransferToConsumption(AccountId("s1"), TP, 1))
    m.history.apply_outcome(outcome.seq, outcome.ts_ms, outcome.events)
    assert len(m.history.transfers_of("s1")) == 2  # issuance -> trading, trading -> consumption


def test_each_account_keeps_at_most_max_records() -> None:
    m = Fed()
    m.history = AccountHistory(max_records=2)
    m.supplier("s1")
    for _ in range(3):
        m.apply(Sweep(TP))  # refused: nothing recorded
    m.supplier("s1", 1)
    m.supplier("s1", 1)
    m.supplier("s1", 1)
    assert [r.quantity_units for r in m.history.transfers_of("s1")] == [1, 1]
    assert len(m.history.issuances_of("s1")) == 2
