"""Request parsing shared by the account, transfer and supply routes.

- `json_body(raw, allowed)`: a JSON object with only the `allowed` keys, else a 422.
- `quantity(value)`: a whole number of units >= 1, as a JSON integer (what The Grid's client
  sends) or a digit string; booleans, floats and anything else are a 422.
- `instrument_id(value)`: a non-empty string of at most 64 chars (whether it exists is the
  core's question, answered as `unknown_instrument`).
- `filters(query, names)`: plain `name=value` or The Grid's flop dialect
  (`flop[filters][i][field]=name&flop[filters][i][value]=v`, grid-client-contract.md line 33).
- `limit(query)`: 1 to 100, default 50, from `limit`, `page_size` or a flop `limit` field
  (`grid supply list` sends it that way, line 36).
- `Cursor`: opaque paging positions over (seq, index) keys, base64 of `c<seq>.<index>`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from gridmarket.api.errors import Problem, invalid
from gridmarket.service.account_history import AccountHistory
from gridmarket.service.followed import caught_up_model
from gridmarket.service.market import MarketService

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_INSTRUMENT_ID_CHARS = 64
MAX_QUANTITY_UNITS = 10**12
MAX_FLOP_FILTERS = 10
T = TypeVar("T")
_QUANTITY_TEXT = re.compile(r"[1-9][0-9]{0,11}")
_CURSOR_TEXT = re.compile(r"c([0-9]{1,18})\.([0-9]{1,6})")


def market(request: Request) -> MarketService:
    running = request.app.state.market
    if not isinstance(running, MarketService):
        raise Problem(503, "service_unavailable", "the market service is not running")
    return running


async def history(request: Request) -> tuple[MarketService, AccountHistory]:
    """The market and the account history, once it holds every acknowledged command."""
    running = market(request)
    model = await caught_up_model(request.app.state, "account_history", AccountHistory)
    if model is None:
        raise Problem(503, "service_unavailable", "the account history is not running")
    return running, model


def json_body(raw: bytes, allowed: frozenset[str]) -> dict[str, Any]:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(422, "validation_error", "body: must be a JSON object") from None
    if not isinstance(body, dict):
        raise Problem(422, "validation_error", "body: must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(unknown[0], "unknown field; allowed: " + ", ".join(sorted(allowed)))
    return body


def quantity(body: dict[str, Any]) -> int:
    if "quantity" not in body:
        raise invalid("quantity", "required, a whole number of units >= 1")
    value = body["quantity"]
    if type(value) is int and 0 < value < MAX_QUANTITY_UNITS:
        return value
    if isinstance(value, str) and _QUANTITY_TEXT.fullmatch(value):
        return int(value)
    raise invalid("quantity", "must be a whole number of units from 1 to 999999999999, e.g. 10")


def instrument_id(body: dict[str, Any]) -> str:
    value = body.get("instrument_id")
    if not isinstance(value, str) or not 0 < len(value) <= MAX_INSTRUMENT_ID_CHARS:
        raise invalid("instrument_id", f"required, a string of 1 to {MAX_INSTRUMENT_ID_CHARS}")
    return value


def filters(query: Any, names: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {name: query[name] for name in names if name in query}
    for prefix in ("flop[filters]", "filters"):
        for i in range(MAX_FLOP_FILTERS):
            field = query.get(f"{prefix}[{i}][field]")
            if field is None:
                break
            value = query.get(f"{prefix}[{i}][value]")
            if field in names and value is not None:
                found.setdefault(field, value)
    return found


def limit(query: Any) -> int:
    raw = query.get("limit") or query.get("page_size") or filters(query, ("limit",)).get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if re.fullmatch(r"[0-9]{1,4}", raw.strip()) is None or not 1 <= int(raw) <= MAX_LIMIT:
        raise invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def encode_cursor(seq: int, index: int) -> str:
    return base64.urlsafe_b64encode(f"c{seq}.{index}".encode()).rstrip(b"=").decode()


def decode_cursor(name: str, raw: str) -> tuple[int, int]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (ValueError, binascii.Error, UnicodeError):
        raise invalid(name, "malformed cursor") from None
    match = _CURSOR_TEXT.fullmatch(text)
    if match is None:
        raise invalid(name, "malformed cursor")
    return int(match[1]), int(match[2])


def page(
    records: list[T],
    key: Callable[[T], tuple[int, int]],
    query: Any,
    keep: Callable[[T], bool],
) -> tuple[list[T], dict[str, Any]]:
    """One page of `records` (oldest first), newest first, with The Grid's paging object.

    `key(record)` is its (seq, index) position; `keep(record)` applies the filters. `next`
    goes to older records, `prev` to newer ones (mutually exclusive).
    """
    size = limit(query)
    next_raw, prev_raw = query.get("next"), query.get("prev")
    if next_raw is not None and prev_raw is not None:
        raise invalid("next", "next and prev are mutually exclusive")
    chosen: list[T] = []
    if prev_raw is not None:
        after = decode_cursor("prev", prev_raw)
        newer = [r for r in records if key(r) > after and keep(r)]
        chosen = list(reversed(newer[:size]))
        has_newer, has_older = len(newer) > size, True
    else:
        before = None if next_raw is None else decode_cursor("next", next_raw)
        has_older = False
        for record in reversed(records):
            if before is not None and key(record) >= before:
                continue
            if not keep(record):
                continue
            if len(chosen) == size:
                has_older = True
                break
            chosen.append(record)
        has_newer = before is not None
    paging = {
        "has_more": has_older,
        "next_cursor": encode_cursor(*key(chosen[-1])) if has_older and chosen else None,
        "prev_cursor": encode_cursor(*key(chosen[0])) if has_newer and chosen else None,
    }
    return chosen, paging
