"""The rate-limit options of `gridmarket serve` (see `gridmarket.settings.RateLimits`)."""

from typing import Annotated

import typer

from gridmarket.settings import (
    MAX_RATE_SETTING,
    ORDER_BURST_ENV,
    ORDER_RATE_PER_MINUTE_ENV,
    ORDER_RATE_PER_SECOND_ENV,
    RATE_LIMIT_REQUESTS_ENV,
    RATE_LIMIT_WINDOW_ENV,
    RateLimits,
)

_DEFAULTS = RateLimits()


def _shown(env_name: str, default: int) -> str:
    return f"${env_name}, else {default}"


RateLimitRequestsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_RATE_SETTING,
        help="Signed requests allowed per signing key per window (a token bucket).",
        show_default=_shown(RATE_LIMIT_REQUESTS_ENV, _DEFAULTS.requests),
    ),
]
RateLimitWindowOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_RATE_SETTING,
        help="The window of --rate-limit-requests, in seconds.",
        show_default=_shown(RATE_LIMIT_WINDOW_ENV, _DEFAULTS.window_s),
    ),
]
OrderRatePerSecondOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_RATE_SETTING,
        help="Order placements allowed per signing key and market, per second.",
        show_default=_shown(ORDER_RATE_PER_SECOND_ENV, _DEFAULTS.orders_per_second),
    ),
]
OrderRatePerMinuteOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_RATE_SETTING,
        help="Order placements allowed per signing key and market, per minute.",
        show_default=_shown(ORDER_RATE_PER_MINUTE_ENV, _DEFAULTS.orders_per_minute),
    ),
]
OrderBurstOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=MAX_RATE_SETTING,
        help="Order placements allowed per signing key and market at once (the burst).",
        show_default=_shown(ORDER_BURST_ENV, _DEFAULTS.order_burst),
    ),
]
