"""Failover order (DESIGN section 9): the funding suppliers first, then best ask first.

`SupplierDirectory.route` orders the endpoints; `best_asks` reads each supplier's lowest
resting ask off a real book, built here by the core itself.
"""

from __future__ import annotations

from gridmarket.gateway.contract import SupplierDirectory, SupplierEndpoint
from gridmarket.gateway.service import BEST_ASKS_SCAN_ORDERS, best_asks

from .helpers import TP, Market


def _endpoint(supplier_id: str) -> SupplierEndpoint:
    return SupplierEndpoint(supplier_id, TP, f"http://{supplier_id or 'operator'}/v1", "m")


def _directory(*supplier_ids: str) -> SupplierDirectory:
    directory = SupplierDirectory()
    for supplier_id in supplier_ids:
        directory.add(_endpoint(supplier_id))
    return directory


def _order(endpoints: list[SupplierEndpoint]) -> list[str]:
    return [e.supplier_id for e in endpoints]


def test_funding_suppliers_come_first_in_draw_order_then_the_best_ask() -> None:
    directory = _directory("", "dear", "cheap", "funder-b", "quiet", "funder-a", "mid")
    asks = {"dear": 3_000_000, "cheap": 1_000_000, "mid": 2_000_000, "funder-a": 9_000_000}
    routed = directory.route(TP, ["funder-a", "funder-b", "funder-a"], asks)
    # The operator's endpoint ("") and a supplier with no ask keep their added order, last.
    assert _order(routed) == ["funder-a", "funder-b", "cheap", "mid", "dear", "", "quiet"]


def test_without_asks_the_failover_order_is_the_order_endpoints_were_added() -> None:
    directory = _directory("c", "a", "b")
    assert _order(directory.route(TP, ["b"])) == ["b", "c", "a"]


def test_best_asks_reads_each_suppliers_lowest_resting_ask_from_the_book() -> None:
    m = Market()
    for name in ("s1", "s2", "s3"):
        m.supplier(name, units=10)
    m.sell("s1", 1, 2_500_000)
    m.sell("s2", 1, 1_500_000)
    m.sell("s1", 1, 1_200_000)  # s1's best is its second ask
    m.sell("s3", 1, 4_000_000)
    book = m.state.books[TP]
    found = best_asks(book.asks.open_orders(), {"s1", "s2", "nobody"})
    assert found == {"s1": 1_200_000, "s2": 1_500_000}


def test_best_asks_looks_only_so_far_down_the_book() -> None:
    m = Market()
    m.supplier("crowd", units=BEST_ASKS_SCAN_ORDERS + 1)
    m.supplier("far", units=1)
    for _ in range(BEST_ASKS_SCAN_ORDERS):
        m.sell("crowd", 1, 1_000_000)
    m.sell("far", 1, 1_001_000)  # behind the scanned orders: treated as not quoting
    book = m.state.books[TP]
    assert best_asks(book.asks.open_orders(), {"far"}) == {}
    assert best_asks(book.asks.open_orders(), {"crowd"}) == {"crowd": 1_000_000}
