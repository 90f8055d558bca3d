"""Substitution settlement (DESIGN section 9): the supplier whose lot another one delivered pays it.

A call draws tokens from lots; a lot is one batch of one supplier's units at one price, and
that supplier owes their delivery. When the settlement names a deliverer other than the lot's
supplier (its endpoint was suspended, unreachable or failed before the first token and the
gateway failed over, or the call drew on several suppliers' lots and one of them served it),
the delivered tokens still post back to the lot supplier's `issued` contra account, so its
liability falls as for any delivery (`lots.settle`), and the lot's supplier pays the
substitute, per lot:

    amount_usd_micros = ceil(tokens × price_usd_micros ÷ TOKENS_PER_UNIT)

where `price_usd_micros` is the lot's price in micro-USD per unit of 1,000,000 tokens: the
tokens' value at the price the consumer paid for them, rounded up to the micro-USD (the
substitute is never paid less than the work is worth). A lot billed twice in one call (its
committed part, then usage beyond the commitment) counts once, with its tokens summed. A
supplier's own units moved to its own consumption are priced 0: nothing to pay.

Who is paid (the deliverer is `SettleCall.supplier_id`):
- a supplier account: into its `usd/available`;
- `operator` (the gateway's name for the operator's own endpoints, which have no account), or
  any id that is not a supplier account: every endpoint is configured by the operator, who
  answers for the ones no supplier account stands behind, so the operator is paid, into
  `operator/usd/substitutions`, and the event names `operator` as the substitute;
- None or "" (the settlement names no deliverer: a failed call, or one settled outside the
  gateway): nothing to settle.

Who pays: the lot's supplier, from its available USD (USD locked in its bids is left alone).
If that is short it pays all it has, the operator pays the rest, and the rest becomes the
supplier's receivable (`receivables`: no issuance, no USD out until it is paid). The
substitute is always paid in full, at once. Each (call, lot) substituted is one
`SubstitutionSettled` event, after the call's `CallSettled`, amount 0 included.
"""

from gridmarket.core.accounts import Lot
from gridmarket.core.events import SubstitutionSettled
from gridmarket.core.ids import OPERATOR, AccountId
from gridmarket.core.ledger import USD
from gridmarket.core.receivables import book
from gridmarket.core.state import Call, MarketState
from gridmarket.core.units import TOKENS_PER_UNIT, ceil_div


def substitution_usd_micros(tokens: int, price_usd_micros_per_unit: int) -> int:
    """What `tokens` of a lot priced `price_usd_micros_per_unit` are worth, rounded up."""
    return ceil_div(tokens * price_usd_micros_per_unit, TOKENS_PER_UNIT)


def settle_substitutions(
    state: MarketState, call: Call, deliverer_id: str | None, delivered: list[tuple[Lot, int]]
) -> None:
    """Pay for every lot of `delivered` (lot, tokens) whose supplier is not `deliverer_id`."""
    if not deliverer_id:
        return
    substitute = state.accounts.get(AccountId(deliverer_id))
    if substitute is None or not substitute.is_supplier:
        substitute_id, payee_key = OPERATOR, state.substitutions_key
    else:
        substitute_id, payee_key = substitute.account_id, substitute.usd_available
    tokens_by_lot: dict[Lot, int] = {}
    for lot, tokens in delivered:
        if lot.supplier_id != substitute_id:
            tokens_by_lot[lot] = tokens_by_lot.get(lot, 0) + tokens
    ledger = state.ledger
    for lot, tokens in tokens_by_lot.items():
        amount_usd_micros = substitution_usd_micros(tokens, lot.price_usd_micros)
        supplier = state.accounts[lot.supplier_id]
        paid_usd_micros = min(amount_usd_micros, ledger.get(supplier.usd_available))
        ledger.post(USD, supplier.usd_available, payee_key, paid_usd_micros)
        receivable_usd_micros = amount_usd_micros - paid_usd_micros
        if receivable_usd_micros:
            book(state, supplier, payee_key, receivable_usd_micros)
        state.events.append(
            SubstitutionSettled(
                state.seq,
                state.ts_ms,
                call.call_id,
                call.account_id,
                call.instrument_id,
                lot.lot_id,
                lot.supplier_id,
                substitute_id,
                tokens,
                lot.price_usd_micros,
                amount_usd_micros,
                receivable_usd_micros,
            )
        )
