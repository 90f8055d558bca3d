"""Wide generators for commands and market configurations, shared by the property tests.

Values lean towards ones that make the market do something (prices clustered near a mid so
orders cross, small quantities, known accounts) but keep a steady share of the awkward ones:
prices off the tick, zero, negative and huge numbers, unknown accounts and instruments, bad
enum values, repeated `client_order_id`s.
"""

import functools
from dataclasses import replace

from hypothesis import strategies as st

from gridmarket.core import commands as c
from gridmarket.core.ids import InstrumentId
from gridmarket.core.instruments import Instrument, default_catalogue
from gridmarket.core.state import ExchangeConfig

CONSUMERS = ("c1", "c2", "c3")
SUPPLIERS = ("s1", "s2")
KNOWN_ACCOUNTS = CONSUMERS + SUPPLIERS
ODD_ACCOUNTS = ("ghost", "", "operator", "external", "a/b", "x" * 65)
INSTRUMENTS = ("text-prime", "text-local")
UNKNOWN_INSTRUMENT = "no-such-model"
CALL_IDS = ("k1", "k2", "k3")
MAX_PRICE = 10**12

accounts = st.sampled_from(KNOWN_ACCOUNTS * 6 + ODD_ACCOUNTS)
instruments = st.sampled_from(INSTRUMENTS * 8 + (UNKNOWN_INSTRUMENT,))
sides = st.sampled_from(("buy", "sell") * 8 + ("BUY", ""))
order_types = st.sampled_from(("limit",) * 5 + ("market",) * 3 + ("stop",))
times_in_force = st.sampled_from(("gtc",) * 5 + ("ioc", "fok") * 2 + ("day",))
post_only = st.sampled_from((False, False, False, True))
client_order_ids = st.sampled_from((None,) * 4 + ("a", "b"))
rare_client_order_ids = st.sampled_from((None,) * 10 + ("a", "b"))
auto_transfer = st.sampled_from((None, None, True, False))
quantities = st.one_of(
    st.integers(1, 12),
    st.integers(1, 12),
    st.sampled_from((0, -1, 2, 4, 100, 10**6, 10**6 + 1, 10**9)),
)
usd_amounts = st.one_of(
    st.integers(1, 3 * 10**7),
    st.sampled_from((0, -1, 1, 10**15, 10**15 + 1)),
)
unit_amounts = st.one_of(st.integers(1, 30), st.sampled_from((0, -5, 10**9, 10**12)))
token_amounts = st.one_of(
    st.integers(1, 5 * 10**6),
    st.sampled_from((1, 999_999, 1_000_000, 0, -1, 10**9, 10**9 + 1)),
)
clock_steps = st.one_of(
    st.sampled_from((0, 1, 999, 60_000, 3_600_000)),
    st.integers(0, 10**7),
)
fee_bps = st.one_of(
    st.sampled_from((0, 0, 1, 3, 10, 25, 100, 2_500, 10_000)), st.integers(0, 10**4)
)
ticks = st.sampled_from((1_000, 1, 7, 5_000))


@functools.cache
def prices(tick: int) -> st.SearchStrategy[int]:
    """Mostly on the tick within ±10% of 100 ticks; sometimes off it, zero, negative, huge."""
    on_tick = st.integers(90, 110).map(lambda k: k * tick)
    odd = st.sampled_from((0, -tick, 1, MAX_PRICE, MAX_PRICE + tick, 10**13))
    if tick == 1:
        return st.one_of(on_tick, on_tick, on_tick, odd)
    off_tick = st.tuples(st.integers(90, 110), st.integers(1, tick - 1)).map(
        lambda kr: kr[0] * tick + kr[1]
    )
    return st.one_of(on_tick, on_tick, on_tick, off_tick, odd)


@st.composite
def instrument_variant(draw: st.DrawFn, instrument_id: str) -> Instrument:
    """A catalogue instrument with drawn fees, tick, quantity rules, band, window and sweep."""
    minimum = draw(st.sampled_from((1, 1, 2)))
    return replace(
        default_catalogue()[InstrumentId(instrument_id)],
        maker_fee_bps=draw(fee_bps),
        taker_fee_bps=draw(fee_bps),
        price_tick_usd_micros=draw(ticks),
        min_quantity_units=minimum,
        max_quantity_units=draw(st.sampled_from((10**6, 10**6, 20))),
        quantity_increment_units=draw(st.sampled_from((1, 1, 1, 2))),
        price_band_bps=draw(st.sampled_from((5_000, 2_000, 10_000, 100, 1))),
        consumption_window_ms=draw(
            st.one_of(st.none(), st.sampled_from((60_000, 3_600_000)), st.integers(1, 10**7))
        ),
        sweep_enabled=draw(st.booleans()),
    )


@st.composite
def configs(draw: st.DrawFn) -> ExchangeConfig:
    catalogue = {InstrumentId(i): draw(instrument_variant(i)) for i in INSTRUMENTS}
    return ExchangeConfig(
        instruments=catalogue,
        max_open_orders_per_account=draw(st.sampled_from((1_000, 1_000, 8, 3, 1))),
        issuance_horizon_min=240,
    )


def setup_commands(config: ExchangeConfig, capacity: int = 10**6) -> list[c.Command]:
    """Accounts with money, supply and a two-sided book: most later commands can land."""
    out: list[c.Command] = [
        c.CreateAccount("c1"),
        c.CreateAccount("c2", auto_transfer=True),
        c.CreateAccount("c3"),
        c.CreateAccount("s1", is_supplier=True),
        c.CreateAccount("s2", is_supplier=True),
    ]
    for account, usd in (
        ("c1", 2 * 10**7),
        ("c2", 2 * 10**7),
        ("c3", 3 * 10**5),
        ("s1", 5 * 10**6),
        ("s2", 10**6),
    ):
        out.append(c.Deposit(account, usd))
    for instrument in INSTRUMENTS:
        for supplier in SUPPLIERS:
            out += [
                c.SetSupplierCapacity(supplier, instrument, capacity),
                c.IssueUnits(supplier, instrument, 60),
                c.TransferIssuanceToTrading(supplier, instrument, 40),
            ]
        rules = config.instruments[instrument]
        tick, step = rules.price_tick_usd_micros, rules.quantity_increment_units
        size = max(4 * step, -(-rules.min_quantity_units // step) * step)
        for account, side, ticks in (
            ("s1", "sell", 101),
            ("s2", "sell", 101),
            ("s1", "sell", 103),
            ("c1", "buy", 99),
            ("c2", "buy", 98),
        ):
            out.append(c.PlaceOrder(account, instrument, side, "limit", size, ticks * tick))
    return out


def orders(tick_of: dict[str, int]) -> st.SearchStrategy[c.PlaceOrder]:
    """Order placements, priced on (or off) the tick of the instrument they name."""
    return _orders(tuple(sorted(tick_of.items())))


@functools.cache
def _orders(ticks: tuple[tuple[str, int], ...]) -> st.SearchStrategy[c.PlaceOrder]:
    tick_of = dict(ticks)

    def for_instrument(instrument_id: str) -> st.SearchStrategy[c.PlaceOrder]:
        price = prices(tick_of.get(instrument_id, 1_000))
        return st.builds(
            c.PlaceOrder,
            accounts,
            st.just(instrument_id),
            sides,
            order_types,
            quantities,
            st.one_of(price, price, price, st.none()),
            times_in_force,
            post_only,
            client_order_ids,
            auto_transfer,
        )

    return instruments.flatmap(for_instrument)


def commands(tick_of: dict[str, int]) -> st.SearchStrategy[c.Command]:
    """Any command, with wide values (for plain `@given` tests such as replay)."""
    return _commands(tuple(sorted(tick_of.items())))


@functools.cache
def _commands(ticks: tuple[tuple[str, int], ...]) -> st.SearchStrategy[c.Command]:
    order = _orders(ticks)
    return st.one_of(
        order,
        order,
        order,
        order,
        st.builds(c.CancelOrder, accounts, st.integers(-1, 120)),
        st.builds(c.CancelAllOrders, accounts, st.one_of(st.none(), instruments)),
        st.builds(
            c.ReplaceOrder,
            accounts,
            st.integers(-1, 120),
            st.one_of(st.none(), st.integers(1, 3_000).map(lambda k: k * 1_000), usd_amounts),
            st.one_of(st.none(), unit_amounts),
        ),
        st.builds(c.CreateAccount, accounts, st.booleans(), st.booleans()),
        st.builds(c.SetAutoTransfer, accounts, st.booleans()),
        st.builds(c.Deposit, accounts, usd_amounts),
        st.builds(c.Withdraw, accounts, usd_amounts),
        st.builds(c.SupplierPayout, accounts, usd_amounts),
        st.builds(c.SetSupplierCapacity, accounts, instruments, st.integers(-1, 10**6)),
        st.builds(c.IssueUnits, accounts, instruments, unit_amounts),
        st.builds(c.TransferIssuanceToTrading, accounts, instruments, unit_amounts),
        st.builds(c.TransferToConsumption, accounts, instruments, unit_amounts),
        st.builds(c.TransferToTrading, accounts, instruments, unit_amounts),
        st.builds(c.CommitTokens, st.sampled_from(CALL_IDS), accounts, instruments, token_amounts),
        st.builds(
            c.SettleCall,
            st.sampled_from((*CALL_IDS, "k?")),
            token_amounts,
            supplier_id=st.sampled_from((None, "s1", "s2", "operator")),
        ),
        st.builds(c.SettleReceivable, accounts),
        st.builds(c.ExpireLots),
        st.builds(c.Sweep, instruments),
    )
