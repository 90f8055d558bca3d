"""`GET /metrics`: Prometheus text format, from a registry of this app's own (never the global).

Derived from committed outcomes (`service.usage`, rebuilt from the stored log on start, so the
counters are totals since the market began and survive restarts):

    gridmarket_calls_total{instrument,key}                 settled calls
    gridmarket_calls_by_status_total{instrument,status}    settled calls by ok/failed/cancelled
    gridmarket_tokens_total{instrument,key,kind}            kind: prompt, completion, billed
    gridmarket_spend_usd_micros_total{instrument,key}      value of the tokens billed (micro-USD)
    gridmarket_calls_in_flight{instrument}                 tokens committed, not yet settled
    gridmarket_call_ttft_seconds{supplier}                 histogram: TTFT as settled
    gridmarket_call_duration_seconds{supplier}             histogram: call duration as settled
    gridmarket_committed_seq                               the sequencer's last committed seq
    gridmarket_open_orders                                 orders resting on every book

`key` is the consumption key id ("" for a call made without one); `supplier` "" when the
receipt named none. Label sets grow with keys and instruments (bounded by the key limit per
account).

Hooks for what events cannot know (`GatewayMetrics`, on `app.state.gateway_metrics`; get it
with `gateway_metrics(app)`, which creates it on first use), measured by the gateway itself:

    observe_overhead(supplier, seconds)      gridmarket_gateway_overhead_seconds{supplier}
        time the gateway adds to a call (its own work, excluding the supplier's)
    observe_ttft(supplier, seconds)          gridmarket_gateway_ttft_seconds{supplier}
        time to first token as the caller sees it
    request_started(instrument)              gridmarket_gateway_requests_in_progress{instrument}
    request_finished(instrument, outcome)    ... - 1, gridmarket_gateway_requests_total{
                                             instrument,outcome} + 1
        every consumption request the gateway takes, refused ones included (a bad key or a
        body that is not JSON is refused by the surface before it: those are not counted);
        `instrument` is the instrument asked for or `unknown` (never a client's text, so the
        label set stays bounded); `outcome` is `ok`, `cancelled`, `failed`, or the error code
        (`insufficient_tokens`, `model_not_found`, `no_supplier`, ...).

Access: by default /metrics is open when the server listens on loopback and needs the
operator token (`Authorization: Bearer <token>`) otherwise. `GRIDMARKET_METRICS_AUTH` changes
that: `token` always requires the token, `none` never does, `auto` is the default.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector
from starlette.responses import Response

from gridmarket.api.errors import error_response
from gridmarket.auth.operator import token_matches
from gridmarket.service.market import MarketService
from gridmarket.service.usage import LATENCY_BUCKETS_MS, Usage
from gridmarket.service.usage import Histogram as MsHistogram

METRICS_AUTH_ENV = "GRIDMARKET_METRICS_AUTH"
AUTH_MODES = ("auto", "token", "none")
_GATEWAY_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Make the registry and the gateway hooks at start; check the access setting."""
    app.state.metrics_auth = auth_mode()
    gateway_metrics(app)
    yield


router = APIRouter(tags=["metrics"], lifespan=_lifespan)


class GatewayMetrics:
    """What the gateway measures and the log cannot know (module docstring)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._overhead = Histogram(
            "gridmarket_gateway_overhead_seconds",
            "Time the gateway adds to a call, per supplier.",
            ["supplier"],
            registry=registry,
            buckets=_GATEWAY_BUCKETS_S,
        )
        self._ttft = Histogram(
            "gridmarket_gateway_ttft_seconds",
            "Time to first token as the caller sees it, per supplier.",
            ["supplier"],
            registry=registry,
            buckets=_LATENCY_BUCKETS_S,
        )
        self._in_progress = Gauge(
            "gridmarket_gateway_requests_in_progress",
            "Consumption requests being served.",
            ["instrument"],
            registry=registry,
        )
        self._requests = Counter(
            "gridmarket_gateway_requests",
            "Consumption requests finished, by how they ended.",
            ["instrument", "outcome"],
            registry=registry,
        )

    def observe_overhead(self, supplier: str, seconds: float) -> None:
        self._overhead.labels(supplier).observe(seconds)

    def observe_ttft(self, supplier: str, seconds: float) -> None:
        self._ttft.labels(supplier).observe(seconds)

    def request_started(self, instrument: str) -> None:
        self._in_progress.labels(instrument).inc()

    def request_finished(self, instrument: str, outcome: str) -> None:
        self._in_progress.labels(instrument).dec()
        self._requests.labels(instrument, outcome).inc()


class _CommittedCollector(Collector):
    """Reads the usage model and the sequencer at scrape time (no copy to keep in step)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def collect(self) -> Iterator[Metric]:
        usage = getattr(self._app.state, "usage", None)
        market = getattr(self._app.state, "market", None)
        if isinstance(market, MarketService):
            yield from _market_gauges(market)
        if isinstance(usage, Usage):
            yield from _usage_metrics(usage)


def _market_gauges(market: MarketService) -> Iterator[Metric]:
    seq = GaugeMetricFamily("gridmarket_committed_seq", "The last committed command's seq.")
    seq.add_metric([], market.sequencer.committed_seq)
    yield seq
    try:
        accounts = market.sequencer.exchange.state.accounts.values()
    except AssertionError:  # the sequencer is not running: nothing to count
        return
    orders = GaugeMetricFamily("gridmarket_open_orders", "Orders resting on every book.")
    orders.add_metric([], sum(len(a.open_order_ids) for a in accounts))
    yield orders


def _usage_metrics(usage: Usage) -> Iterator[Metric]:
    labels = ["instrument", "key"]
    calls = CounterMetricFamily("gridmarket_calls", "Settled consumption calls.", labels=labels)
    tokens = CounterMetricFamily(
        "gridmarket_tokens", "Tokens of settled calls.", labels=[*labels, "kind"]
    )
    spend = CounterMetricFamily(
        "gridmarket_spend_usd_micros", "Value of the tokens billed, micro-USD.", labels=labels
    )
    for (instrument, key), totals in sorted(usage.totals.items(), key=lambda t: str(t[0])):
        values = [instrument, key or ""]
        calls.add_metric(values, totals.calls)
        tokens.add_metric([*values, "prompt"], totals.prompt_tokens)
        tokens.add_metric([*values, "completion"], totals.completion_tokens)
        tokens.add_metric([*values, "billed"], totals.billed_tokens)
        spend.add_metric(values, totals.billed_usd_micros)
    by_status = CounterMetricFamily(
        "gridmarket_calls_by_status",
        "Settled consumption calls by status.",
        labels=["instrument", "status"],
    )
    for (instrument, status), count in sorted(usage.calls_by_status.items()):
        by_status.add_metric([instrument, status], count)
    in_flight = GaugeMetricFamily(
        "gridmarket_calls_in_flight", "Calls with tokens committed.", labels=["instrument"]
    )
    for instrument, count in sorted(usage.in_flight_by_instrument().items()):
        in_flight.add_metric([instrument], count)
    yield from (calls, tokens, spend, by_status, in_flight)
    yield _histogram("gridmarket_call_ttft_seconds", "TTFT of settled calls.", usage.ttft_ms)
    yield _histogram(
        "gridmarket_call_duration_seconds", "Duration of settled calls.", usage.duration_ms
    )


def _seconds_text(ms: int) -> str:
    """A bucket bound as prometheus_client writes it: 50 -> "0.05", 1000 -> "1.0"."""
    whole, fraction = divmod(ms, 1000)
    return f"{whole}.{fraction:03d}".rstrip("0") if fraction else f"{whole}.0"


def _histogram(name: str, documentation: str, by_supplier: Mapping[str, MsHistogram]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["supplier"])
    bounds = [_seconds_text(ms) for ms in LATENCY_BUCKETS_MS] + ["+Inf"]
    for supplier, histogram in sorted(by_supplier.items()):
        cumulative, buckets = 0, []
        for bound, count in zip(bounds, histogram.counts, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric([supplier], buckets, histogram.sum_ms / 1000)
    return family


def metrics_registry(app: FastAPI) -> CollectorRegistry:
    """This app's registry, made (with the committed-outcome collector) on first use."""
    registry = getattr(app.state, "metrics_registry", None)
    if not isinstance(registry, CollectorRegistry):
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_CommittedCollector(app))
        app.state.metrics_registry = registry
    return registry


def gateway_metrics(app: FastAPI) -> GatewayMetrics:
    """`app.state.gateway_metrics`, made on first use (idempotent)."""
    metrics = getattr(app.state, "gateway_metrics", None)
    if not isinstance(metrics, GatewayMetrics):
        metrics = GatewayMetrics(metrics_registry(app))
        app.state.gateway_metrics = metrics
    return metrics


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def auth_mode(environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    mode = (env.get(METRICS_AUTH_ENV) or "auto").strip().lower()
    if mode not in AUTH_MODES:
        raise ValueError(f"{METRICS_AUTH_ENV}: must be one of {', '.join(AUTH_MODES)}: {mode!r}")
    return mode


def _needs_token(request: Request) -> bool:
    state: Any = request.app.state
    mode = getattr(state, "metrics_auth", None) or auth_mode()
    if mode == "auto":
        settings = getattr(state, "settings", None)
        return not _is_loopback(getattr(settings, "host", "127.0.0.1"))
    return bool(mode == "token")


@router.get("/metrics", response_model=None, include_in_schema=False)
async def metrics(request: Request) -> Response:
    """Every metric of this app in the Prometheus text format (module docstring)."""
    if _needs_token(request):
        expected: str | None = getattr(request.app.state, "operator_token", None)
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if expected is None or scheme.lower() != "bearer" or not token_matches(presented, expected):
            return error_response(
                401,
                "an operator token is required: Authorization: Bearer <token>",
                "unauthorized",
                {"WWW-Authenticate": "Bearer"},
            )
    app: FastAPI = request.app
    gateway_metrics(app)
    body = generate_latest(metrics_registry(app))
    return Response(body, media_type=CONTENT_TYPE_LATEST)
