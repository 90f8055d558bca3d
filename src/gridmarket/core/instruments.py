"""The instrument catalogue: what can be traded, its tick and quantity rules, and its guarantees.

An instrument's id is its symbol (`text-prime`) and is what a consumer puts in `model`. Prices
are micro-USD per unit (1,000,000 tokens) and must be a whole multiple of `price_tick_usd_micros`;
quantities are whole units between `min_quantity_units` and `max_quantity_units` in steps of
`quantity_increment_units`. The guarantee floors are The Grid's published ones (DESIGN section
3); `text-local` is the small tier the built-in CPU model really meets.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from gridmarket.core.ids import InstrumentId


@dataclass(frozen=True, slots=True)
class Guarantees:
    """The floors a supplier must meet to be admitted to an instrument."""

    quality_index_min: int
    quality_index_name: str
    throughput_tok_s_min: int
    ttft_ms_max: int
    context_tokens_min: int
    output_tokens_min: int
    success_rate_permille_min: int = 990


@dataclass(frozen=True, slots=True)
class Instrument:
    instrument_id: InstrumentId
    name: str
    guarantees: Guarantees
    price_tick_usd_micros: int = 1_000
    min_quantity_units: int = 1
    max_quantity_units: int = 1_000_000
    quantity_increment_units: int = 1
    maker_fee_bps: int = 0
    taker_fee_bps: int = 0
    #: Limit prices further than this from the last trade are rejected; none before a first trade.
    price_band_bps: int = 5_000
    #: None: consumed tokens never expire. Otherwise lots expire this long after creation.
    consumption_window_ms: int | None = None
    #: The scheduled 4-hourly sweep of bought units into consumption (DESIGN section 7).
    sweep_enabled: bool = False
    #: Tokens a call may use for output when the caller gives no budget.
    default_output_tokens: int = 4_096
    #: The fee rate a resting buy reserves for: it may end up as maker or taker. Derived
    #: (not a property: it is read on every order placed and every fill).
    lock_fee_bps: int = field(init=False)

    def __post_init__(self) -> None:
        assert self.price_tick_usd_micros > 0
        assert 0 < self.min_quantity_units <= self.max_quantity_units
        assert self.quantity_increment_units > 0
        assert 0 <= self.maker_fee_bps <= 10_000 and 0 <= self.taker_fee_bps <= 10_000
        assert 0 < self.price_band_bps <= 10_000
        assert self.consumption_window_ms is None or self.consumption_window_ms > 0
        object.__setattr__(self, "lock_fee_bps", max(self.maker_fee_bps, self.taker_fee_bps))


def _tier(
    family: str,
    index_name: str,
    tier: str,
    quality: int,
    tok_s: int,
    ttft_ms: int,
    ctx: int,
    out: int,
) -> Instrument:
    return Instrument(
        instrument_id=InstrumentId(f"{family}-{tier}"),
        name=f"{family.capitalize()} {tier.capitalize()}",
        guarantees=Guarantees(
            quality_index_min=quality,
            quality_index_name=index_name,
            throughput_tok_s_min=tok_s,
            ttft_ms_max=ttft_ms,
            context_tokens_min=ctx,
            output_tokens_min=out,
        ),
    )


_TIERS = (
    # tier, quality floor, throughput floor, TTFT ceiling, context floor, output floor
    ("max", 53, 30, 3_500, 1_000_000, 128_000),
    ("prime", 38, 40, 4_620, 128_000, 30_000),
    ("standard", 18, 100, 1_320, 128_000, 16_000),
)
_FAMILIES = (("text", "intelligence"), ("code", "coding"), ("agent", "agentic"))

TEXT_LOCAL = Instrument(
    instrument_id=InstrumentId("text-local"),
    name="Text Local (built-in CPU model)",
    guarantees=Guarantees(
        quality_index_min=0,
        quality_index_name="intelligence",
        throughput_tok_s_min=20,
        ttft_ms_max=1_000,
        context_tokens_min=8_192,
        output_tokens_min=2_048,
        success_rate_permille_min=950,
    ),
    default_output_tokens=512,
)


def default_catalogue() -> dict[InstrumentId, Instrument]:
    """The shipped instruments: text/code/agent in three tiers, plus `text-local`."""
    instruments = [
        _tier(family, index_name, *tier) for family, index_name in _FAMILIES for tier in _TIERS
    ]
    instruments.append(TEXT_LOCAL)
    return {i.instrument_id: i for i in instruments}


def catalogue_with(
    base: Mapping[InstrumentId, Instrument], overrides: Iterable[Instrument]
) -> dict[InstrumentId, Instrument]:
    """The base catalogue with instruments added or replaced (operator configuration)."""
    merged = dict(base)
    for instrument in overrides:
        merged[instrument.instrument_id] = instrument
    return merged


__all__ = [
    "TEXT_LOCAL",
    "Guarantees",
    "Instrument",
    "catalogue_with",
    "default_catalogue",
    "replace",
]
