"""The live feed's event payloads, in The Grid's field names (grid-client-contract.md §5.1).

- `new_order` / `order_update`: under `payload.data`: order_id, client_order_id, market_id,
  trading_account_id, side, order_type, status, original_quantity, remaining_quantity,
  filled_quantity, price, average_fill_price, created_at, updated_at; all strings (the table
  says "strings unless noted"), `price` null for a market order, `average_fill_price` null
  before a fill. The REST Order's names (`type`, `quantity`, `fee`, ...) are added beside them.
- `new_trade`: under `payload.data`: trade_id, market_id, price, quantity, side (the taker's),
  executed_at, maker_order_id, taker_order_id.
- `market_ticker`: the payload itself: market_id, last_price, bid, ask, volume_24h, plus
  highest_bid / lowest_ask; a missing price is "0.000" (the client reads a missing value as 0).
- `book_snapshot` / `book_update` (ours, not The Grid's): see `gridmarket.api.feed`.
"""

from __future__ import annotations

from typing import Any

from gridmarket.api import wire
from gridmarket.core.events import Trade
from gridmarket.service.book_feed import BookSnapshot, LevelChange, OrderView


def _average_price(order: OrderView) -> str | None:
    if order.filled_units == 0:
        return None
    # Half up to the micro-USD, as the REST Order does.
    micros, remainder = divmod(order.filled_notional_usd_micros, order.filled_units)
    if 2 * remainder >= order.filled_units:
        micros += 1
    return wire.usd(micros)


def order(view: OrderView) -> dict[str, Any]:
    price = None if view.price_usd_micros is None else wire.usd(view.price_usd_micros)
    average = _average_price(view)
    return {
        "data": {
            "order_id": str(view.order_id),
            "id": str(view.order_id),
            "client_order_id": view.client_order_id,
            "market_id": view.instrument_id,
            "trading_account_id": view.account_id,
            "side": view.side,
            "order_type": view.order_type,
            "type": view.order_type,
            "status": view.status,
            "original_quantity": wire.units(view.quantity_units),
            "quantity": wire.units(view.quantity_units),
            "remaining_quantity": wire.units(view.remaining_units),
            "filled_quantity": wire.units(view.filled_units),
            "price": price,
            "average_fill_price": average,
            "average_price": average,
            "fee": wire.usd(view.fee_paid_usd_micros),
            "time_in_force": view.time_in_force,
            "post_only": view.post_only,
            "closure_reason": view.closure_reason,
            "created_at": wire.timestamp(view.created_ms),
            "updated_at": wire.timestamp(view.updated_ms),
        }
    }


def trade(event: Trade) -> dict[str, Any]:
    executed_at = wire.timestamp(event.ts_ms)
    return {
        "data": {
            "trade_id": str(event.trade_id),
            "market_id": event.instrument_id,
            "price": wire.usd(event.price_usd_micros),
            "quantity": wire.units(event.quantity_units),
            "total_value": wire.usd(event.price_usd_micros * event.quantity_units),
            "side": event.taker_side,
            "executed_at": executed_at,
            "execution_timestamp": executed_at,
            "maker_order_id": str(event.maker_order_id),
            "taker_order_id": str(event.taker_order_id),
        }
    }


def ticker(
    market_id: str,
    last_price_usd_micros: int | None,
    bid_usd_micros: int | None,
    ask_usd_micros: int | None,
    volume_24h_units: int,
    now_ms: int,
) -> dict[str, Any]:
    bid = wire.usd(bid_usd_micros or 0)
    ask = wire.usd(ask_usd_micros or 0)
    return {
        "market_id": market_id,
        "last_price": wire.usd(last_price_usd_micros or 0),
        "bid": bid,
        "ask": ask,
        "highest_bid": bid,
        "lowest_ask": ask,
        "volume_24h": wire.units(volume_24h_units),
        "timestamp": wire.timestamp(now_ms),
    }


def _levels(levels: list[tuple[int, int]]) -> list[dict[str, str]]:
    return [{"price": wire.usd(p), "quantity": wire.units(q)} for p, q in levels]


def book_snapshot(snapshot: BookSnapshot) -> dict[str, Any]:
    return {
        "market_id": snapshot.instrument_id,
        "sequence": snapshot.sequence,
        "seq": snapshot.seq,
        "bids": _levels(snapshot.bids),
        "asks": _levels(snapshot.asks),
    }


def book_update(market_id: str, seq: int, changes: list[LevelChange]) -> dict[str, Any]:
    return {
        "market_id": market_id,
        "seq": seq,
        "first_sequence": changes[0].sequence,
        "last_sequence": changes[-1].sequence,
        "changes": [
            {
                "sequence": c.sequence,
                "side": c.side,
                "price": wire.usd(c.price_usd_micros),
                "quantity": wire.units(c.quantity_units),
            }
            for c in changes
        ],
    }
