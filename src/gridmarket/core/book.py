"""One instrument's order book: price levels in price-time priority.

Each side keeps a dict price → `Level` (a FIFO deque of orders plus its open quantity) and a
sorted list of its prices, arranged so that the best price is always the last element (bids
ascending, asks stored negated). A cancelled order stays in its level's deque and is skipped
when it reaches the front (lazy deletion, O(1) cancel); the level's open quantity drops at once,
and a level whose open quantity reaches zero leaves the book immediately, so the book never shows
an empty level and never holds a crossed best bid/ask.
"""

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator

from gridmarket.core.orders import Order


class Level:
    __slots__ = ("open_units", "orders", "price_usd_micros")

    def __init__(self, price_usd_micros: int) -> None:
        self.price_usd_micros = price_usd_micros
        self.orders: deque[Order] = deque()
        self.open_units = 0

    def front(self) -> Order | None:
        """The oldest order that still has quantity, dropping dead ones on the way."""
        orders = self.orders
        while orders:
            order = orders[0]
            if order.remaining_units and order.status in ("active", "partially_filled"):
                return order
            orders.popleft()
        return None


class Side:
    """One side of a book. `sign` is +1 for bids (best = highest), -1 for asks (best = lowest)."""

    __slots__ = ("keys", "levels", "sign")

    def __init__(self, sign: int) -> None:
        self.sign = sign
        self.levels: dict[int, Level] = {}
        #: sign × price, ascending, so the best price is the last key.
        self.keys: list[int] = []

    def best(self) -> Level | None:
        if not self.keys:
            return None
        return self.levels[self.keys[-1] * self.sign]

    def add(self, order: Order) -> None:
        price = order.price_usd_micros
        assert price is not None
        level = self.levels.get(price)
        if level is None:
            level = Level(price)
            self.levels[price] = level
            insort(self.keys, price * self.sign)
        level.orders.append(order)
        level.open_units += order.remaining_units

    def reduce(self, level: Level, units: int) -> None:
        """Take `units` off a level's open quantity; drop the level when nothing is left."""
        level.open_units -= units
        assert level.open_units >= 0
        if level.open_units == 0:
            del self.levels[level.price_usd_micros]
            key = level.price_usd_micros * self.sign
            index = bisect_left(self.keys, key)
            assert self.keys[index] == key
            del self.keys[index]

    def depth(self) -> Iterator[tuple[int, int]]:
        """(price, open units) from the best price outwards."""
        sign = self.sign
        levels = self.levels
        for key in reversed(self.keys):
            price = key * sign
            yield price, levels[price].open_units

    def open_orders(self) -> Iterator[Order]:
        """Open orders in priority order."""
        for key in reversed(self.keys):
            for order in self.levels[key * self.sign].orders:
                if order.remaining_units and order.status in ("active", "partially_filled"):
                    yield order


class Book:
    __slots__ = ("asks", "bids", "instrument_id", "last_price_usd_micros", "market_seq")

    def __init__(self, instrument_id: str) -> None:
        self.instrument_id = instrument_id
        self.bids = Side(1)
        self.asks = Side(-1)
        self.last_price_usd_micros: int | None = None
        #: Trades so far in this market: each trade's `market_seq`.
        self.market_seq = 0

    def side_for(self, is_buy: bool) -> Side:
        return self.bids if is_buy else self.asks

    def opposite(self, is_buy: bool) -> Side:
        return self.asks if is_buy else self.bids

    def best_bid(self) -> int | None:
        return self.bids.keys[-1] if self.bids.keys else None

    def best_ask(self) -> int | None:
        return -self.asks.keys[-1] if self.asks.keys else None
