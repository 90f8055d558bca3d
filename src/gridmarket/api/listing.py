"""Query parameters shared by the signed lists (GET /v1/orders, GET /v1/trades).

Filters come plain (`?side=buy&status=active,filled`, `status[]=a&status[]=b`) or in The Grid's
Flop dialects (grid-client-contract.md §1.1, grid-api-notes.md §5): `flop[filters][i][field]`,
`[op]`, `[value]` (or `[value][]`), and the same under a bare `filters[i]`. Equality fields take
op `==` (the default), `=` or `in`; several values of one field match any of them. A field a
list does not know is ignored (the client also sends e.g. `limit` as a filter field); a known
field with another op is a 422.

Time: `start_datetime` / `end_datetime` (or `from_date` / `to_date`, or a Flop filter on the
time column with `>=`, `>`, `<=`, `<`), each ISO 8601 (a naive time is UTC) or Unix seconds.
Both bounds are inclusive.

Paging (`page`): `limit` 1-100 (default 50, `page_size` an alias), `order_direction` `asc`
(the default, grid-api-notes §4.3/§4.4) or `desc`, and one of `next` / `prev` holding an opaque
cursor from `paging`. A next cursor names the last item of a page, a prev cursor the first:
the next page holds the items after it in the listing's direction, the prev page the `limit`
items before it, both returned in the listing's direction. `paging.next_cursor` /
`prev_cursor` are null when there is nothing on that side; `has_more` is
`next_cursor is not null`. Keys are the list's ascending ids; an item's time never decreases
with its id (ids are sequence numbers), so the time range is two bisections.
"""

from __future__ import annotations

import base64
import binascii
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from gridmarket.api.errors import invalid

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
#: Flop filters read per request, and values per field: a bound on what a query can ask.
MAX_FILTERS = 20
MAX_VALUES = 20
#: Unix seconds accepted: 1970 to 9999.
MAX_UNIX_S = 253_402_300_799
_ID_TEXT = re.compile(r"[1-9][0-9]{0,17}")
_UNIX_TEXT = re.compile(r"[0-9]{1,12}")
_EQUALITY_OPS = ("==", "=", "in")
_START_OPS = {">=": 0, ">": 1}
_END_OPS = {"<=": 0, "<": -1}


class Filters(NamedTuple):
    #: Equality filters: field -> the values it may take (any of them).
    equal: dict[str, frozenset[str]]
    #: Inclusive time bounds in epoch milliseconds.
    start_ms: int | None
    end_ms: int | None


def parse_time(field: str, raw: str) -> int:
    """ISO 8601 (naive is UTC) or Unix seconds, as epoch milliseconds."""
    text = raw.strip()
    if _UNIX_TEXT.fullmatch(text):
        seconds = int(text)
        if seconds > MAX_UNIX_S:
            raise invalid(field, "Unix seconds out of range")
        return seconds * 1_000
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise invalid(field, "must be ISO 8601 (2026-01-01T00:00:00Z) or Unix seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    except OverflowError:  # pragma: no cover - only at the calendar's very ends
        raise invalid(field, "out of range") from None
    return (delta.days * 86_400 + delta.seconds) * 1_000 + delta.microseconds // 1_000


def _values(query: Any, key: str) -> list[str]:
    found: list[str] = []
    for raw in (*query.getlist(key), *query.getlist(key + "[]")):
        found.extend(part for part in raw.split(",") if part)
    if len(found) > MAX_VALUES:
        raise invalid(key, f"at most {MAX_VALUES} values")
    return found


def parse_filters(
    query: Any,
    fields: frozenset[str],
    *,
    time_columns: tuple[str, ...],
    aliases: dict[str, str] | None = None,
) -> Filters:
    """The equality filters on `fields` and the time range, plain and Flop (module docstring).

    `aliases` maps an accepted field name to the one it filters (`instrument_id` ->
    `market_id`); `time_columns` are the fields a Flop range filter may name (`submitted_at`).
    """
    rename = aliases or {}
    equal: dict[str, set[str]] = {}
    bounds: dict[str, list[int]] = {"start": [], "end": []}

    def add(field: str, op: str, values: list[str]) -> None:
        name = rename.get(field, field)
        if field in ("start_datetime", "from_date", "from"):
            bounds["start"].extend(parse_time(field, v) for v in values)
        elif field in ("end_datetime", "to_date", "to"):
            bounds["end"].extend(parse_time(field, v) for v in values)
        elif field in time_columns:
            if op in _START_OPS:
                bounds["start"].extend(parse_time(field, v) + _START_OPS[op] for v in values)
            elif op in _END_OPS:
                bounds["end"].extend(parse_time(field, v) + _END_OPS[op] for v in values)
            else:
                raise invalid(field, "op must be one of >=, >, <=, <")
        elif name in fields:
            if op not in _EQUALITY_OPS:
                raise invalid(field, "op must be one of " + ", ".join(_EQUALITY_OPS))
            equal.setdefault(name, set()).update(values)
        # Other fields are ignored, as the client also sends e.g. `limit` as a filter.

    for field in (*fields, *rename, "start_datetime", "end_datetime", "from_date", "to_date"):
        values = _values(query, field)
        if values:
            add(field, "==", values)
    for prefix in ("flop[filters]", "filters"):
        for i in range(MAX_FILTERS):
            field = query.get(f"{prefix}[{i}][field]")
            if field is None:
                break
            values = _values(query, f"{prefix}[{i}][value]")
            if values:
                add(field, query.get(f"{prefix}[{i}][op]") or "==", values)
    return Filters(
        {name: frozenset(values) for name, values in equal.items()},
        max(bounds["start"], default=None),
        min(bounds["end"], default=None),
    )


# -- paging -------------------------------------------------------------------------------------


class Paging(NamedTuple):
    limit: int
    descending: bool
    #: The cursor's key and whether it is a prev cursor (travel against the listing).
    cursor: int | None
    backwards: bool


def parse_paging(query: Any, prefix: str) -> Paging:
    raw_limit = query.get("limit") or query.get("page_size")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        text = raw_limit.strip()
        if re.fullmatch(r"[0-9]{1,4}", text) is None or not 1 <= int(text) <= MAX_LIMIT:
            raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
        limit = int(text)
    direction = (query.get("order_direction") or query.get("order_directions[]") or "asc").lower()
    if direction not in ("asc", "desc"):
        raise invalid("order_direction", "must be asc or desc")
    after, before = query.get("next"), query.get("prev")
    if after is not None and before is not None:
        raise invalid("next", "give next or prev, not both")
    if after is not None:
        return Paging(limit, direction == "desc", decode_cursor("next", after, prefix), False)
    if before is not None:
        return Paging(limit, direction == "desc", decode_cursor("prev", before, prefix), True)
    return Paging(limit, direction == "desc", None, False)


def encode_cursor(prefix: str, key: int) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{key}".encode()).rstrip(b"=").decode()


def decode_cursor(name: str, raw: str, prefix: str) -> int:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid(name, "malformed cursor") from None
    if not text.startswith(prefix) or _ID_TEXT.fullmatch(text[len(prefix) :]) is None:
        raise invalid(name, "malformed cursor")
    return int(text[len(prefix) :])


class Page(NamedTuple):
    keys: list[int]
    paging: dict[str, Any]


def time_range(
    keys: Sequence[int], time_of: Callable[[int], int], filters: Filters
) -> tuple[int, int]:
    """The index range of `keys` whose time is within the filters' bounds."""
    lo, hi = 0, len(keys)
    if filters.start_ms is not None:
        lo = bisect_left(keys, filters.start_ms, key=time_of)
    if filters.end_ms is not None:
        hi = bisect_right(keys, filters.end_ms, lo, hi, key=time_of)
    return lo, hi


def page(
    keys: Sequence[int],
    bounds: tuple[int, int],
    keep: Callable[[int], bool],
    paging: Paging,
    prefix: str,
) -> Page:
    """One page of the ascending `keys[lo:hi]` that `keep` accepts (module docstring)."""
    lo, hi = bounds
    step = -1 if paging.descending != paging.backwards else 1
    cursor = paging.cursor
    if cursor is None:
        start = lo if step == 1 else hi - 1
    elif step == 1:
        start = max(lo, bisect_right(keys, cursor, lo, hi))
    else:
        start = min(hi, bisect_left(keys, cursor, lo, hi)) - 1
    chosen: list[int] = []
    i = start
    while lo <= i < hi and len(chosen) <= paging.limit:
        if keep(keys[i]):
            chosen.append(keys[i])
        i += step
    more_ahead = len(chosen) > paging.limit
    del chosen[paging.limit :]
    behind = False
    if cursor is not None:
        i = start - step
        while lo <= i < hi and not behind:
            behind = keep(keys[i])
            i -= step
    if paging.backwards:
        chosen.reverse()
        after_last, before_first = behind, more_ahead
    else:
        after_last, before_first = more_ahead, behind
    next_cursor = encode_cursor(prefix, chosen[-1]) if chosen and after_last else None
    prev_cursor = encode_cursor(prefix, chosen[0]) if chosen and before_first else None
    paging_json = {"next_cursor": next_cursor, "prev_cursor": prev_cursor}
    return Page(chosen, {"has_more": next_cursor is not None} | paging_json)
