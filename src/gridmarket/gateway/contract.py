"""What the gateway's parts agree on: the caller, the supplier endpoints, the errors, and the
gateway itself as the API surfaces see it.

    surfaces (api/openai_chat.py, api/anthropic_messages.py)
        -> ChatGateway (authenticate, chat, chat_stream, count_prompt_tokens)
            -> metering (CommitTokens / SettleCall through the sequencer)
            -> TokenSupply.ensure (Auto Mode: buy the missing units on the book)
            -> SupplierDirectory -> an OpenAI-compatible upstream over HTTP

The gateway speaks OpenAI's Chat Completions protocol inside: requests and responses are the
plain JSON objects of that protocol (`dict[str, Any]`), and the Anthropic surface translates
to and from it. A surface maps `GatewayError` to its own error shape once, at the edge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, Protocol


class Caller(NamedTuple):
    """An authenticated consumption key."""

    account_id: str
    key_id: str
    #: The key's spend cap in tokens (billed plus committed), None for no cap.
    spend_cap_tokens: int | None = None


class SupplierEndpoint(NamedTuple):
    """One OpenAI-compatible inference server serving one instrument for one supplier."""

    #: The supplier's account id (the seller of the units a lot is funded by).
    supplier_id: str
    instrument_id: str
    #: Base URL up to and including the version prefix, e.g. `http://127.0.0.1:8081/v1`.
    base_url: str
    #: The model name the upstream expects in `model`.
    model: str
    api_key: str | None = None
    #: A short label for logs and metrics (`builtin-local`, `vllm-a`, ...).
    name: str = ""


class SupplierDirectory:
    """The endpoints that may serve each instrument, by supplier. Mutable at run time (the
    built-in supplier registers itself once its model answers); read on every call."""

    def __init__(self) -> None:
        self._endpoints: dict[str, list[SupplierEndpoint]] = {}

    def add(self, endpoint: SupplierEndpoint) -> None:
        endpoints = self._endpoints.setdefault(endpoint.instrument_id, [])
        if endpoint not in endpoints:
            endpoints.append(endpoint)

    def remove(self, endpoint: SupplierEndpoint) -> None:
        endpoints = self._endpoints.get(endpoint.instrument_id, [])
        if endpoint in endpoints:
            endpoints.remove(endpoint)

    def for_instrument(self, instrument_id: str) -> list[SupplierEndpoint]:
        """Every endpoint of the instrument, in the order they were added."""
        return list(self._endpoints.get(instrument_id, ()))

    def route(
        self,
        instrument_id: str,
        funding_supplier_ids: list[str],
        best_ask_usd_micros: Mapping[str, int] | None = None,
    ) -> list[SupplierEndpoint]:
        """The endpoints to try for a call, in order (DESIGN section 9): those of the suppliers
        whose units funded the call's lots first, in draw order; then the instrument's other
        endpoints as failover, best ask first: by their supplier's lowest resting ask on the
        instrument's book (`best_ask_usd_micros`, supplier id -> price), those with no ask
        (the operator's own endpoints, suppliers not quoting) last. Ties keep the order the
        endpoints were added in."""
        endpoints = self.for_instrument(instrument_id)
        rank = {supplier_id: i for i, supplier_id in enumerate(dict.fromkeys(funding_supplier_ids))}
        asks = best_ask_usd_micros or {}

        def order(endpoint: SupplierEndpoint) -> tuple[int, bool, int]:
            funding = rank.get(endpoint.supplier_id)
            if funding is not None:
                return funding, False, 0
            ask = asks.get(endpoint.supplier_id)
            return len(rank), ask is None, ask or 0

        return sorted(endpoints, key=order)


class GatewayError(Exception):
    """A call refused or failed before anything reached the caller; nothing was billed.

    `kind` is the surface-neutral class of the error; each surface maps it to its own status
    and shape once (OpenAI `{"error": {...}}`, Anthropic `{"type": "error", ...}`):

        invalid_request 400 | authentication 401 | payment_required 402 | permission 403 |
        not_found 404 | unprocessable 422 | rate_limit 429 | upstream 502 |
        overloaded 503 | timeout 504 | internal 500
    """

    STATUS: ClassVar[Mapping[str, int]] = MappingProxyType(
        {
            "invalid_request": 400,
            "authentication": 401,
            "payment_required": 402,
            "permission": 403,
            "not_found": 404,
            "unprocessable": 422,
            "rate_limit": 429,
            "internal": 500,
            "upstream": 502,
            "overloaded": 503,
            "timeout": 504,
        }
    )

    def __init__(
        self,
        kind: str,
        code: str,
        message: str,
        *,
        param: str | None = None,
        retry_after_s: int | None = None,
    ) -> None:
        assert kind in self.STATUS, kind
        super().__init__(message)
        self.kind = kind
        self.status = self.STATUS[kind]
        #: A stable machine-readable code: `insufficient_tokens`, `insufficient_capacity`,
        #: `model_not_found`, `context_length_exceeded`, `invalid_api_key`, ...
        self.code = code
        self.message = message
        self.param = param
        self.retry_after_s = retry_after_s


class StreamInterrupted(Exception):
    """A stream failed after its first chunk reached the caller: the surface sends the error
    in-band (OpenAI `data: {"error": ...}`, Anthropic `event: error`), never a clean end."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class TokenSupply(Protocol):
    """Auto Mode: make `tokens` available in the caller's consumption account, buying the
    missing whole units on the book; raises `GatewayError` (`payment_required` with
    `insufficient_capacity`, `insufficient_funds` or `payment_declined`; `overloaded` while a
    buy or reload is in progress, or a reload's payment is not confirmed, `payment_pending`)
    when it cannot. Does nothing for accounts that are not in Auto Mode / auto-buy."""

    async def ensure(self, caller: Caller, instrument_id: str, tokens: int) -> None: ...


class ChatGateway(Protocol):
    """The gateway as the surfaces use it (`app.state.gateway`)."""

    async def authenticate(self, raw_key: str) -> Caller:
        """The caller of a consumption key; `GatewayError("authentication", ...)` if the key
        is unknown, revoked or expired."""
        ...

    async def chat(self, caller: Caller, request: dict[str, Any]) -> dict[str, Any]:
        """One non-streaming OpenAI chat completion (`request["model"]` is an instrument id,
        any case); the `chat.completion` object, its `model` the instrument id."""
        ...

    def chat_stream(
        self,
        caller: Caller,
        request: dict[str, Any],
        *,
        prompt_counted: Callable[[int], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        """A streaming chat completion: `chat.completion.chunk` objects. Raises `GatewayError`
        before the first chunk, `StreamInterrupted` after it. The final chunk carries `usage`
        when the request asked for it (`stream_options.include_usage`). `prompt_counted`, if
        given, is called with the prompt's tokens as `count_prompt_tokens` counts them, before
        the first chunk: a surface that must announce them up front (Anthropic's
        `message_start`) need not tokenize a long prompt a second time."""
        ...

    async def count_prompt_tokens(self, instrument_id: str, request: dict[str, Any]) -> int:
        """The prompt tokens of an OpenAI chat request (messages and tools), counted locally
        with the instrument's tokenizer, without calling a supplier."""
        ...
