"""Public OHLCV candles: `GET /v1/price-histories`.

    GET /v1/price-histories?market_id=text-prime&resolution=1h&from=1767225600&to=1767312000

Query (plain keys, or The Grid client's bare Flop: `filters[i][field]=<name>` with
`filters[i][value]=<v>` for market_id, resolution, from and to, plus `order_by[]=period_start`
and `order_directions[]=asc|desc`; a key given both ways must agree):

- `market_id` (required): an unknown market is a 404.
- `resolution` (required): `1m 5m 15m 1h 4h 1d 1w`; anything else is a 422.
- `from`, `to`: unix seconds, or ISO 8601 (a time without an offset is UTC). `to` defaults to
  now; `from` to `limit` periods before `to` (no earlier than what is retained). `from > to`
  is a 422. A candle is returned when its period overlaps `[from, to]`; candles are whole
  periods, so the first may start before `from` and the last end after `to`.
- `limit` (alias `page_size`): 1-1,000 candles a page, default 1,000 (The Grid's client never
  pages, so it gets the most a page holds); `next` / `prev` cursors as elsewhere.
- `order_by` / `order_direction`: `period_start`, `asc` (default) or `desc`.

A candle: `{market_id, resolution, period_start, period_end, open, high, low, close, volume,
quote_volume, num_trades}`, timestamps ISO 8601 UTC with milliseconds, prices USD per unit as
decimal strings from exact micro-USD, volume in units, quote_volume in USD. Periods are
aligned to UTC, weeks start on Monday; only periods with at least one trade have a candle.
Retention (how far back each resolution goes) is `service.candles`: a range starting before
it is a 422 `range_not_retained` naming the oldest period still held; a coarser resolution
reaches further back.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request

from gridmarket.api import wire
from gridmarket.api.errors import Problem
from gridmarket.api.errors import invalid as _invalid
from gridmarket.api.listing import parse_time
from gridmarket.api.market_data import (
    _answers,
    _committed,
    _decode_cursor,
    _encode_cursor,
    _int_param,
    _market,
)
from gridmarket.service.candles import RESOLUTIONS_MS, Candle, NotRetained

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 1_000
#: ISO 8601 text up to this many characters (the year-9999 bound on Unix seconds is
#: `listing.MAX_UNIX_S`, shared with the other lists' time filters).
MAX_TIME_CHARS = 40
#: At most this many `filters[i]` entries; i is 0-15.
MAX_FILTERS = 16

FILTER_FIELDS = ("market_id", "resolution", "from", "to")
_FILTER_KEY = re.compile(r"filters\[([0-9]{1,2})\]\[(field|value)\]")

router = APIRouter(prefix="/v1", tags=["market data"])


@router.get("/price-histories")
@_answers
async def get_price_histories(request: Request) -> dict[str, Any]:
    """OHLCV candles of one market (see the module docstring)."""
    query = _query(request)
    market_id = _required(query, "market_id")
    resolution = _required(query, "resolution")
    if resolution not in RESOLUTIONS_MS:
        raise _invalid("resolution", f"must be one of {', '.join(RESOLUTIONS_MS)}")
    resolution_ms = RESOLUTIONS_MS[resolution]
    limit_name = "limit" if "limit" in query else "page_size"
    limit = _int_param(limit_name, query.get(limit_name), DEFAULT_LIMIT, 1, MAX_LIMIT)
    descending = _descending(query)
    next_cursor, prev_cursor = query.get("next"), query.get("prev")
    if next_cursor is not None and prev_cursor is not None:
        raise _invalid("next", "next and prev cannot be used together")

    exchange, model = await _committed(request)
    symbol = _market(exchange, market_id).instrument_id
    to_ms = _time_ms("to", query.get("to"), model.now_ms())
    from_raw = query.get("from")
    if from_raw is None:
        from_ms = max(to_ms - limit * resolution_ms, 0)
        oldest = model.candles_retained_from_ms(symbol, resolution)
        if oldest is not None and from_ms < oldest <= to_ms:
            from_ms = oldest  # a default never reaches before the retention
    else:
        from_ms = _time_ms("from", from_raw, 0)
    if from_ms > to_ms:
        raise _invalid("from", "must not be after to")
    try:
        candles = model.candles(symbol, resolution, from_ms, to_ms)
    except NotRetained as gone:
        oldest_text = wire.timestamp(gone.retained_from_ms)
        raise Problem(
            422,
            "range_not_retained",
            f"from: {resolution} candles are kept from {oldest_text}"
            f" ({gone.retained_from_ms // 1000}); ask from then, or a coarser resolution",
        ) from None
    if descending:
        candles.reverse()
    page, paging = _page(candles, limit, descending, next_cursor, prev_cursor)
    return {"data": [_candle_json(symbol, resolution, c) for c in page], "paging": paging}


# -- query --------------------------------------------------------------------------------------


def _query(request: Request) -> dict[str, str]:
    """Plain keys and bare-Flop filters folded into one mapping, refusing contradictions."""
    plain: dict[str, str] = {}
    fields: dict[int, str] = {}
    values: dict[int, str] = {}
    for key, value in request.query_params.multi_items():
        match = _FILTER_KEY.fullmatch(key)
        if match is not None:
            index = int(match[1])
            if index >= MAX_FILTERS:
                raise _invalid(key, f"at most {MAX_FILTERS} filters")
            (fields if match[2] == "field" else values)[index] = value
            continue
        name = {"order_by[]": "order_by", "order_directions[]": "order_direction"}.get(key, key)
        if plain.get(name, value) != value:
            raise _invalid(name, "given more than once with different values")
        plain[name] = value
    for index in sorted(fields.keys() | values.keys()):
        field, filtered = fields.get(index), values.get(index)
        if field is None or filtered is None:
            raise _invalid(f"filters[{index}]", "needs both [field] and [value]")
        if field not in FILTER_FIELDS:
            raise _invalid(f"filters[{index}][field]", f"must be one of {', '.join(FILTER_FIELDS)}")
        if plain.get(field, filtered) != filtered:
            raise _invalid(field, "given more than once with different values")
        plain[field] = filtered
    return plain


def _required(query: dict[str, str], name: str) -> str:
    value = query.get(name)
    if not value:
        raise _invalid(name, "is required")
    return value


def _descending(query: dict[str, str]) -> bool:
    order_by = query.get("order_by", "period_start")
    if order_by != "period_start":
        raise _invalid("order_by", "must be period_start")
    direction = query.get("order_direction", "asc")
    if direction not in ("asc", "desc"):
        raise _invalid("order_direction", "must be asc or desc")
    return direction == "desc"


def _time_ms(name: str, raw: str | None, default_ms: int) -> int:
    """Unix seconds or ISO 8601 (UTC when it has no offset) as epoch milliseconds
    (`listing.parse_time`), bounded in length and to times from 1970 on."""
    if raw is None:
        return default_ms
    why = "must be unix seconds or an ISO 8601 time from 1970 to 9999"
    if len(raw.strip()) > MAX_TIME_CHARS:
        raise _invalid(name, why)
    ms = parse_time(name, raw)
    if ms < 0:
        raise _invalid(name, why)
    return ms


# -- answer -------------------------------------------------------------------------------------


def _page(
    candles: list[Candle],
    limit: int,
    descending: bool,
    next_cursor: str | None,
    prev_cursor: str | None,
) -> tuple[list[Candle], dict[str, Any]]:
    """One page of `candles` (already in the answer's order), keyed by period start.

    A cursor carries the period start it continues from, so it stays valid as the current
    candle grows or new candles appear after it.
    """
    if next_cursor is not None:
        key = _cursor_key("next", next_cursor)
        start = _count_before(candles, key, descending, inclusive=True)
        end = min(len(candles), start + limit)
    elif prev_cursor is not None:
        key = _cursor_key("prev", prev_cursor)
        end = _count_before(candles, key, descending, inclusive=False)
        start = max(0, end - limit)
    else:
        start, end = 0, min(len(candles), limit)
    chosen = candles[start:end]
    has_more = end < len(candles)
    paging = {
        "has_more": has_more,
        "next_cursor": (
            _encode_cursor("n", chosen[-1].period_start_ms) if chosen and has_more else None
        ),
        "prev_cursor": (
            _encode_cursor("p", chosen[0].period_start_ms) if chosen and start > 0 else None
        ),
    }
    return chosen, paging


def _cursor_key(name: str, raw: str) -> int:
    key = _decode_cursor(name, raw, int)
    assert isinstance(key, int)
    return key


def _count_before(candles: list[Candle], key: int, descending: bool, *, inclusive: bool) -> int:
    """How many candles come before the one starting at `key` (and it too, if `inclusive`)."""
    count = 0
    for candle in candles:
        start = candle.period_start_ms
        after = start < key if descending else start > key
        if after or (start == key and not inclusive):
            break
        count += 1
    return count


def _candle_json(market_id: str, resolution: str, candle: Candle) -> dict[str, Any]:
    return {
        "market_id": market_id,
        "resolution": resolution,
        "period_start": wire.timestamp(candle.period_start_ms),
        "period_end": wire.timestamp(candle.period_end_ms),
        "open": wire.usd(candle.open_usd_micros),
        "high": wire.usd(candle.high_usd_micros),
        "low": wire.usd(candle.low_usd_micros),
        "close": wire.usd(candle.close_usd_micros),
        "volume": wire.units(candle.volume_units),
        "quote_volume": wire.usd(candle.quote_volume_usd_micros),
        "num_trades": candle.num_trades,
    }
