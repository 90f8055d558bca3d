"""OpenAPI declarations of the signed routes that read their own bodies: orders, transfers,
supply. Documentation only, like `api.responses`: the routes keep parsing the raw body and
building their answers themselves (so a bad body keeps its exact 422), and these models say
what a good body and each answer look like, so /openapi.json describes them and the fuzz
tests (tests/fuzz) generate real bodies and check every answer against its schema.

    @router.post("/orders", response_model=None, openapi_extra=request_body(PlaceOrderBody),
                 responses=PLACE_ORDER_RESPONSES)

Body models are flat (no nested models), so `request_body` inlines a self-contained schema.
Field types are the wire's: ids, decimals and most quantities are strings; `filled_quantity`,
the counts and an issuance's `quantity` are JSON integers, as the contract asks.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from gridmarket.api.responses import error

QUANTITY_TEXT = r"^[1-9][0-9]{0,11}$"
PRICE_TEXT = r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,18})?$"


def request_body(model: type[BaseModel], description: str = "") -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON body of `model`'s schema."""
    schema = model.model_json_schema()
    return {
        "requestBody": {
            "required": True,
            "description": description or (model.__doc__ or "").strip(),
            "content": {"application/json": {"schema": schema}},
        }
    }


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceOrderBody(_Body):
    """A new order (the keys The Grid's client sends; any other key is a 422)."""

    market_id: str = Field(min_length=1, examples=["text-prime"])
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"]
    quantity: int | str = Field(
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 10**12 - 1},
                {"type": "string", "pattern": QUANTITY_TEXT},
            ]
        }
    )
    price: str | None = Field(default=None, pattern=PRICE_TEXT, examples=["2.500"])
    time_in_force: Literal["gtc", "ioc", "fok"] = "gtc"
    client_order_id: str | None = Field(default=None, min_length=1, max_length=64)
    post_only: bool = False


class UpdateOrderBody(_Body):
    """A cancel-replace: a new price and/or quantity (at least one); time in force unchanged."""

    price: str | None = Field(default=None, pattern=PRICE_TEXT, examples=["2.600"])
    quantity: int | str | None = Field(
        default=None,
        json_schema_extra={
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 10**12 - 1},
                {"type": "string", "pattern": QUANTITY_TEXT},
                {"type": "null"},
            ]
        },
    )
    time_in_force: Literal["gtc", "ioc", "fok"] | None = None


class UnitsBody(_Body):
    """Whole units of one instrument."""

    instrument_id: str = Field(min_length=1, examples=["text-prime"])
    quantity: int = Field(ge=1, le=10**12 - 1)


class IssuanceTransferBody(UnitsBody):
    """Issued units to move to trading; `trading_account_id`, if given, must be one's own."""

    trading_account_id: str | None = None


# -- answers -------------------------------------------------------------------------------------


class Paging(BaseModel):
    has_more: bool
    next_cursor: str | None = None
    prev_cursor: str | None = None


class OrderOut(BaseModel):
    """The Order object (grid-client-contract.md §2)."""

    order_id: str
    id: str
    market_id: str
    instrument_id: str
    side: Literal["buy", "sell"]
    type: Literal["limit", "market"]
    status: str
    price: str | None
    quantity: str
    filled_quantity: int
    remaining_quantity: str
    average_price: str | None
    average_fill_price: str | None
    fee: str
    time_in_force: str
    client_order_id: str | None
    post_only: bool
    closure_reason: str | None
    closed_at: str | None
    submitted_at: str
    created_at: str
    updated_at: str


class OrderEnvelope(BaseModel):
    data: OrderOut


class OrderPage(BaseModel):
    data: list[OrderOut]
    paging: Paging


class MarketCount(BaseModel):
    market_id: str
    count: int


class OrderCount(BaseModel):
    count: int
    by_market: list[MarketCount]


class OrderCountEnvelope(BaseModel):
    data: OrderCount


class Cancelled(BaseModel):
    cancelled: int


class CancelledEnvelope(BaseModel):
    data: Cancelled


class TransferOut(BaseModel):
    """One transfer between an account's own sub-accounts."""

    id: str
    transfer_id: str
    account_id: str
    instrument_id: str
    from_account_type: Literal["issuance", "trading", "consumption"]
    to_account_type: Literal["issuance", "trading", "consumption"]
    quantity: str
    status: str
    created_at: str


class TransferAnswer(BaseModel):
    """`{"status", "transfer_id"}` read by The Grid's CLI, and the transfer in `data`."""

    status: str
    transfer_id: str
    data: TransferOut


class IssuanceTransferOut(TransferOut):
    trading_account_id: str
    issuance_account_id: str


class IssuanceTransferAnswer(BaseModel):
    transfer_id: str
    data: IssuanceTransferOut


class IssuanceOut(BaseModel):
    id: str
    issuance_id: str
    issuance_account_id: str
    account_id: str
    instrument_id: str
    quantity: int
    status: str
    issued_at: str
    created_at: str


class IssuanceEnvelope(BaseModel):
    data: IssuanceOut


_SERVICE: dict[int | str, dict[str, Any]] = {503: error("The market service is not running.")}
_AUTO_MODE = error("The account is in Auto (easy) mode: `auto_mode_trading_restricted`.")
_REFUSED = error("A bad body or parameter, or the core's refusal (its reason is the code).")

PLACE_ORDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": OrderEnvelope, "description": "The order, as placed (and matched)."},
    200: {"model": OrderEnvelope, "description": "A repeated `client_order_id`: that order."},
    403: _AUTO_MODE,
    422: _REFUSED,
    **_SERVICE,
}
LIST_ORDERS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderPage, "description": "One page of one's own orders."},
    422: error("A bad filter, cursor or limit."),
    **_SERVICE,
}
COUNT_ORDERS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderCountEnvelope, "description": "One's open orders, by market."},
    **_SERVICE,
}
GET_ORDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderEnvelope, "description": "The order."},
    404: error("No such order of this account: `order_not_found`."),
    **_SERVICE,
}
UPDATE_ORDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": OrderEnvelope, "description": "The NEW order (cancel-replace)."},
    403: _AUTO_MODE,
    404: error("No such order of this account: `order_not_found`."),
    409: error("The order is no longer open: `order_not_open`."),
    422: _REFUSED,
    **_SERVICE,
}
CANCEL_ORDER_RESPONSES: dict[int | str, dict[str, Any]] = {
    204: {"description": "Cancelled; no body."},
    403: _AUTO_MODE,
    404: error("No such order of this account: `order_not_found`."),
    409: error("The order is no longer open: `order_not_open`."),
    422: _REFUSED,
    **_SERVICE,
}
CANCEL_ALL_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": CancelledEnvelope, "description": "How many orders were cancelled."},
    403: _AUTO_MODE,
    404: error("No such market: `market_not_found`."),
    422: _REFUSED,
    **_SERVICE,
}
TRANSFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": TransferAnswer, "description": "The transfer, done."},
    422: _REFUSED,
    **_SERVICE,
}
_NOT_A_SUPPLIER = error("Not a supplier account: `not_a_supplier`.")
ISSUE_RESPONSES: dict[int | str, dict[str, Any]] = {
    201: {"model": IssuanceEnvelope, "description": "The issuance."},
    403: _NOT_A_SUPPLIER,
    422: error("A bad body, or refused (`capacity_exceeded` says how many units still fit)."),
    **_SERVICE,
}
ISSUANCE_TRANSFER_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": IssuanceTransferAnswer, "description": "The transfer, done."},
    403: _NOT_A_SUPPLIER,
    422: _REFUSED,
    **_SERVICE,
}


# -- self-service writes (api.self_service): bodies and statuses; answers built there ------------


def json_body(schema: dict[str, Any], description: str) -> dict[str, Any]:
    """`openapi_extra` declaring a required JSON body of this (self-contained) schema."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


def _object(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(required),
        "additionalProperties": False,
    }


USD_TEXT = {"type": "string", "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$", "examples": ["12.50"]}
_NULLABLE_USD = {"anyOf": [USD_TEXT, {"type": "null"}]}

API_KEY_BODY = json_body(
    _object(
        {
            "api_key": _object(
                {
                    "name": {"type": "string", "minLength": 1, "maxLength": 100},
                    "expires_at": {
                        "anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]
                    },
                    "spend_cap_tokens": {
                        "anyOf": [
                            {"type": "integer", "minimum": 1},
                            {"type": "string", "pattern": "^[1-9][0-9]{0,17}$"},
                            {"type": "null"},
                        ]
                    },
                },
                ("name",),
            )
        },
        ("api_key",),
    ),
    "A new consumption key: a name, an optional expiry (ISO 8601 with a zone), a spend cap.",
)
SIGNING_KEY_BODY = json_body(
    _object(
        {
            "signing_key": _object(
                {
                    "label": {"type": "string", "minLength": 1, "maxLength": 100},
                    "public_key": {"type": "string", "description": "Base64 Ed25519 key."},
                },
                ("label", "public_key"),
            )
        },
        ("signing_key",),
    ),
    "A public Ed25519 key (standard base64 of the 32 raw bytes) to register, and its label.",
)
ACCOUNT_MODE_BODY = json_body(
    _object({"mode": {"type": "string", "enum": ["easy", "advanced"]}}, ("mode",)),
    "The account mode to switch to.",
)
AUTO_RELOAD_BODY = json_body(
    {
        **_object(
            {
                "enabled": {"type": "boolean"},
                "threshold": _NULLABLE_USD,
                "amount": _NULLABLE_USD,
                "monthly_limit": _NULLABLE_USD,
            }
        ),
        "minProperties": 1,
    },
    "Any of the Auto-Reload settings (USD amounts as decimal strings).",
)
AUTO_TRANSFER_BODY = json_body(
    {
        "oneOf": [
            _object({"auto_transfer_enabled": {"type": "boolean"}}, ("auto_transfer_enabled",)),
            _object({"auto_transfer_override": {"type": "null"}}, ("auto_transfer_override",)),
        ]
    },
    "Auto-transfer on or off, or `auto_transfer_override: null` to follow the account mode.",
)
AUTO_BUY_BODY = json_body(
    {
        "oneOf": [
            _object({"auto_buy_enabled": {"type": "boolean"}}, ("auto_buy_enabled",)),
            _object({"auto_top_up_enabled": {"type": "boolean"}}, ("auto_top_up_enabled",)),
        ]
    },
    "Auto-buy on or off (`auto_top_up_enabled` is The Grid's name for it).",
)
AMOUNT_BODY = json_body(
    _object({"amount_usd": USD_TEXT}, ("amount_usd",)), "The amount, USD as a decimal string."
)


def self_service(ok: int, description: str, *extra: int) -> dict[int | str, dict[str, Any]]:
    """The statuses of a self-service write: its success, 422, and `extra` error statuses."""
    statuses: dict[int | str, dict[str, Any]] = {
        ok: {"description": description},
        422: error("A bad body, or a refusal (its reason is the code)."),
        **_SERVICE,
    }
    for status in extra:
        statuses[status] = error(
            {403: "Not allowed for this account.", 404: "Not found.", 409: "A conflict."}[status]
        )
    return statuses
