"""Public market data: instruments, markets, order book, trades, ticker and 24h stats.

    GET /v1/instruments                    GET /v1/instruments/{id}
    GET /v1/instruments/by-symbol/{symbol} GET /v1/markets
    GET /v1/markets/{id}                   GET /v1/markets/{id}/orderbook?depth=N
    GET /v1/markets/{id}/trades            GET /v1/markets/{id}/ticker
    GET /v1/markets/{id}/stats

Answers use The Grid's envelope and field names (reference/grid-client-contract.md). Reads
need no signature: the data is public (The Grid's client signs them anyway; a signature is
simply not checked here).

Ids. An instrument's id is its symbol (DESIGN section 3). **A market's id is its instrument's
id too**: The Grid has exactly one market per instrument (grid-api-notes section 4.2, "Each
instrument has one market", line 161), its clients treat every id as an opaque string
(grid-client-contract.md section 0, line 22: "Strings are not checked for format"), and its
CLI resolves names to ids through the instrument list. One id for both means `text-prime`
works wherever a client expects either, so nothing is lost by not minting `market_<uuid>` ids.

Lists are `{"data": [...], "paging": {"has_more", "next_cursor", "prev_cursor"}}`
(grid-api-notes section 5): `limit` 1-100, default 50 (`page_size` is accepted as its alias:
The Grid's SDK sends it for public trades); `next` / `prev` take a cursor from a previous
page (never both). Cursors are opaque. Errors are `{"errors": {"detail", "code", "message"}}`:
an unknown instrument or market is a 404, a bad query parameter a 422, and a server whose
market service is not running answers 503.

Read consistency. Handlers are synchronous between awaits on the event loop that also runs
the sequencer, which applies each command synchronously: a read therefore always sees whole
commands, never half of one. The live book may be ahead of the store by the batch being
committed (sequencer contract). The order book is read from the live state and its
`sequence` is the seq of the last command *applied* to it (`exchange.state.seq`), not
`committed_seq` (reported beside it as `committed_sequence`): labelling a live snapshot with
an older seq would make a client that applies sequenced depth updates after the snapshot
apply the in-flight batch twice. The gap (the batch being committed and the one filling
behind it: milliseconds) is a read of not-yet-durable state; it only matters if that commit
fails, and then the sequencer stops for good and the process restarts from the store, so a
client must resync from a new snapshot anyway. Trades, the ticker's trade
fields and stats come from the read model, which holds committed outcomes only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Sequence
from itertools import islice
from typing import Any, NamedTuple, ParamSpec

from fastapi import APIRouter, Request
from starlette.responses import Response

from gridmarket.api import wire
from gridmarket.api.errors import Problem
from gridmarket.api.errors import invalid as _invalid
from gridmarket.core.book import Side
from gridmarket.core.events import Trade
from gridmarket.core.exchange import Exchange
from gridmarket.core.ids import InstrumentId
from gridmarket.core.instruments import Instrument
from gridmarket.service.followed import model_lifespan
from gridmarket.service.market import MarketService
from gridmarket.service.market_data import MarketData, Stats24h

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: The Grid's spec has 1-100, default 20; we allow deeper books (up to 1,000 levels a side).
DEFAULT_DEPTH = 20
MAX_DEPTH = 1_000
TOKENS_PER_UNIT = 1_000_000
QUOTE_CURRENCY = "USD"


_lifespan = model_lifespan(
    "market_data", lambda market: MarketData(market.sequencer.exchange.state.instruments)
)

router = APIRouter(prefix="/v1", tags=["market data"], lifespan=_lifespan)


# -- errors -------------------------------------------------------------------------------------


P = ParamSpec("P")


def _answers(
    handler: Callable[P, Awaitable[dict[str, Any]]],
) -> Callable[P, Awaitable[dict[str, Any] | Response]]:
    """Turn a `Problem` raised by `handler` into its error response."""

    @functools.wraps(handler)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> dict[str, Any] | Response:
        try:
            return await handler(*args, **kwargs)
        except Problem as problem:
            return problem.response()

    return wrapper


_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


def _int_param(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw.strip()):
        raise _invalid(name, f"must be an integer from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise _invalid(name, f"must be an integer from {low} to {high}")
    return value


# -- paging -------------------------------------------------------------------------------------


class Page(NamedTuple):
    items: list[Any]
    paging: dict[str, Any]


def _encode_cursor(direction: str, key: str | int) -> str:
    raw = json.dumps([direction, key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode_cursor(name: str, raw: str, key_type: type) -> str | int:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        direction, key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, TypeError, binascii.Error, UnicodeError):
        raise _invalid(name, "malformed cursor") from None
    if direction != name[0] or type(key) is not key_type:
        raise _invalid(name, "malformed cursor")
    assert isinstance(key, str | int)
    return key


def _page(
    items: Sequence[Any],
    sort_keys: Sequence[Any],
    key_of: Callable[[Any], str | int],
    params: _ListParams,
    key_type: type,
) -> Page:
    """One page of `items` (ordered by ascending `sort_keys`) for the cursor in `params`.

    A cursor carries the item key it continues from, so a page still resolves when that item
    has since left the list (a trade evicted from the ring).
    """
    limit = params.limit
    if params.next is not None:
        key = _decode_cursor("next", params.next, key_type)
        start = bisect_right(sort_keys, _sort_key(key))
        end = min(len(items), start + limit)
    elif params.prev is not None:
        key = _decode_cursor("prev", params.prev, key_type)
        end = bisect_left(sort_keys, _sort_key(key))
        start = max(0, end - limit)
    else:
        start, end = 0, min(len(items), limit)
    chosen = list(items[start:end])
    has_more = end < len(items)
    paging = {
        "has_more": has_more,
        "next_cursor": _encode_cursor("n", key_of(chosen[-1])) if chosen and has_more else None,
        "prev_cursor": _encode_cursor("p", key_of(chosen[0])) if chosen and start > 0 else None,
    }
    return Page(chosen, paging)


def _sort_key(key: str | int) -> Any:
    # Integer keys (trade ids) are listed newest first, so they sort by their negation.
    return -key if isinstance(key, int) else key


class _ListParams(NamedTuple):
    limit: int
    next: str | None
    prev: str | None


def _list_params(
    limit: str | None, page_size: str | None, next: str | None, prev: str | None
) -> _ListParams:
    if next is not None and prev is not None:
        raise _invalid("next", "next and prev cannot be used together")
    raw_limit = limit if limit is not None else page_size
    name = "limit" if limit is not None else "page_size"
    value = _int_param(name, raw_limit, DEFAULT_LIMIT, 1, MAX_LIMIT)
    return _ListParams(value, next, prev)


# -- state --------------------------------------------------------------------------------------


def _running(request: Request) -> tuple[Exchange, MarketData]:
    market = request.app.state.market
    model = getattr(request.app.state, "market_data", None)
    if not isinstance(market, MarketService) or model is None:
        raise Problem(503, "service_unavailable", "the market service is not running")
    return market.sequencer.exchange, model


async def _committed(request: Request) -> tuple[Exchange, MarketData]:
    """Like `_running`, once the read model holds every acknowledged command."""
    exchange, model = _running(request)
    market: MarketService = request.app.state.market
    await model.caught_up(market.sequencer.committed_seq)
    return exchange, model


def _instrument(exchange: Exchange, instrument_id: str) -> Instrument:
    instrument = exchange.state.instruments.get(InstrumentId(instrument_id))
    if instrument is None:
        raise Problem(404, "instrument_not_found", f"instrument {instrument_id!r} not found")
    return instrument


def _market(exchange: Exchange, market_id: str) -> Instrument:
    instrument = exchange.state.instruments.get(InstrumentId(market_id))
    if instrument is None:
        raise Problem(404, "market_not_found", f"market {market_id!r} not found")
    return instrument


def _listed_at(model: MarketData) -> str:
    """When the market opened: its first command (or now, while the log is empty)."""
    first = model.first_ts_ms
    return wire.timestamp(model.now_ms() if first is None else first)


# -- wire objects -------------------------------------------------------------------------------


def instrument_json(instrument: Instrument, listed_at: str) -> dict[str, Any]:
    """An Instrument (contract section 2) with The Grid's detail blocks (notes section 4.1)."""
    g = instrument.guarantees
    symbol = instrument.instrument_id
    precision = wire.price_decimals(instrument.price_tick_usd_micros)
    return {
        "instrument_id": symbol,
        "id": symbol,
        "symbol": symbol,
        "name": instrument.name,
        "instrument_type": "ai_commodity",
        "description": (
            f"{instrument.name}: {TOKENS_PER_UNIT:,} tokens per unit; {g.quality_index_name}"
            f" index >= {g.quality_index_min}, >= {g.throughput_tok_s_min} tok/s,"
            f" TTFT <= {g.ttft_ms_max} ms, context >= {g.context_tokens_min:,} tokens"
        ),
        "status": "active",
        "is_active": True,
        "precision": precision,
        "market_id": symbol,
        "basic_info": {"service_type": "text_generation", "precision": precision},
        "ai_specs": {
            "context_window": g.context_tokens_min,
            "max_output_length": g.output_tokens_min,
            "token_throughput": g.throughput_tok_s_min,
            "tokens_per_unit": TOKENS_PER_UNIT,
            "unit_definition": f"{TOKENS_PER_UNIT:,} tokens",
            "qualifying_models": [],
        },
        "sla_requirements": {
            "max_latency_ms": g.ttft_ms_max,
            "quality_score_min": g.quality_index_min,
            "quality_index": g.quality_index_name,
            "availability_target": wire.percent(g.success_rate_permille_min, 1_000),
        },
        "trading_params": {
            "min_quantity": instrument.min_quantity_units,
            "max_quantity": instrument.max_quantity_units,
            "quantity_increment": instrument.quantity_increment_units,
            "price_tick": wire.usd(instrument.price_tick_usd_micros),
            "maker_fee_bps": instrument.maker_fee_bps,
            "taker_fee_bps": instrument.taker_fee_bps,
        },
        "created_at": listed_at,
        "updated_at": listed_at,
    }


def market_json(instrument: Instrument, listed_at: str) -> dict[str, Any]:
    """A Market (contract section 2), carrying its instrument's symbol."""
    symbol = instrument.instrument_id
    return {
        "market_id": symbol,
        "id": symbol,
        "name": f"{symbol}/{QUOTE_CURRENCY}",
        "description": f"{instrument.name}, quoted in {QUOTE_CURRENCY} per unit",
        "market_type": "spot",
        "status": "active",
        "symbol": symbol,
        "instrument_id": symbol,
        "instrument_symbol": symbol,
        "instrument_name": instrument.name,
        "quote_currency": QUOTE_CURRENCY,
        "price_tick": wire.usd(instrument.price_tick_usd_micros),
        "associated_instruments": [symbol],
        "instruments": [
            {
                "instrument_id": symbol,
                "instrument_type": "ai_commodity",
                "symbol": symbol,
                "name": instrument.name,
            }
        ],
        "created_at": listed_at,
        "updated_at": listed_at,
    }


def _levels(side: Side, depth: int) -> list[dict[str, Any]]:
    levels = []
    for price, open_units in islice(side.depth(), depth):
        orders = side.levels[price].orders
        count = sum(1 for o in orders if o.remaining_units and o.status in _OPEN)
        levels.append(
            {"price": wire.usd(price), "quantity": wire.units(open_units), "order_count": count}
        )
    return levels


_OPEN = ("active", "partially_filled")


# -- instruments --------------------------------------------------------------------------------


@router.get("/instruments")
@_answers
async def list_instruments(
    request: Request,
    limit: str | None = None,
    page_size: str | None = None,
    next: str | None = None,
    prev: str | None = None,
    symbol: str | None = None,
    instrument_type: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """The instrument catalogue, by id; filters `symbol`, `instrument_type`, `status`."""
    exchange, model = _running(request)
    params = _list_params(limit, page_size, next, prev)
    listed_at = _listed_at(model)
    rows = [
        instrument_json(i, listed_at)
        for _, i in sorted(exchange.state.instruments.items())
        if (symbol is None or i.instrument_id == symbol)
    ]
    rows = [
        r
        for r in rows
        if (instrument_type is None or r["instrument_type"] == instrument_type)
        and (status is None or r["status"] == status)
    ]
    page = _page(rows, [r["instrument_id"] for r in rows], _id_key, params, str)
    return {"data": page.items, "paging": page.paging}


@router.get("/instruments/by-symbol/{symbol}")
@_answers
async def get_instrument_by_symbol(request: Request, symbol: str) -> dict[str, Any]:
    """One instrument by symbol (the same as by id: the symbol is the id)."""
    exchange, model = _running(request)
    return {"data": instrument_json(_instrument(exchange, symbol), _listed_at(model))}


@router.get("/instruments/{instrument_id}")
@_answers
async def get_instrument(request: Request, instrument_id: str) -> dict[str, Any]:
    """One instrument."""
    exchange, model = _running(request)
    return {"data": instrument_json(_instrument(exchange, instrument_id), _listed_at(model))}


def _id_key(row: dict[str, Any]) -> str:
    key: str = row["id"]
    return key


# -- markets ------------------------------------------------------------------------------------


@router.get("/markets")
@_answers
async def list_markets(
    request: Request,
    limit: str | None = None,
    page_size: str | None = None,
    next: str | None = None,
    prev: str | None = None,
    status: str | None = None,
) -> dict[str, Any]:
    """One market per instrument, by id; filter `status`."""
    exchange, model = _running(request)
    params = _list_params(limit, page_size, next, prev)
    listed_at = _listed_at(model)
    rows = [market_json(i, listed_at) for _, i in sorted(exchange.state.instruments.items())]
    rows = [r for r in rows if status is None or r["status"] == status]
    page = _page(rows, [r["market_id"] for r in rows], _id_key, params, str)
    return {"data": page.items, "paging": page.paging}


@router.get("/markets/{market_id}")
@_answers
async def get_market(request: Request, market_id: str) -> dict[str, Any]:
    """One market."""
    exchange, model = _running(request)
    return {"data": market_json(_market(exchange, market_id), _listed_at(model))}


@router.get("/markets/{market_id}/orderbook")
@_answers
async def get_orderbook(
    request: Request, market_id: str, depth: str | None = None
) -> dict[str, Any]:
    """Aggregated price levels, best first, `depth` (1-1,000, default 20) a side."""
    exchange, model = _running(request)
    levels = _int_param("depth", depth, DEFAULT_DEPTH, 1, MAX_DEPTH)
    instrument = _market(exchange, market_id)
    book = exchange.state.books[instrument.instrument_id]
    # No await from here on: the snapshot is one consistent state (see the module docstring).
    bids = _levels(book.bids, levels)
    asks = _levels(book.asks, levels)
    return {
        "data": {
            "market_id": instrument.instrument_id,
            "symbol": instrument.instrument_id,
            "bids": bids,
            "asks": asks,
            "buy": bids,
            "sell": asks,
            "sequence": exchange.state.seq,
            "committed_sequence": _committed_seq(request),
            "timestamp": wire.timestamp(model.now_ms()),
        }
    }


def _committed_seq(request: Request) -> int:
    market: MarketService = request.app.state.market
    return market.sequencer.committed_seq


# -- trades, ticker, stats ----------------------------------------------------------------------


@router.get("/markets/{market_id}/trades")
@_answers
async def get_market_trades(
    request: Request,
    market_id: str,
    limit: str | None = None,
    page_size: str | None = None,
    next: str | None = None,
    prev: str | None = None,
) -> dict[str, Any]:
    """Recent public trades, newest first (the last 1,000 of the market are kept)."""
    exchange, model = await _committed(request)
    instrument = _market(exchange, market_id)
    params = _list_params(limit, page_size, next, prev)
    trades = model.recent_trades(instrument.instrument_id)
    sort_keys = [-t.trade_id for t in trades]
    page = _page(trades, sort_keys, lambda t: int(t.trade_id), params, int)
    return {"data": [_public_trade(t) for t in page.items], "paging": page.paging}


def _public_trade(trade: Trade) -> dict[str, Any]:
    executed_at = wire.timestamp(trade.ts_ms)
    return {
        "trade_id": str(trade.trade_id),
        "id": str(trade.trade_id),
        "market_id": trade.instrument_id,
        "symbol": trade.instrument_id,
        "price": wire.usd(trade.price_usd_micros),
        "quantity": wire.units(trade.quantity_units),
        "total_value": wire.usd(trade.price_usd_micros * trade.quantity_units),
        "side": trade.taker_side,
        "execution_timestamp": executed_at,
        "timestamp": executed_at,
    }


@router.get("/markets/{market_id}/ticker")
@_answers
async def get_ticker(request: Request, market_id: str) -> dict[str, Any]:
    """Last trade, best bid and ask, and the 24h figures.

    Prices are always strings, `"0.000"` meaning "none" (no trade yet, an empty side): the
    stricter sibling SDK requires `last_price`, `highest_bid` and `lowest_ask` as non-null
    strings (contract section 6), and The Grid's own WebSocket client reads a missing value
    as "0". Keys that may not be null are left out when there is nothing to say:
    `last_trade_*` before the first trade, `high_24h` / `low_24h` with no trade in 24 h.
    """
    exchange, model = await _committed(request)
    instrument = _market(exchange, market_id)
    symbol = instrument.instrument_id
    book = exchange.state.books[symbol]
    now_ms = model.now_ms()
    last = model.last_trade(symbol)
    stats = model.stats(symbol, now_ms)
    bid = wire.usd(book.best_bid() or 0)
    ask = wire.usd(book.best_ask() or 0)
    ticker: dict[str, Any] = {
        "market_id": symbol,
        "symbol": symbol,
        "last_price": wire.usd(last.price_usd_micros if last else 0),
        "highest_bid": bid,
        "lowest_ask": ask,
        "bid": bid,
        "ask": ask,
        "volume_24h": wire.units(stats.volume_units),
        "quote_volume_24h": wire.usd(stats.quote_volume_usd_micros),
        **_change(stats),
        "timestamp": wire.timestamp(now_ms),
    }
    if last is not None:
        ticker["last_trade_quantity"] = wire.units(last.quantity_units)
        ticker["last_trade_timestamp"] = wire.timestamp(last.ts_ms)
    if stats.high_usd_micros is not None and stats.low_usd_micros is not None:
        ticker["high_24h"] = wire.usd(stats.high_usd_micros)
        ticker["low_24h"] = wire.usd(stats.low_usd_micros)
    return {"data": ticker}


def _change(stats: Stats24h) -> dict[str, str]:
    """Last price in the window minus its first; the percentage of that first price."""
    if stats.open_usd_micros is None or stats.close_usd_micros is None:
        return {"price_change_24h": wire.usd(0), "price_change_percent_24h": "0.00"}
    change = stats.close_usd_micros - stats.open_usd_micros
    return {
        "price_change_24h": wire.usd(change),
        "price_change_percent_24h": wire.percent(change, stats.open_usd_micros),
    }


@router.get("/markets/{market_id}/stats")
@_answers
async def get_stats(request: Request, market_id: str) -> dict[str, Any]:
    """24h statistics, under The Grid SDK's names and the older docs' `*_24h` names both."""
    exchange, model = await _committed(request)
    instrument = _market(exchange, market_id)
    symbol = instrument.instrument_id
    now_ms = model.now_ms()
    stats = model.stats(symbol, now_ms)
    last = model.last_trade(symbol)

    def price(micros: int | None) -> str | None:
        return None if micros is None else wire.usd(micros)

    return {
        "data": {
            "market_id": symbol,
            "symbol": symbol,
            "open": price(stats.open_usd_micros),
            "high": price(stats.high_usd_micros),
            "low": price(stats.low_usd_micros),
            "close": price(stats.close_usd_micros),
            "volume": wire.units(stats.volume_units),
            "quote_volume": wire.usd(stats.quote_volume_usd_micros),
            "num_trades": stats.num_trades,
            "period_start": wire.timestamp(stats.period_start_ms),
            "period_end": wire.timestamp(stats.period_end_ms),
            "current_price": price(last.price_usd_micros if last else None),
            "high_24h": price(stats.high_usd_micros),
            "low_24h": price(stats.low_usd_micros),
            "volume_24h": wire.units(stats.volume_units),
            "volume_24h_tokens": str(stats.volume_units * TOKENS_PER_UNIT),
            "volume_24h_value": wire.usd(stats.quote_volume_usd_micros),
            **_change(stats),
        }
    }
