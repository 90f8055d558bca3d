"""Every command applied to any exchange in the unit tests is followed by the invariant check:
each asset sums to zero, no account is negative, and every hold matches what holds it."""

from collections.abc import Iterator
from typing import Any

import pytest

from gridmarket.core.exchange import Exchange, Outcome

from .helpers import check_invariants


@pytest.fixture(autouse=True)
def _books_balance_after_every_command(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    apply = Exchange.apply

    def checked(self: Exchange, command: Any, seq: int, ts_ms: int) -> Outcome:
        outcome = apply(self, command, seq, ts_ms)
        check_invariants(self)
        return outcome

    monkeypatch.setattr(Exchange, "apply", checked)
    yield
