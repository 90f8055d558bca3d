"""Distinct id types, so that a lot id cannot be passed where an order id belongs.

Ids are plain values chosen by the shell (accounts, calls) or derived deterministically by the
core from the command sequence (orders take the sequence number of the command that placed
them; trades and lots count up inside the core's state). Nothing here is random.
"""

from typing import NewType

AccountId = NewType("AccountId", str)
InstrumentId = NewType("InstrumentId", str)
OrderId = NewType("OrderId", int)
TradeId = NewType("TradeId", int)
LotId = NewType("LotId", int)
CallId = NewType("CallId", str)

#: The market itself: fees, forfeited tokens, receivables.
OPERATOR = AccountId("operator")
#: The outside world for USD: deposits come from it, withdrawals and payouts go to it.
EXTERNAL = AccountId("external")
