"""A consumption key's spend cap bounds its billed plus committed tokens (checked at commit,
race-free because the core applies commits one at a time), and a settled call records its
usage receipt in `CallSettled`, refusing malformed receipt fields and changing nothing."""

from typing import Any, NamedTuple

import pytest

from gridmarket.core.commands import CommitTokens, SettleCall
from gridmarket.core.events import CallSettled, Rejected
from gridmarket.core.ids import AccountId, CallId

from .helpers import TP, Market

C1 = AccountId("c1")


def _market() -> Market:
    m = Market()
    m.consume("c1", 1)  # one unit: 1,000,000 tokens in consumption
    return m


def _commit(m: Market, call: str, tokens: int, key: str | None, cap: int | None) -> list[Any]:
    return m.apply(CommitTokens(CallId(call), C1, TP, tokens, key, cap)).events


class Cap(NamedTuple):
    name: str
    #: (call, tokens committed, tokens used at settle or None to leave it in flight)
    before: list[tuple[str, int, int | None]]
    tokens: int
    cap: int
    accepted: bool


CAPS = [
    Cap("first_call_within_the_cap", [], 500, 1_000, True),
    Cap("exactly_the_cap", [], 1_000, 1_000, True),
    Cap("one_over_the_cap", [], 1_001, 1_000, False),
    Cap("in_flight_commitments_count", [("a", 600, None)], 500, 1_000, False),
    Cap("in_flight_fits_beside", [("a", 600, None)], 400, 1_000, True),
    Cap("billed_tokens_count", [("a", 600, 600)], 500, 1_000, False),
    Cap("released_tokens_come_back", [("a", 600, 100)], 900, 1_000, True),
    Cap("released_tokens_come_back_exactly", [("a", 600, 100)], 901, 1_000, False),
    Cap("zero_cap_refuses_everything", [], 1, 0, False),
]


@pytest.mark.parametrize("s", CAPS, ids=lambda s: s.name)
def test_spend_cap(s: Cap) -> None:
    m = _market()
    for call, tokens, used in s.before:
        assert type(_commit(m, call, tokens, "key1", None)[0]).__name__ == "TokensCommitted"
        if used is not None:
            m.settle(call, used)
    before = m.balances()
    events = _commit(m, "new", s.tokens, "key1", s.cap)
    if s.accepted:
        assert type(events[0]).__name__ == "TokensCommitted"
    else:
        assert events == [Rejected(m.state.seq, m.now_ms, "CommitTokens", C1, "spend_cap_reached")]
        assert m.balances() == before
        assert "new" not in m.state.calls


def test_caps_are_per_key() -> None:
    m = _market()
    _commit(m, "a", 900, "key1", 1_000)
    events = _commit(m, "b", 900, "key2", 1_000)
    assert type(events[0]).__name__ == "TokensCommitted"
    assert m.state.key_tokens == {"key1": 900, "key2": 900}


def test_a_call_without_a_key_counts_for_no_key() -> None:
    m = _market()
    _commit(m, "a", 900, None, None)
    m.settle("a", 900)
    assert m.state.key_tokens == {}


@pytest.mark.parametrize(
    ("key", "cap", "reason"),
    [
        (None, 100, "invalid_amount"),  # a cap without a key bounds nothing: a gateway bug
        ("key1", -1, "invalid_amount"),
        ("key1", True, "invalid_amount"),
        ("", None, "invalid_receipt"),
        ("k" * 257, None, "invalid_receipt"),
        (7, None, "invalid_receipt"),
    ],
    ids=["cap_without_key", "negative_cap", "bool_cap", "empty_key", "long_key", "int_key"],
)
def test_bad_key_fields_are_refused(key: Any, cap: Any, reason: str) -> None:
    m = _market()
    before = m.balances()
    events = _commit(m, "a", 10, key, cap)
    assert events == [Rejected(m.state.seq, m.now_ms, "CommitTokens", C1, reason)]
    assert m.balances() == before
    assert m.state.calls == {} and m.state.key_tokens == {}


def test_settle_records_the_receipt() -> None:
    m = _market()
    _commit(m, "call", 1_000, "key1", 5_000)
    outcome = m.apply(
        SettleCall(
            CallId("call"),
            700,
            request_id="req_1",
            supplier_id="s1",
            model="smollm2",
            prompt_tokens=200,
            completion_tokens=500,
            ttft_ms=42,
            duration_ms=900,
            status="ok",
            usage_estimated=True,
        )
    )
    (settled,) = outcome.events
    assert isinstance(settled, CallSettled)
    assert (settled.used_tokens, settled.billed_tokens, settled.released_tokens) == (700, 700, 300)
    assert settled[10:] == ("key1", "req_1", "s1", "smollm2", 200, 500, 42, 900, "ok", True)
    assert m.state.key_tokens == {"key1": 700}


BAD_RECEIPTS: list[tuple[str, dict[str, Any]]] = [
    ("request_id_none", {"request_id": None}),
    ("request_id_too_long", {"request_id": "r" * 257}),
    ("supplier_not_text", {"supplier_id": 5}),
    ("model_too_long", {"model": "m" * 257}),
    ("negative_prompt_tokens", {"prompt_tokens": -1}),
    ("bool_completion_tokens", {"completion_tokens": True}),
    ("completion_over_the_call_limit", {"completion_tokens": 10**9 + 1}),
    ("negative_ttft", {"ttft_ms": -1}),
    ("duration_over_a_day", {"duration_ms": 86_400_001}),
    ("unknown_status", {"status": "done"}),
    ("estimated_not_bool", {"usage_estimated": 1}),
]


@pytest.mark.parametrize(("name", "fields"), BAD_RECEIPTS, ids=[n for n, _ in BAD_RECEIPTS])
def test_bad_receipts_are_refused_and_the_call_stays(name: str, fields: dict[str, Any]) -> None:
    m = _market()
    _commit(m, "call", 1_000, "key1", None)
    before = m.balances()
    outcome = m.apply(SettleCall(CallId("call"), 10, **fields))
    assert outcome.events == [
        Rejected(outcome.seq, m.now_ms, "SettleCall", "c1", "invalid_receipt")
    ]
    assert m.balances() == before
    assert "call" in m.state.calls and m.state.key_tokens == {"key1": 1_000}
