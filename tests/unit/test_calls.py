"""Calls commit tokens soonest-expiring lot first (skipping expired lots), settle once (used part
delivered, rest released, overage from available lots, the uncoverable rest flagged unbilled),
and expiry forfeits only uncommitted tokens, the rest of an expired lot when its call settles."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.commands import CommitTokens, ExpireLots, SettleCall, TransferToConsumption
from gridmarket.core.events import CallSettled, Rejected, TokensCommitted, TokensForfeited
from gridmarket.core.ids import AccountId, CallId, InstrumentId, LotId

from .helpers import HOUR_MS, TP, Market, kinds, of_type, variant

C1 = AccountId("c1")
FORFEITED = "operator/text-prime/forfeited"


def _three_lots(window_ms: int | None = 4 * HOUR_MS) -> Market:
    """c1 holds lot 1 (1M tokens, made at T), lot 2 (1M, T+1h), lot 3 (2M, T+2h); now is T+2h."""
    m = Market(variant(TP, consumption_window_ms=window_ms))
    m.bought("c1", 4, 1_000_000)
    m.apply(TransferToConsumption(C1, TP, 1))
    m.advance(HOUR_MS)
    m.apply(TransferToConsumption(C1, TP, 1))
    m.advance(HOUR_MS)
    m.apply(TransferToConsumption(C1, TP, 2))
    return m


class Commit(NamedTuple):
    name: str
    #: Time passed after the lots were made (now = T+2h + this).
    advance_ms: int
    tokens: Any
    #: (lot id, tokens) drawn, or the rejection reason.
    allocations: list[tuple[int, int]] | None
    reason: str | None = None


# Lot 1 expires at T+4h, lot 2 at T+5h, lot 3 at T+6h.
COMMITS = [
    Commit("soonest_expiring_first", 0, 600_000, [(1, 600_000)]),
    Commit("spills_into_the_next", 0, 1_500_000, [(1, 1_000_000), (2, 500_000)]),
    Commit("everything", 0, 4_000_000, [(1, 1_000_000), (2, 1_000_000), (3, 2_000_000)]),
    Commit("one_token_more_than_everything", 0, 4_000_001, None, "insufficient_tokens"),
    Commit(
        "one_ms_before_expiry_still_usable",
        2 * HOUR_MS - 1,
        1_500_000,
        [(1, 1_000_000), (2, 500_000)],
    ),
    Commit(
        "skips_a_lot_expired_exactly_now", 2 * HOUR_MS, 1_500_000, [(2, 1_000_000), (3, 500_000)]
    ),
    Commit("expired_tokens_do_not_count", 2 * HOUR_MS, 3_000_001, None, "insufficient_tokens"),
    Commit("all_expired", 4 * HOUR_MS, 1, None, "insufficient_tokens"),
    Commit("zero", 0, 0, None, "invalid_amount"),
    Commit("negative", 0, -5, None, "invalid_amount"),
    Commit("bool", 0, True, None, "invalid_amount"),
    Commit("float", 0, 1.0, None, "invalid_amount"),
    Commit("over_the_call_limit", 0, 10**9 + 1, None, "invalid_amount"),
]


@pytest.mark.parametrize("s", COMMITS, ids=lambda s: s.name)
def test_commit(s: Commit) -> None:
    m = _three_lots()
    m.advance(s.advance_ms)
    before = m.balances()
    lots = m.lots("c1")
    outcome = m.apply(CommitTokens(CallId("call"), C1, TP, s.tokens))
    if s.allocations is None:
        assert outcome.events == [Rejected(outcome.seq, m.now_ms, "CommitTokens", C1, s.reason)]
        assert m.balances() == before
        assert m.lots("c1") == lots
        assert m.state.calls == {}
        return
    assert outcome.events == [
        TokensCommitted(
            outcome.seq,
            m.now_ms,
            CallId("call"),
            C1,
            TP,
            s.tokens,
            tuple((LotId(i), t) for i, t in s.allocations),
        )
    ]
    assert m.tokens("c1")[2:] == (4_000_000 - s.tokens, s.tokens)
    committed = dict(s.allocations)
    assert [(lot[0], lot[4]) for lot in m.lots("c1")] == [
        (i, committed.get(i, 0)) for i in (1, 2, 3)
    ]


def test_commit_never_expiring_lots_oldest_first() -> None:
    m = _three_lots(window_ms=None)
    m.advance(10**12)
    outcome = m.commit("call", "c1", 2_500_000)
    assert outcome.events[0].allocations == ((1, 1_000_000), (2, 1_000_000), (3, 500_000))


def test_a_second_call_draws_around_the_first() -> None:
    m = _three_lots()
    m.commit("a", "c1", 600_000)
    outcome = m.commit("b", "c1", 600_000)
    assert outcome.events[0].allocations == ((1, 400_000), (2, 200_000))
    assert m.tokens("c1")[2:] == (2_800_000, 1_200_000)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        (CommitTokens(CallId("a"), C1, TP, 1), "call_exists"),
        (CommitTokens(CallId("a"), C1, TP, 10**8), "call_exists"),
        (CommitTokens(CallId("b"), AccountId("ghost"), TP, 1), "unknown_account"),
        (CommitTokens(CallId("b"), C1, InstrumentId("nope"), 1), "unknown_instrument"),
        (CommitTokens(CallId("b"), AccountId("s1"), TP, 1), "insufficient_tokens"),
    ],
    ids=[
        "repeated_call_id",
        "repeated_call_id_checked_before_tokens",
        "unknown_account",
        "unknown_instrument",
        "account_without_lots",
    ],
)
def test_commit_rejects(command: CommitTokens, reason: str) -> None:
    m = _three_lots()
    m.commit("a", "c1", 100_000)
    before = m.balances()
    outcome = m.apply(command)
    assert outcome.events == [
        Rejected(outcome.seq, m.now_ms, "CommitTokens", command.account_id, reason)
    ]
    assert m.balances() == before
    assert list(m.state.calls) == ["a"]


class Settle(NamedTuple):
    name: str
    committed: int
    used: int
    billed: int
    released: int
    unbilled: int
    billed_lots: list[tuple[int, int]]
    #: c1's consumption available after, and its lots (id, remaining tokens).
    available: int
    lots: list[tuple[int, int]]


# c1 holds lot 1 and lot 2, 1M tokens each, never expiring; the call commits `committed`.
SETTLES = [
    Settle(
        "failed_call_releases_everything",
        1_500_000,
        0,
        0,
        1_500_000,
        0,
        [],
        2_000_000,
        [(1, 1_000_000), (2, 1_000_000)],
    ),
    Settle(
        "part_used_rest_released",
        1_500_000,
        1_200_000,
        1_200_000,
        300_000,
        0,
        [(1, 1_000_000), (2, 200_000)],
        800_000,
        [(2, 800_000)],
    ),
    Settle(
        "all_used",
        1_500_000,
        1_500_000,
        1_500_000,
        0,
        0,
        [(1, 1_000_000), (2, 500_000)],
        500_000,
        [(2, 500_000)],
    ),
    Settle(
        "overage_from_available_lots",
        1_500_000,
        1_800_000,
        1_800_000,
        0,
        0,
        [(1, 1_000_000), (2, 500_000), (2, 300_000)],
        200_000,
        [(2, 200_000)],
    ),
    Settle(
        "overage_beyond_everything_is_unbilled",
        1_500_000,
        2_300_000,
        2_000_000,
        0,
        300_000,
        [(1, 1_000_000), (2, 500_000), (2, 500_000)],
        0,
        [],
    ),
    Settle(
        "overage_from_the_committed_lot_first",
        500_000,
        1_800_000,
        1_800_000,
        0,
        0,
        [(1, 500_000), (1, 500_000), (2, 800_000)],
        200_000,
        [(2, 200_000)],
    ),
    Settle(
        "small_use_of_a_small_commit",
        500_000,
        1,
        1,
        499_999,
        0,
        [(1, 1)],
        1_999_999,
        [(1, 999_999), (2, 1_000_000)],
    ),
]


@pytest.mark.parametrize("s", SETTLES, ids=lambda s: s.name)
def test_settle(s: Settle) -> None:
    m = Market()
    m.bought("c1", 2, 1_000_000)
    m.apply(TransferToConsumption(C1, TP, 1))
    m.apply(TransferToConsumption(C1, TP, 1))
    m.commit("call", "c1", s.committed)
    m.advance(77)
    outcome = m.settle("call", s.used)
    assert outcome.events == [
        CallSettled(
            outcome.seq,
            m.now_ms,
            CallId("call"),
            C1,
            TP,
            s.used,
            s.billed,
            s.released,
            s.unbilled,
            tuple((LotId(i), t) for i, t in s.billed_lots),
        )
    ]
    assert m.tokens("c1")[2:] == (s.available, 0)
    assert [(lot[0], lot[3]) for lot in m.lots("c1")] == s.lots
    # Delivered tokens go back to the supplier's contra account.
    assert m.bal("s1/text-prime/issued") == -2_000_000 + s.billed
    assert m.liability("s1") == 2_000_000 - s.billed
    assert m.state.calls == {}


def test_settle_twice_or_unknown_is_unknown_call() -> None:
    m = Market()
    m.consume("c1", 1)
    m.commit("call", "c1", 100)
    m.settle("call", 50)
    before = m.balances()
    for call in ("call", "never"):
        outcome = m.apply(SettleCall(CallId(call), 0))
        assert outcome.events == [
            Rejected(outcome.seq, m.now_ms, "SettleCall", None, "unknown_call")
        ]
    assert m.balances() == before


@pytest.mark.parametrize(
    "used", [-1, True, 1.0, 10**9 + 1], ids=["negative", "bool", "float", "over_the_call_limit"]
)
def test_settle_bad_usage_is_refused_and_the_call_stays(used: Any) -> None:
    m = Market()
    m.consume("c1", 1)
    m.commit("call", "c1", 100)
    before = m.balances()
    outcome = m.apply(SettleCall(CallId("call"), used))
    assert outcome.events == [Rejected(outcome.seq, m.now_ms, "SettleCall", "c1", "invalid_amount")]
    assert m.balances() == before
    assert kinds(m.settle("call", 100).events) == ["CallSettled"]


def _one_lot_with_window() -> Market:
    m = Market(variant(TP, consumption_window_ms=HOUR_MS))
    m.bought("c1", 1, 1_000_000)
    m.apply(TransferToConsumption(C1, TP, 1))  # lot 1, expires in an hour
    return m


class Expire(NamedTuple):
    name: str
    advance_ms: int
    committed: int
    #: Forfeited tokens, and c1's (consumption available, committed) after.
    forfeited: int
    after: tuple[int, int]


EXPIRES = [
    Expire("before_expiry_nothing", HOUR_MS - 1, 0, 0, (1_000_000, 0)),
    Expire("at_expiry_all_forfeited", HOUR_MS, 0, 1_000_000, (0, 0)),
    Expire("long_after_expiry", 1_000 * HOUR_MS, 0, 1_000_000, (0, 0)),
    Expire("committed_tokens_are_kept", HOUR_MS, 300_000, 700_000, (0, 300_000)),
    Expire("fully_committed_lot_forfeits_nothing", HOUR_MS, 1_000_000, 0, (0, 1_000_000)),
]


@pytest.mark.parametrize("s", EXPIRES, ids=lambda s: s.name)
def test_expire_forfeits_only_uncommitted_tokens(s: Expire) -> None:
    m = _one_lot_with_window()
    if s.committed:
        m.commit("call", "c1", s.committed)
    m.advance(s.advance_ms)
    outcome = m.apply(ExpireLots())
    expected = (
        [TokensForfeited(outcome.seq, m.now_ms, LotId(1), C1, TP, s.forfeited)]
        if s.forfeited
        else []
    )
    assert outcome.events == expected
    assert m.bal(FORFEITED) == s.forfeited
    assert m.tokens("c1")[2:] == s.after
    assert m.liability("s1") == 1_000_000 - s.forfeited
    # Nothing more to forfeit a second time.
    assert m.apply(ExpireLots()).events == []


def test_never_expiring_lots_survive_any_expiry() -> None:
    m = Market()
    m.consume("c1", 2)
    m.advance(100 * 365 * 24 * HOUR_MS)
    assert m.apply(ExpireLots()).events == []
    assert m.tokens("c1")[2] == 2_000_000


def test_an_expired_lot_is_forfeited_when_its_call_settles() -> None:
    m = _one_lot_with_window()
    m.commit("call", "c1", 300_000)
    m.advance(HOUR_MS)
    m.apply(ExpireLots())  # 700,000 forfeited, 300,000 still committed
    outcome = m.settle("call", 100_000)
    assert outcome.events == [
        TokensForfeited(outcome.seq, m.now_ms, LotId(1), C1, TP, 200_000),
        CallSettled(
            outcome.seq,
            m.now_ms,
            CallId("call"),
            C1,
            TP,
            100_000,
            100_000,
            200_000,
            0,
            ((LotId(1), 100_000),),
        ),
    ]
    assert m.bal(FORFEITED) == 900_000
    assert m.lots("c1") == []
    assert m.tokens("c1")[2:] == (0, 0)
    assert m.liability("s1") == 0


def test_a_call_settling_after_expiry_without_expire_lots_forfeits_the_rest() -> None:
    m = _one_lot_with_window()
    m.commit("call", "c1", 300_000)
    m.advance(HOUR_MS)
    outcome = m.settle("call", 0)
    assert [(type(e).__name__, getattr(e, "tokens", None)) for e in outcome.events] == [
        ("TokensForfeited", 1_000_000),
        ("CallSettled", None),
    ]
    assert m.bal(FORFEITED) == 1_000_000


def test_overage_skips_expired_lots_which_are_then_forfeited() -> None:
    m = Market(variant(TP, consumption_window_ms=HOUR_MS))
    m.bought("c1", 2, 1_000_000)
    m.apply(TransferToConsumption(C1, TP, 1))  # lot 1, expires at T+1h
    m.advance(HOUR_MS // 2)
    m.apply(TransferToConsumption(C1, TP, 1))  # lot 2, expires at T+1.5h
    m.commit("call", "c1", 500_000)  # from lot 1
    m.advance(HOUR_MS // 2)  # lot 1 has expired
    outcome = m.settle("call", 1_200_000)
    assert outcome.events == [
        TokensForfeited(outcome.seq, m.now_ms, LotId(1), C1, TP, 500_000),
        CallSettled(
            outcome.seq,
            m.now_ms,
            CallId("call"),
            C1,
            TP,
            1_200_000,
            1_200_000,
            0,
            0,
            ((LotId(1), 500_000), (LotId(2), 700_000)),
        ),
    ]
    assert m.lots("c1") == [(2, "s1", 1_000_000, 300_000, 0, m.now_ms + HOUR_MS // 2)]
    assert of_type(outcome.events, TokensForfeited)[0].tokens == 500_000


class NextExpiry(NamedTuple):
    name: str
    window_ms: int | None
    #: Steps: "lot" (transfer 1 unit), "wait" (1 hour), "commit_all" (commit lot 1 whole),
    #: "expire" (ExpireLots).
    steps: list[str]
    #: Expected next expiry, as an offset from the start (None: nothing will expire).
    next_ms: int | None


NEXT_EXPIRIES = [
    NextExpiry("no_lots", HOUR_MS, [], None),
    NextExpiry("never_expiring_lots", None, ["lot", "wait", "lot"], None),
    NextExpiry("the_soonest_lot", 3 * HOUR_MS, ["lot", "wait", "lot"], 3 * HOUR_MS),
    NextExpiry(
        "fully_committed_lots_are_skipped",
        3 * HOUR_MS,
        ["lot", "wait", "lot", "commit_all"],
        4 * HOUR_MS,
    ),
    NextExpiry("after_the_first_expired", HOUR_MS, ["lot", "wait", "lot", "wait", "expire"], None),
    NextExpiry(
        "after_the_first_expired_the_next",
        3 * HOUR_MS,
        ["lot", "wait", "lot", "wait", "wait", "expire"],
        4 * HOUR_MS,
    ),
]


@pytest.mark.parametrize("s", NEXT_EXPIRIES, ids=lambda s: s.name)
def test_next_expiry(s: NextExpiry) -> None:
    m = Market(variant(TP, consumption_window_ms=s.window_ms))
    m.bought("c1", 2, 1_000_000)
    start = m.now_ms
    for step in s.steps:
        if step == "lot":
            m.apply(TransferToConsumption(C1, TP, 1))
        elif step == "wait":
            m.advance(HOUR_MS)
        elif step == "commit_all":
            m.commit("call", "c1", 1_000_000)
        else:
            m.apply(ExpireLots())
    expected = None if s.next_ms is None else start + s.next_ms
    assert m.ex.next_expiry_ms() == expected
