"""The token-bucket rate limiter, driven by a fake clock: budgets, refills, isolation, bounds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gridmarket import cli
from gridmarket.auth.ratelimit import BucketSet, Rate, RateLimiter, RateLimiterConfig
from gridmarket.settings import RateLimits

T0_MS = 1_700_000_000_000
REQUESTS = Rate(10, 10, 60_000)  # 10 a minute
ORDER_BURST = Rate(4, 2, 1000)  # burst 4, 2 a second
ORDER_WINDOW = Rate(100, 100, 60_000)


class FakeClock:
    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ms = now_ms

    def __call__(self) -> int:
        return self.now_ms


def _limiter(
    clock: FakeClock,
    *,
    requests: Rate = REQUESTS,
    order_burst: Rate = ORDER_BURST,
    order_window: Rate = ORDER_WINDOW,
    max_keys: int = 1000,
) -> RateLimiter:
    return RateLimiter(RateLimiterConfig(requests, order_burst, order_window, max_keys), clock)


def test_a_key_gets_its_burst_then_is_refused_with_the_wait_for_one_token() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    remaining = [limiter.admit("a").remaining for _ in range(10)]
    assert remaining == [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    refused = limiter.admit("a")
    assert not refused.allowed
    assert refused.remaining == 0 and refused.limit == 10
    assert refused.retry_after_ms == 6000  # 10 tokens a minute: one every 6 s
    assert refused.reset_ms == T0_MS + 60_000  # empty now, full a minute later


def test_a_refusal_charges_nothing_and_the_token_comes_back_on_time() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    for _ in range(10):
        limiter.admit("a")
    for _ in range(50):
        assert not limiter.admit("a").allowed  # hammering does not push the wait back
    clock.now_ms += 5999
    assert not limiter.admit("a").allowed
    assert limiter.admit("a").retry_after_ms == 1
    clock.now_ms += 1
    admitted = limiter.admit("a")
    assert admitted.allowed and admitted.remaining == 0
    assert not limiter.admit("a").allowed


def test_refill_is_exact_and_capped_at_capacity() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, requests=Rate(3, 1, 1000))
    for _ in range(3):
        limiter.admit("a")
    clock.now_ms += 2500  # 2.5 tokens back: two whole ones
    assert limiter.admit("a").remaining == 1
    assert limiter.admit("a").remaining == 0
    assert not limiter.admit("a").allowed
    clock.now_ms += 3_600_000  # an hour idle: full, not 3600 tokens
    assert limiter.admit("a").remaining == 2


def test_a_clock_stepping_back_refills_nothing() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, requests=Rate(2, 1, 1000))
    limiter.admit("a")
    limiter.admit("a")
    clock.now_ms -= 10_000
    assert not limiter.admit("a").allowed
    clock.now_ms += 10_000
    assert not limiter.admit("a").allowed  # no refill for time that passed "twice"
    clock.now_ms += 1000
    assert limiter.admit("a").allowed


def test_keys_are_isolated() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, requests=Rate(2, 2, 60_000))
    assert limiter.admit("a").allowed and limiter.admit("a").allowed
    assert not limiter.admit("a").allowed
    assert limiter.admit("b").remaining == 1


def test_orders_are_limited_per_key_and_market_on_top_of_the_request_budget() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)  # orders: burst 4, 2 a second
    for left in (3, 2, 1, 0):
        decision = limiter.admit("a", "m1")
        assert decision.allowed and decision.remaining == left and decision.limit == 4
    refused = limiter.admit("a", "m1")
    assert not refused.allowed and refused.retry_after_ms == 500
    assert limiter.admit("a", "m2").allowed  # another market: its own order budget
    assert limiter.admit("b", "m1").allowed  # another key: its own order budget
    assert limiter.admit("a").allowed  # plain requests still pass
    # The refused order charged nothing: 4 orders + m2 + 1 plain request = 6 of 10 requests.
    assert limiter.admit("a").remaining == 3


def test_the_per_minute_order_budget_binds_after_bursts() -> None:
    clock = FakeClock()
    limiter = _limiter(
        clock,
        requests=Rate(1000, 1000, 60_000),
        order_burst=Rate(5, 5, 1000),
        order_window=Rate(7, 7, 60_000),
    )
    assert all(limiter.admit("a", "m").allowed for _ in range(5))
    clock.now_ms += 1000  # the burst bucket is full again; the minute has 2 left
    assert limiter.admit("a", "m").remaining == 1
    assert limiter.admit("a", "m").remaining == 0
    refused = limiter.admit("a", "m")
    assert not refused.allowed and refused.limit == 7
    # 1 s refilled 7000 of the 60000 units a token is worth, at 7 units a ms: 53000 / 7, up.
    assert refused.retry_after_ms == 7572


def test_order_budget_reads_without_charging_or_storing() -> None:
    clock = FakeClock()
    limiter = _limiter(clock)
    fresh = limiter.order_budget("a", "m")
    assert fresh.allowed and fresh.remaining == 4 and fresh.limit == 4
    assert len(limiter.order_burst) == 0
    for _ in range(4):
        limiter.admit("a", "m")
    empty = limiter.order_budget("a", "m")
    assert not empty.allowed and empty.remaining == 0 and empty.retry_after_ms == 500
    assert limiter.order_budget("a", "m") == empty


def test_memory_is_bounded_least_recently_used_first_out() -> None:
    clock = FakeClock()
    limiter = _limiter(clock, requests=Rate(1, 1, 60_000), max_keys=3)
    for key in ("a", "b", "c"):
        limiter.admit(key)
    assert not limiter.admit("a").allowed  # "a" is now the most recently used
    limiter.admit("d")  # evicts "b", the least recently used
    assert len(limiter.requests) == 3
    assert limiter.admit("b").allowed  # forgotten, so full again (evicting "c")
    assert not limiter.admit("a").allowed
    for key in range(10_000):
        limiter.admit(f"k{key}")
    assert len(limiter.requests) == 3


def test_a_bucket_set_refuses_nonsense_rates() -> None:
    with pytest.raises(AssertionError):
        BucketSet(Rate(0, 1, 1000), 10)
    with pytest.raises(AssertionError):
        BucketSet(Rate(1, 1, 1000), 0)


# -- settings -------------------------------------------------------------------------------------


def test_rate_limits_come_from_flags_then_env_then_defaults() -> None:
    env = {"GRIDMARKET_RATE_LIMIT_REQUESTS": "7", "GRIDMARKET_ORDER_BURST": "9"}
    limits = RateLimits.resolve({"order_burst": 3, "window_s": None}, env)
    assert limits == RateLimits(requests=7, window_s=60, order_burst=3)
    assert RateLimits.resolve({}, {"GRIDMARKET_ORDER_BURST": ""}) == RateLimits()


@pytest.mark.parametrize("raw", ["0", "-1", "1.5", "abc", "²", "1000000001", "9" * 5000])
def test_a_bad_rate_limit_setting_is_refused_by_name(raw: str) -> None:
    with pytest.raises(ValueError, match="GRIDMARKET_ORDER_RATE_PER_SECOND"):
        RateLimits.resolve({}, {"GRIDMARKET_ORDER_RATE_PER_SECOND": raw})


def test_serve_flags_win_over_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served: list[Any] = []
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **_: served.append(app))
    monkeypatch.setenv("GRIDMARKET_ORDER_BURST", "9")
    monkeypatch.setenv("GRIDMARKET_RATE_LIMIT_REQUESTS", "11")
    args = ["serve", "--data-dir", str(tmp_path / "home"), "--order-burst", "5"]
    result = CliRunner().invoke(cli.app, [*args, "--order-rate-per-minute", "7"])
    assert result.exit_code == 0, result.output
    limits = served[0].state.settings.rate_limits
    assert limits == RateLimits(requests=11, orders_per_minute=7, order_burst=5)


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--order-burst", "0"], {}), ([], {"GRIDMARKET_RATE_LIMIT_WINDOW_S": "soon"})],
)
def test_serve_refuses_bad_rate_limits_before_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], env: dict[str, str]
) -> None:
    monkeypatch.setattr(cli.uvicorn, "run", lambda app, **_: pytest.fail("started"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(cli.app, ["serve", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
