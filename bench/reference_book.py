"""The simplest correct price-time order book we could write: the baseline for bench/matching.py.

No ledger, no events, no validation: limit orders rest, market orders sweep, cancels remove.
Each price level is [open quantity, FIFO deque of orders] in a dict, beside a sorted price
list; cancelled orders are skipped lazily. It counts trades so the work cannot be skipped.
"""

from bisect import bisect_left, insort
from collections import deque
from typing import Any


class ReferenceBook:
    def __init__(self) -> None:
        self.levels: tuple[dict[int, list[Any]], dict[int, list[Any]]] = ({}, {})
        self.prices: tuple[list[int], list[int]] = ([], [])  # both ascending
        self.orders: dict[int, list[int]] = {}  # id -> [id, side, price, remaining]
        self.trades = 0

    def _take(self, side: int, price: int, quantity: int) -> None:
        level = self.levels[side][price]
        level[0] -= quantity
        if level[0] == 0:
            del self.levels[side][price]
            prices = self.prices[side]
            del prices[bisect_left(prices, price)]

    def place(self, order_id: int, side: int, price: int | None, quantity: int) -> None:
        """side 0 buys, 1 sells; price None is a market order."""
        other = 1 - side
        prices = self.prices[other]
        while quantity and prices:
            best = prices[0] if side == 0 else prices[-1]
            if price is not None and (best > price if side == 0 else best < price):
                break
            queue = self.levels[other][best][1]
            maker = queue[0]
            if maker[3] == 0:
                queue.popleft()
                continue
            traded = min(quantity, maker[3])
            maker[3] -= traded
            quantity -= traded
            self.trades += 1
            if maker[3] == 0:
                queue.popleft()
                del self.orders[maker[0]]
            self._take(other, best, traded)
        if quantity and price is not None:
            order = [order_id, side, price, quantity]
            self.orders[order_id] = order
            levels = self.levels[side]
            level = levels.get(price)
            if level is None:
                level = levels[price] = [0, deque()]
                insort(self.prices[side], price)
            level[0] += quantity
            level[1].append(order)

    def cancel(self, order_id: int) -> None:
        order = self.orders.pop(order_id, None)
        if order is None:
            return
        remaining, order[3] = order[3], 0
        self._take(order[1], order[2], remaining)
