"""Stateful property test: the core against a deliberately simple reference model.

`ExchangeMachine` drives random command sequences (accounts, deposits and withdrawals,
issuance, orders of every kind with wide values, cancels, transfers, token commits and
settlements, delivered by the lot's supplier, another one or the operator (substitutions,
receivables and their settlement), lot expiry with the clock moving, sweeps, crash-and-recover
by replaying the command log) through `Exchange.apply` and through `reference.Reference`.
After every step:

* same facts: trades (price, quantity, buyer, seller, maker/taker ids, fees, sequence numbers),
  rejection, cancellation and closure reasons, lots, commitments, settlements, forfeitures;
* the book is never crossed, each side's open orders are in price-time order, level totals and
  best prices agree with the orders, and both sides equal the model's;
* every asset sums to zero (`audit`), USD over non-contra accounts equals deposits minus
  withdrawals (fees included) plus what suppliers owe the operator for substitutions it paid
  (which equals minus `operator/usd/receivables`), no non-contra account is negative;
* every hold is accounted for: `usd/locked` = Σ open buys' holds, `trading_locked` = Σ open
  sells' units, `consumption_committed` = Σ open calls; closed orders hold nothing;
* every ledger balance equals the model's, every order's status and remainder too;
* each supplier's outstanding tokens and liability (sold − delivered − forfeited) equal the
  tokens of its units still held (by anyone / by others).

`drain` cancels everything and settles every call, then checks that no hold is left;
`crash_and_recover` rebuilds the exchange from the command log alone, checks outcomes and
`digest()` equal, and carries on with the rebuilt one. The machine starts from a funded market
with a two-sided book (`strategies.setup_commands`) on two catalogue instruments varied by
`dataclasses.replace` (fees, tick, quantity rules, band, consumption window, sweep).

The last tests run the same machine on deliberately broken cores and require a failure, and
pin the core bugs it found as regression tests. `pytest --hypothesis-show-statistics` shows how
often each outcome (trade, every rejection/closure reason...) was reached.
"""

from bisect import insort
from collections import Counter

import pytest
from hypothesis import Phase, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from gridmarket.core import book as core_book
from gridmarket.core import commands as c
from gridmarket.core import matching, substitution
from gridmarket.core.events import LotCreated, UsdMoved
from gridmarket.core.exchange import Exchange, Outcome
from gridmarket.core.ledger import asset_of
from gridmarket.core.orders import Order
from gridmarket.core.state import ExchangeConfig

from . import strategies as gen
from .profiles import PROFILE, TIMEOUT_S
from .reference import TOKENS, Reference

pytestmark = pytest.mark.timeout(TIMEOUT_S)


def _diff(actual: dict[str, int], expected: dict[str, int]) -> dict[str, tuple[int, int]]:
    """{key: (core, model)} for every key where they differ."""
    return {
        k: (actual.get(k, 0), expected.get(k, 0))
        for k in sorted(set(actual) | set(expected))
        if actual.get(k, 0) != expected.get(k, 0)
    }


class ExchangeMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.config: ExchangeConfig | None = None
        self.ex: Exchange
        self.ref: Reference
        self.seq = 0
        self.ts = 1_000_000
        self.log: list[tuple[c.Command, int, int]] = []
        self.outcomes: list[Outcome] = []
        self.net_usd = 0  # deposits − withdrawals − payouts, as the core reported them

    # Driving ---------------------------------------------------------------------------------

    def apply(self, command: c.Command) -> None:
        self.seq += 1
        outcome = self.ex.apply(command, self.seq, self.ts)
        expected = self.ref.apply(command, self.seq, self.ts)
        actual = outcome.events
        assert actual == expected, (
            f"seq {self.seq} {command!r}\n core: {actual}\n model: {expected}"
        )
        for ev in actual:  # coverage statistics: pytest --hypothesis-show-statistics
            reason = getattr(ev, "reason", None) or getattr(ev, "closure_reason", None)
            if getattr(ev, "receivable_usd_micros", 0):
                reason = "operator paid part, receivable booked"
            event(type(ev).__name__ + (f": {reason}" if reason else ""))
        self.log.append((command, self.seq, self.ts))
        self.outcomes.append(outcome)
        for ev in outcome.events:
            if isinstance(ev, UsdMoved):
                self.net_usd += ev.amount_usd_micros * (1 if ev.kind == "deposit" else -1)

    def tick_of(self, instrument_id: str) -> int:
        instrument = self.ref.instruments.get(instrument_id)
        return instrument.price_tick_usd_micros if instrument else 1_000

    @initialize(config=gen.configs())
    def setup(self, config: ExchangeConfig) -> None:
        self.config = config
        self.ex = Exchange(config)
        self.ref = Reference(config)
        for command in gen.setup_commands(config):
            self.apply(command)

    # Orders: about half of the rules, so that books fill up and trade ---------------------

    def _sane_quantity(self, data: st.DataObject, instrument_id: str) -> int:
        instrument = self.ref.instruments[instrument_id]
        step = instrument.quantity_increment_units
        k = data.draw(st.integers(1, 12), label="lots of the increment")
        return max(k * step, -(-instrument.min_quantity_units // step) * step)

    def _near_price(self, data: st.DataObject, instrument_id: str) -> int:
        """On the tick, a few ticks around the last trade (or 100 ticks before any trade)."""
        tick = self.tick_of(instrument_id)
        mid = self.ref.last_price.get(instrument_id, 100 * tick)
        offset = data.draw(st.integers(-6, 6), label="ticks from mid")
        return max(tick, mid - mid % tick + offset * tick)

    def _wide_order(self, data: st.DataObject) -> None:
        tick_of = {i: self.tick_of(i) for i in gen.INSTRUMENTS}
        self.apply(data.draw(gen.orders(tick_of), label="order"))

    @rule(data=st.data())
    def place_order(self, data: st.DataObject) -> None:
        """Any order with wide values: most are refused, for every reason in the check order."""
        self._wide_order(data)

    def _quote(self, data: st.DataObject) -> None:
        instrument = data.draw(st.sampled_from(gen.INSTRUMENTS), label="instrument")
        self.apply(
            c.PlaceOrder(
                data.draw(st.sampled_from(gen.KNOWN_ACCOUNTS), label="account"),
                instrument,
                data.draw(st.sampled_from(("buy", "sell")), label="side"),
                "limit",
                self._sane_quantity(data, instrument),
                self._near_price(data, instrument),
                "gtc",
                data.draw(gen.post_only, label="post_only"),
                data.draw(gen.rare_client_order_ids, label="client_order_id"),
                data.draw(gen.auto_transfer, label="auto_transfer"),
            )
        )

    @rule(data=st.data())
    def quote(self, data: st.DataObject) -> None:
        """A well-formed resting limit order near the market: builds the book."""
        self._quote(data)

    @rule(data=st.data())
    def quote_again(self, data: st.DataObject) -> None:
        self._quote(data)

    def _take(self, data: st.DataObject) -> None:
        instrument = data.draw(st.sampled_from(gen.INSTRUMENTS), label="instrument")
        side = data.draw(st.sampled_from(("buy", "sell")), label="side")
        opposite = self.ref.queue(instrument, "sell" if side == "buy" else "buy")
        if opposite:
            depth = data.draw(st.integers(0, len(opposite) - 1), label="depth")
            price: int | None = opposite[depth].price
        else:
            price = self._near_price(data, instrument)
        order_type = data.draw(st.sampled_from(("limit", "limit", "market")), label="type")
        account = data.draw(st.sampled_from(gen.KNOWN_ACCOUNTS), label="account")
        quantity = self._sane_quantity(data, instrument) * data.draw(st.sampled_from((1, 1, 3)))
        if (
            order_type == "market"
            and side == "buy"
            and opposite
            and account in self.ref.accounts
            and data.draw(st.booleans(), label="run out of money")
        ):
            # Keep between half a unit's and a few units' worth, then buy more than that.
            best = opposite[0].price or 1
            keep = data.draw(st.integers(best // 2, 3 * best + best // 3), label="keep")
            if self.ref.accounts[account].usd > keep:
                self.apply(c.Withdraw(account, self.ref.accounts[account].usd - keep))
        if order_type == "market" and data.draw(st.booleans(), label="no worst price"):
            price = None
        self.apply(
            c.PlaceOrder(
                account,
                instrument,
                side,
                order_type,
                quantity,
                price,
                data.draw(st.sampled_from(("gtc", "ioc", "fok")), label="tif"),
                False,
                data.draw(gen.rare_client_order_ids, label="client_order_id"),
                data.draw(gen.auto_transfer, label="auto_transfer"),
            )
        )

    @rule(data=st.data())
    def take(self, data: st.DataObject) -> None:
        """A well-formed order priced to trade down to some depth of the other side."""
        self._take(data)

    @rule(data=st.data())
    def take_again(self, data: st.DataObject) -> None:
        self._take(data)

    @rule(data=st.data())
    def take_once_more(self, data: st.DataObject) -> None:
        self._take(data)

    @rule(data=st.data())
    def retry_order(self, data: st.DataObject) -> None:
        """Send an earlier placement again: as it was (idempotent when it had a
        client_order_id), or with the same client_order_id and one field changed (conflict)."""
        earlier = [cmd for cmd, _, _ in self.log if isinstance(cmd, c.PlaceOrder)]
        keyed = [
            cmd
            for cmd, seq, _ in self.log
            if isinstance(cmd, c.PlaceOrder) and seq in self.ref.orders and cmd.client_order_id
        ]
        if keyed and data.draw(st.booleans(), label="one with a client_order_id"):
            earlier = keyed
        if not earlier:
            return
        command = data.draw(st.sampled_from(earlier), label="earlier order")
        if command.client_order_id is None:
            command = command._replace(client_order_id=data.draw(st.sampled_from(("a", "b"))))
        change = data.draw(
            st.sampled_from(("none", "none", "quantity", "price", "auto_transfer", "tif")),
            label="change",
        )
        if change == "quantity":
            command = command._replace(quantity_units=command.quantity_units + 1)
        elif change == "price":
            command = command._replace(price_usd_micros=(command.price_usd_micros or 0) + 1)
        elif change == "auto_transfer":
            command = command._replace(auto_transfer=not command.auto_transfer)
        elif change == "tif":
            command = command._replace(time_in_force="ioc")
        self.apply(command)

    @rule(data=st.data(), account=gen.accounts)
    def cancel(self, data: st.DataObject, account: str) -> None:
        """Cancel an order (own, someone else's, no longer open, never existed) or all of them."""
        if data.draw(st.integers(0, 3), label="cancel all") == 0:
            instrument = data.draw(st.one_of(st.none(), gen.instruments), label="instrument")
            self.apply(c.CancelAllOrders(account, instrument))
            return
        known = sorted(self.ref.orders)
        ids = st.integers(-1, self.seq + 3)
        if known:
            ids = st.one_of(st.sampled_from(known), st.sampled_from(known), ids)
        order_id = data.draw(ids, label="order_id")
        if data.draw(st.booleans(), label="as owner") and order_id in self.ref.orders:
            account = self.ref.orders[order_id].account_id
        self.apply(c.CancelOrder(account, order_id))

    @rule(data=st.data(), account=gen.accounts)
    def replace(self, data: st.DataObject, account: str) -> None:
        """Cancel-replace an order (mostly one's own open one) with a new price and/or quantity."""
        resting = [o.order_id for o in self.ref.resting]
        ids = st.integers(-1, self.seq + 3)
        if resting:
            ids = st.one_of(st.sampled_from(resting), st.sampled_from(resting), ids)
        order_id = data.draw(ids, label="order_id")
        order = self.ref.orders.get(order_id)
        if order is not None and data.draw(st.integers(0, 5), label="as owner"):
            account = order.account_id
        instrument_id = order.instrument_id if order is not None else gen.INSTRUMENTS[0]
        how = data.draw(st.sampled_from(("keep", "near", "wide")), label="price how")
        price: int | None = None
        if how == "near":
            price = self._near_price(data, instrument_id)
        elif how == "wide":
            price = data.draw(st.integers(-1, 10**7), label="wide price")
        how = data.draw(st.sampled_from(("keep", "sane", "wide")), label="quantity how")
        quantity: int | None = None
        if how == "sane":
            quantity = self._sane_quantity(data, instrument_id)
        elif how == "wide":
            quantity = data.draw(st.integers(-1, 10**4), label="wide quantity")
        self.apply(c.ReplaceOrder(account, order_id, price, quantity))

    # Money and supply ------------------------------------------------------------------------

    @rule(
        account=gen.accounts,
        kind=st.sampled_from((c.Deposit, c.Deposit, c.Withdraw, c.SupplierPayout)),
        amount=gen.usd_amounts,
        everything=st.booleans(),
    )
    def move_usd(self, account: str, kind: type, amount: int, everything: bool) -> None:
        """Deposit, withdraw or pay out; withdrawals half the time exactly what is available."""
        if everything and kind is not c.Deposit and account in self.ref.accounts:
            amount = self.ref.accounts[account].usd or amount
        self.apply(kind(account, amount))

    @rule(
        supplier=st.sampled_from(gen.SUPPLIERS),
        instrument=st.sampled_from(gen.INSTRUMENTS),
        issue=gen.unit_amounts,
        list_=gen.unit_amounts,
    )
    def supply(self, supplier: str, instrument: str, issue: int, list_: int) -> None:
        """A supplier issues units (bounded by capacity) and moves some to trading."""
        self.apply(c.IssueUnits(supplier, instrument, issue))
        self.apply(c.TransferIssuanceToTrading(supplier, instrument, list_))

    @rule(data=st.data())
    def any_command(self, data: st.DataObject) -> None:
        """Any command at all, wide values: accounts, auto-transfer, capacity, refused moves..."""
        tick_of = {i: self.tick_of(i) for i in gen.INSTRUMENTS}
        self.apply(data.draw(gen.commands(tick_of), label="command"))

    # Consumption -----------------------------------------------------------------------------

    @rule(
        account=gen.accounts,
        instrument=gen.instruments,
        units=st.one_of(st.integers(1, 6), gen.unit_amounts),
    )
    def to_consumption(self, account: str, instrument: str, units: int) -> None:
        self.apply(c.TransferToConsumption(account, instrument, units))

    @rule(
        data=st.data(),
        call_id=st.sampled_from(gen.CALL_IDS),
        account=gen.accounts,
        instrument=gen.instruments,
        tokens=gen.token_amounts,
    )
    def call(
        self, data: st.DataObject, call_id: str, account: str, instrument: str, tokens: int
    ) -> None:
        """A consumption call: commit tokens (usually from a holder of lots, up to a bit more
        than it has), or settle an open call using less, all, or more than it committed."""
        if self.ref.calls and data.draw(st.booleans(), label="settle"):
            self._settle(data, data.draw(st.sampled_from(sorted(self.ref.calls)), label="call"))
            return
        holders = sorted(
            {(lot.account_id, lot.instrument_id) for lot in self.ref.lots if lot.available}
        )
        if holders and data.draw(st.integers(0, 3), label="from a holder"):
            account, instrument = data.draw(st.sampled_from(holders), label="holder")
            has = sum(
                lot.available
                for lot in self.ref.lots
                if (lot.account_id, lot.instrument_id) == (account, instrument)
            )
            tokens = data.draw(st.integers(1, has + has // 5 + 1), label="tokens")
        key = data.draw(st.sampled_from((None, "key1", "key2")), label="key")
        cap = data.draw(
            st.one_of(st.none(), st.integers(0, 3 * TOKENS)) if key else st.none(), label="cap"
        )
        self.apply(c.CommitTokens(call_id, account, instrument, tokens, key, cap))

    @rule(data=st.data(), call_id=st.sampled_from((*gen.CALL_IDS, "k?")))
    def settle(self, data: st.DataObject, call_id: str) -> None:
        """Settle any call id: open, already settled, or never committed."""
        self._settle(data, call_id)

    def _settle(self, data: st.DataObject, call_id: str) -> None:
        call = self.ref.calls.get(call_id)
        committed = call.tokens if call else 10
        used = data.draw(
            st.one_of(
                st.integers(0, committed),
                st.integers(committed, committed + 3 * TOKENS),
                st.sampled_from((0, -1, 10**9, 10**9 + 1)),
            ),
            label="used",
        )
        receipt = data.draw(
            st.sampled_from(
                (
                    {},
                    {"request_id": "r1", "prompt_tokens": 3, "completion_tokens": 4},
                    {"status": "failed", "ttft_ms": 5, "duration_ms": 9, "supplier_id": "s"},
                    # delivered by another supplier, the operator's endpoint, an unknown id
                    {"supplier_id": "s1"},
                    {"supplier_id": "s2"},
                    {"supplier_id": "operator", "request_id": "r2"},
                    {"supplier_id": "c1"},
                    {"status": "finished"},  # refused: not a call status
                    {"prompt_tokens": -1},  # refused
                )
            ),
            label="receipt",
        )
        if call and receipt.get("supplier_id"):
            self._maybe_short(data, call_id)
        self.apply(c.SettleCall(call_id, used, **receipt))

    def _maybe_short(self, data: st.DataObject, call_id: str) -> None:
        """Perhaps leave the suppliers of a call's lots a little USD, so that paying a
        substitute books a receivable (the operator pays the rest)."""
        if not data.draw(st.booleans(), label="suppliers short"):
            return
        for supplier in sorted({lot.supplier_id for lot, _ in self.ref.calls[call_id].allocations}):
            has = self.ref.accounts[supplier].usd
            keep = data.draw(st.integers(0, 50), label="supplier keeps")
            if has > keep:
                self.apply(c.Withdraw(supplier, has - keep))

    @rule(data=st.data(), deliverer=st.sampled_from(("s1", "s2", "operator", "c2")))
    def substituted_call(self, data: st.DataObject, deliverer: str) -> None:
        """A call from a holder of lots, delivered by a given supplier, the operator's own
        endpoint or an id that is no supplier: lots of other suppliers are paid for."""
        free = [k for k in gen.CALL_IDS if k not in self.ref.calls]
        usable = [lot for lot in self.ref.lots if lot.available and not lot.expired(self.ts)]
        holders = sorted({(lot.account_id, lot.instrument_id) for lot in usable})
        if not free or not holders:
            return
        account, instrument = data.draw(st.sampled_from(holders), label="holder")
        has = sum(
            lot.available
            for lot in usable
            if (lot.account_id, lot.instrument_id) == (account, instrument)
        )
        tokens = data.draw(st.integers(1, has), label="tokens")
        self.apply(c.CommitTokens(free[0], account, instrument, tokens))
        self._maybe_short(data, free[0])
        used = data.draw(st.integers(0, tokens + tokens // 4), label="used")
        self.apply(c.SettleCall(free[0], used, supplier_id=deliverer))

    @rule(account=gen.accounts)
    def settle_receivable(self, account: str) -> None:
        """A supplier pays what it owes the operator for substitutions from the USD it has."""
        self.apply(c.SettleReceivable(account))

    @rule(
        ms=gen.clock_steps,
        expire=st.booleans(),
        sweep=st.one_of(st.none(), gen.instruments),
    )
    def time_passes(self, ms: int, expire: bool, sweep: str | None) -> None:
        """The clock moves on; the scheduler may expire lots and run a sweep."""
        self.ts += ms
        if expire:
            self.apply(c.ExpireLots())
        if sweep is not None:
            self.apply(c.Sweep(sweep))

    # Recovery and draining -------------------------------------------------------------------

    @rule()
    def crash_and_recover(self) -> None:
        """Rebuild from the command log alone, check it is the same market, carry on with it."""
        assert self.config is not None
        fresh = Exchange(self.config)
        for (command, seq, ts), outcome in zip(self.log, self.outcomes, strict=True):
            assert fresh.apply(command, seq, ts) == outcome, (seq, command)
        assert fresh.digest() == self.ex.digest()
        self.ex = fresh

    @rule()
    def drain(self) -> None:
        """Cancel every order and settle every call: nothing may stay held."""
        for account in list(self.ref.accounts):
            self.apply(c.CancelAllOrders(account))
        for call_id in list(self.ref.calls):
            self.apply(c.SettleCall(call_id, 0))
        held = {
            k: v
            for k, v in self.ex.state.ledger.balances.items()
            if v and k.rsplit("/", 1)[-1] in ("locked", "trading_locked", "consumption_committed")
        }
        assert held == {}, held

    def teardown(self) -> None:
        event(f"steps: {len(self.log) // 10 * 10}+")

    # Invariants ------------------------------------------------------------------------------

    @invariant()
    def book_is_ordered_uncrossed_and_matches_the_model(self) -> None:
        if self.config is None:
            return
        for instrument_id, book in self.ex.state.books.items():
            bids = list(book.bids.open_orders())
            asks = list(book.asks.open_orders())
            bid_keys = [(-o.price_usd_micros, o.order_id) for o in bids]
            ask_keys = [(o.price_usd_micros, o.order_id) for o in asks]
            assert bid_keys == sorted(bid_keys), ("bids out of price-time order", bid_keys)
            assert ask_keys == sorted(ask_keys), ("asks out of price-time order", ask_keys)
            assert book.best_bid() == (bids[0].price_usd_micros if bids else None)
            assert book.best_ask() == (asks[0].price_usd_micros if asks else None)
            if bids and asks:
                assert bids[0].price_usd_micros < asks[0].price_usd_micros, "crossed book"
            for side, orders in ((book.bids, bids), (book.asks, asks)):
                per_price: Counter[int] = Counter()
                for order in orders:
                    per_price[order.price_usd_micros] += order.remaining_units
                assert dict(side.depth()) == dict(per_price)
            for side_name, orders in (("buy", bids), ("sell", asks)):
                model = [o.order_id for o in self.ref.queue(instrument_id, side_name)]
                assert [o.order_id for o in orders] == model, (instrument_id, side_name)

    @invariant()
    def ledger_balances_and_conserves(self) -> None:
        if self.config is None:
            return
        ledger = self.ex.state.ledger
        assert all(total == 0 for total in self.ex.audit().values()), self.ex.audit()
        usd = sum(
            v for k, v in ledger.balances.items() if asset_of(k) == "usd" and k not in ledger.contra
        )
        # What suppliers owe for substitutions is USD the operator put in for them.
        owed = sum(a.receivable_usd_micros for a in self.ex.state.accounts.values())
        assert owed == -ledger.get(self.ex.state.receivables_key)
        assert usd == self.net_usd + owed, (usd, self.net_usd, owed)
        assert ledger.negative_accounts() == [], ledger.negative_accounts()

    @invariant()
    def every_hold_is_accounted_for(self) -> None:
        if self.config is None:
            return
        state = self.ex.state
        expected: Counter[str] = Counter()
        open_ids: dict[str, set[int]] = {a: set() for a in state.accounts}
        for book in state.books.values():
            for order in [*book.bids.open_orders(), *book.asks.open_orders()]:
                open_ids[order.account_id].add(order.order_id)
                if order.is_buy:
                    expected[f"{order.account_id}/usd/locked"] += order.locked_usd_micros
                else:
                    key = f"{order.account_id}/{order.instrument_id}/trading_locked"
                    expected[key] += order.remaining_units * TOKENS
        for call in state.calls.values():
            key = f"{call.account_id}/{call.instrument_id}/consumption_committed"
            expected[key] += call.tokens
        held = {
            k: v
            for k, v in state.ledger.balances.items()
            if k.rsplit("/", 1)[-1] in ("locked", "trading_locked", "consumption_committed")
        }
        assert _diff(held, dict(expected)) == {}
        for order in state.orders.values():
            if not order.is_open:
                assert order.locked_usd_micros == 0, ("closed order still holds", order.order_id)
        for account_id, account in state.accounts.items():
            assert set(account.open_order_ids) == open_ids[account_id], account_id

    @invariant()
    def core_equals_model(self) -> None:
        if self.config is None:
            return
        core = {k: v for k, v in self.ex.state.ledger.balances.items() if v}
        assert _diff(core, self.ref.balances()) == {}
        statuses = {i: (o.status, o.remaining_units) for i, o in self.ex.state.orders.items()}
        assert statuses == self.ref.statuses()

    @invariant()
    def supplier_liability_is_what_others_hold(self) -> None:
        """Per supplier and instrument: outstanding (what capacity must cover) and liability
        (sold − delivered − forfeited) equal the tokens of its units still held, by anyone and
        by others respectively."""
        if self.config is None:
            return
        core = {
            (account_id, instrument_id): (p.outstanding_tokens, p.liability_tokens)
            for account_id, account in self.ex.state.accounts.items()
            for instrument_id, p in account.supplier_positions.items()
            if p.outstanding_tokens or p.liability_tokens
        }
        assert core == self.ref.supplier_positions()


ExchangeMachine.TestCase.settings = PROFILE
TestExchange = ExchangeMachine.TestCase


# The checks can fail: the same machine on deliberately broken cores must find a failure. ----

_BROKEN = settings(
    PROFILE,
    max_examples=400,
    stateful_step_count=40,
    phases=[Phase.generate],  # finding it is the point; no shrinking
    database=None,  # keep the broken runs out of the example database
    report_multiple_bugs=False,
    print_blob=False,
)


def _floor_fee(order: Order, notional_usd_micros: int, fee_bps: int) -> int:
    """Broken: fees rounded down instead of up."""
    order.fee_numerator += notional_usd_micros * fee_bps
    paid = order.fee_numerator // 10_000
    fee = paid - order.fee_paid_usd_micros
    order.fee_paid_usd_micros = paid
    return fee


def _lifo_add(self: core_book.Side, order: Order) -> None:
    """Broken: a new order jumps the queue at its price level (time priority reversed)."""
    price = order.price_usd_micros
    assert price is not None
    level = self.levels.get(price)
    if level is None:
        level = core_book.Level(price)
        self.levels[price] = level
        insort(self.keys, price * self.sign)
    level.orders.appendleft(order)
    level.open_units += order.remaining_units


def _no_price_band(price: int, reference: int, band_bps: int) -> bool:
    """Broken: the band never stops anything (neither limit prices nor market sweeps)."""
    return False


def _floor_substitution(tokens: int, price_usd_micros_per_unit: int) -> int:
    """Broken: a substitute is paid the lot's value rounded down instead of up."""
    return tokens * price_usd_micros_per_unit // 1_000_000


@pytest.mark.parametrize(
    ("target", "name", "broken"),
    [
        (matching, "_charge_fee", _floor_fee),
        (core_book.Side, "add", _lifo_add),
        (matching, "out_of_band", _no_price_band),
        (substitution, "substitution_usd_micros", _floor_substitution),
    ],
    ids=["fee-rounded-down", "time-priority-reversed", "no-price-band", "substitute-underpaid"],
)
def test_machine_catches_a_broken_core(
    monkeypatch: pytest.MonkeyPatch, target: object, name: str, broken: object
) -> None:
    monkeypatch.setattr(target, name, broken)
    with pytest.raises(AssertionError):
        run_state_machine_as_test(ExchangeMachine, settings=_BROKEN)


# Core bugs the machine found, reduced to plain regression tests. ---------------------------


@pytest.mark.parametrize("auto_transfer", [True, False], ids=["auto-transfer", "explicit-transfer"])
def test_a_lot_names_each_funding_trade_once(auto_transfer: bool) -> None:
    """Found by the machine: one trade that took two consecutive batches of the same supplier
    was listed twice in the lot's funding trades (`lots.add_lots` concatenated the trade ids of
    merged chunks). Fixed in the core; kept as a regression test."""
    ex = Exchange()
    commands: list[c.Command] = [
        c.CreateAccount("s", is_supplier=True),
        c.CreateAccount("b", auto_transfer=auto_transfer),
        c.Deposit("b", 10**8),
        c.SetSupplierCapacity("s", "text-prime", 10**6),
        c.IssueUnits("s", "text-prime", 6),
        c.TransferIssuanceToTrading("s", "text-prime", 3),
        c.TransferIssuanceToTrading("s", "text-prime", 3),  # two batches, one supplier
        c.PlaceOrder("s", "text-prime", "sell", "limit", 6, 1_000_000),
        c.PlaceOrder("b", "text-prime", "buy", "limit", 6, 1_000_000),
        c.TransferToConsumption("b", "text-prime", 6),
    ]
    lots = [
        event
        for seq, command in enumerate(commands, start=1)
        for event in ex.apply(command, seq, 1_000).events
        if isinstance(event, LotCreated)
    ]
    assert len(lots) == 1
    assert lots[0].trade_ids == (1,)
