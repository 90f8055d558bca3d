"""Typed results for the public market data: instruments, markets, book, ticker, trades, stats.

Frozen dataclasses, parsed leniently from The Grid's field names (grid-client-contract.md §2,
grid-api-notes.md §4.1-4.2): prices as `Decimal`, quantities as `int`, timestamps as the ISO
strings sent, absent optional fields as None. `parse(obj)` raises `ResponseFormatError` when a
required field is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Self

from gridmarket.client.parse import Fields


@dataclass(frozen=True, slots=True)
class Health:
    status: str
    service: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "health")
        return cls(status=f.text("status"), service=f.opt_text("service"))


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_id: str
    symbol: str
    name: str
    instrument_type: str | None
    status: str | None
    is_active: bool | None
    precision: int | None
    description: str | None
    price_tick: Decimal | None
    min_quantity: int | None
    max_quantity: int | None
    quantity_increment: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "instrument")
        params = f.sub("trading_params") or Fields({}, "instrument.trading_params")
        instrument_id = f.text("instrument_id", "id")
        return cls(
            instrument_id=instrument_id,
            symbol=f.opt_text("symbol") or instrument_id,
            name=f.opt_text("name") or instrument_id,
            instrument_type=f.opt_text("instrument_type"),
            status=f.opt_text("status"),
            is_active=f.opt_bool("is_active"),
            precision=f.opt_whole("precision"),
            description=f.opt_text("description"),
            price_tick=params.opt_dec("price_tick"),
            min_quantity=params.opt_whole("min_quantity"),
            max_quantity=params.opt_whole("max_quantity"),
            quantity_increment=params.opt_whole("quantity_increment"),
        )


@dataclass(frozen=True, slots=True)
class Market:
    market_id: str
    name: str
    status: str
    market_type: str | None
    description: str | None
    instrument_id: str | None
    price_tick: Decimal | None
    associated_instruments: tuple[str, ...]

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "market")
        market_id = f.text("market_id", "id")
        return cls(
            market_id=market_id,
            name=f.opt_text("name") or market_id,
            status=f.text("status"),
            market_type=f.opt_text("market_type"),
            description=f.opt_text("description"),
            instrument_id=f.opt_text("instrument_id"),
            price_tick=f.opt_dec("price_tick"),
            associated_instruments=f.strs("associated_instruments"),
        )


@dataclass(frozen=True, slots=True)
class BookLevel:
    price: Decimal
    quantity: int
    order_count: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "orderbook level")
        return cls(
            price=f.dec("price"),
            quantity=f.whole("quantity", "size"),
            order_count=f.opt_whole("order_count"),
        )


def _levels(f: Fields, *names: str) -> tuple[BookLevel, ...]:
    # The client takes the first present of bids/buy (asks/sell), else an empty side (§2).
    for name in names:
        value = f.raw(name)
        if isinstance(value, list):
            return tuple(BookLevel.parse(level) for level in value)
    return ()


@dataclass(frozen=True, slots=True)
class OrderBook:
    market_id: str | None
    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    sequence: int | None
    timestamp: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "orderbook")
        return cls(
            market_id=f.opt_text("market_id"),
            bids=_levels(f, "bids", "buy"),
            asks=_levels(f, "asks", "sell"),
            sequence=f.opt_whole("sequence"),
            timestamp=f.opt_text("timestamp"),
        )

    @property
    def best_bid(self) -> Decimal | None:
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        return self.asks[0].price if self.asks else None


@dataclass(frozen=True, slots=True)
class Ticker:
    """Last price, best bid and ask (None when there is none; a zero price reads as None)."""

    market_id: str | None
    last_price: Decimal | None
    highest_bid: Decimal | None
    lowest_ask: Decimal | None
    volume_24h: Decimal
    quote_volume_24h: Decimal | None
    high_24h: Decimal | None
    low_24h: Decimal | None
    price_change_24h: Decimal | None
    price_change_percent_24h: Decimal | None
    last_trade_quantity: int | None
    last_trade_timestamp: str | None
    timestamp: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "ticker")
        return cls(
            market_id=f.opt_text("market_id"),
            last_price=f.opt_price("last_price"),
            highest_bid=f.opt_price("highest_bid", "bid"),
            lowest_ask=f.opt_price("lowest_ask", "ask"),
            volume_24h=f.dec("volume_24h"),
            quote_volume_24h=f.opt_dec("quote_volume_24h"),
            high_24h=f.opt_dec("high_24h"),
            low_24h=f.opt_dec("low_24h"),
            price_change_24h=f.opt_dec("price_change_24h"),
            price_change_percent_24h=f.opt_dec("price_change_percent_24h"),
            last_trade_quantity=f.opt_whole("last_trade_quantity"),
            last_trade_timestamp=f.opt_text("last_trade_timestamp"),
            timestamp=f.opt_text("timestamp"),
        )


@dataclass(frozen=True, slots=True)
class PublicTrade:
    trade_id: str
    market_id: str
    price: Decimal
    quantity: int
    side: str | None
    execution_timestamp: str | None
    total_value: Decimal | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "public trade")
        return cls(
            trade_id=f.text("trade_id", "id"),
            market_id=f.text("market_id"),
            price=f.dec("price"),
            quantity=f.whole("quantity"),
            side=f.opt_text("side"),
            execution_timestamp=f.opt_text("execution_timestamp", "timestamp"),
            total_value=f.opt_dec("total_value"),
        )


@dataclass(frozen=True, slots=True)
class MarketStats:
    market_id: str | None
    open: Decimal | None
    high: Decimal | None
    low: Decimal | None
    close: Decimal | None
    volume: Decimal | None
    quote_volume: Decimal | None
    num_trades: int | None
    period_start: str | None
    period_end: str | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "market stats")
        return cls(
            market_id=f.opt_text("market_id"),
            open=f.opt_dec("open"),
            high=f.opt_dec("high"),
            low=f.opt_dec("low"),
            close=f.opt_dec("close"),
            volume=f.opt_dec("volume"),
            quote_volume=f.opt_dec("quote_volume"),
            num_trades=f.opt_whole("num_trades"),
            period_start=f.opt_text("period_start"),
            period_end=f.opt_text("period_end"),
        )


@dataclass(frozen=True, slots=True)
class Candle:
    """One OHLCV period of GET /v1/price-histories."""

    market_id: str | None
    resolution: str | None
    period_start: str
    period_end: str | None
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    quote_volume: Decimal | None
    num_trades: int | None

    @classmethod
    def parse(cls, obj: object) -> Self:
        f = Fields(obj, "candle")
        return cls(
            market_id=f.opt_text("market_id"),
            resolution=f.opt_text("resolution"),
            period_start=f.text("period_start", "time"),
            period_end=f.opt_text("period_end"),
            open=f.dec("open"),
            high=f.dec("high"),
            low=f.dec("low"),
            close=f.dec("close"),
            volume=f.dec("volume"),
            quote_volume=f.opt_dec("quote_volume"),
            num_trades=f.opt_whole("num_trades", "trade_count"),
        )
