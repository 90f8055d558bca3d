"""`Gateway`: the `ChatGateway` (gateway.contract) over the market, the suppliers and a tokenizer.

One call, step by step (DESIGN section 8):

1. authenticate: the consumption key's SHA-256 is looked up in the registry (cached
   `KEY_CACHE_TTL_S` seconds; a revocation through this server clears the entry at once,
   see `auth.revocations`); unknown, revoked and expired keys are a 401 `invalid_api_key`.
   Each key may make `rate.capacity` calls per window (429 `rate_limit_exceeded` with
   Retry-After).
2. validate: `model` is an instrument id, any case (404 `model_not_found`); the body is
   checked field by field (`gateway.request` lists every field and its fate); the prompt
   plus the output budget must fit the instrument's context floor (400
   `context_length_exceeded`).
3. commit: prompt tokens (counted locally, `gateway.tokens`) + n x output budget
   (`max_completion_tokens`, else `max_tokens`, else the instrument's `default_output_tokens`),
   with the key's spend cap. Short of tokens: `token_supply.ensure(...)` for the missing
   tokens (Auto Mode buys them) and one more commit; still short, a 402
   `insufficient_tokens`. A spend cap reached is a 402 `spend_cap_reached`, not a 429: it
   does not lift by waiting, and SDKs retry 429s on their own.
4. route: `SupplierDirectory.route(instrument, the suppliers of the committed lots in draw
   order, the other suppliers' best asks on the book)`: funding suppliers first, then the
   other endpoints best ask first (`best_asks`). An endpoint that fails before its first
   chunk (unreachable, timeout, 5xx, an empty answer) is skipped for the next; a
   context-length or content error (an upstream 4xx) is the caller's and ends the call
   (400). No endpoint left: 503 `no_supplier`. After the first chunk reached the caller, a
   failure is `StreamInterrupted`, never a clean end.
5. settle (always, in a task of its own: a vanished caller cannot stop it, and the answer
   does not wait for it): used = the
   supplier's prompt + completion tokens; when it reported none, the local counts, marked
   `usage_estimated`. Failed deliveries settle 0 (`failed`): an error, or a 200 stream with
   no tokens, no finish reason or no `[DONE]`. A caller that leaves mid-stream pays for what
   was generated (`cancelled`). The settlement names the endpoint that delivered: its
   supplier account, or `operator` for the operator's own endpoints (no account). When that
   is not the supplier of a lot the call drew on (a failover), the core has that supplier pay
   the deliverer for those tokens (`core.substitution`).

Responses carry `model` = the instrument id, `id` = `chatcmpl-<request id>`, `created` when
the call arrived, and `system_fingerprint` = `SYSTEM_FINGERPRINT`, in every chunk alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from gridmarket.adapters import registry
from gridmarket.auth.keys import hash_consumption_key, looks_like_consumption_key
from gridmarket.auth.ratelimit import Rate, RateLimiter, RateLimiterConfig
from gridmarket.auth.revocations import consumption_key_revocations
from gridmarket.core.commands import CommitTokens, SettleCall
from gridmarket.core.events import CallSettled, Rejected, TokensCommitted
from gridmarket.core.ids import OPERATOR, AccountId, CallId, InstrumentId
from gridmarket.core.instruments import Instrument
from gridmarket.core.orders import Order
from gridmarket.gateway.contract import (
    Caller,
    GatewayError,
    StreamInterrupted,
    SupplierDirectory,
    SupplierEndpoint,
    TokenSupply,
)
from gridmarket.gateway.request import validate
from gridmarket.gateway.tokens import TokenCounter, content_texts
from gridmarket.gateway.upstream import StreamBroken, UpstreamClient, UpstreamError, UpstreamStream
from gridmarket.service.errors import ServiceError
from gridmarket.service.market import MarketService

log = logging.getLogger(__name__)

KEY_CACHE_TTL_S = 5.0
KEY_CACHE_MAX = 10_000
SYSTEM_FINGERPRINT = "fp_gridmarket"
#: Calls per consumption key per minute, by default.
DEFAULT_CALLS_PER_MINUTE = 6_000


class NoTokenSupply:
    """The default `TokenSupply`: buys nothing (an account without Auto Mode)."""

    async def ensure(self, caller: Caller, instrument_id: str, tokens: int) -> None:
        return None


class GatewayObserver(Protocol):
    """What the gateway measures that the command log cannot know (`api.metrics` implements
    it for /metrics): its own overhead before the supplier is asked, and time to first token."""

    def observe_overhead(self, supplier: str, seconds: float) -> None: ...

    def observe_ttft(self, supplier: str, seconds: float) -> None: ...

    def request_started(self, instrument: str) -> None: ...

    def request_finished(self, instrument: str, outcome: str) -> None: ...


@dataclass(slots=True)
class _Call:
    """One call's bookkeeping, from commit to settlement."""

    caller: Caller
    instrument: Instrument
    body: dict[str, Any]
    request_id: str
    created_s: int
    started: float
    prompt_tokens: int
    committed_tokens: int = 0
    call_id: str = ""
    endpoint: SupplierEndpoint | None = None
    first_chunk_at: float | None = None
    #: When the first supplier was asked: the gateway's own overhead ends here.
    routed_at: float | None = None
    usage: dict[str, Any] | None = None
    streamed_text: list[str] = field(default_factory=list)
    #: The endpoints to try, in order (set at commit, from the funding lots).
    endpoints: list[SupplierEndpoint] = field(default_factory=list)
    settled: bool = False

    @property
    def n(self) -> int:
        return int(self.body.get("n") or 1)


class Gateway:
    def __init__(
        self,
        market: MarketService,
        directory: SupplierDirectory,
        *,
        token_supply: TokenSupply | None = None,
        observer: GatewayObserver | None = None,
        upstream: UpstreamClient | None = None,
        counter: TokenCounter | None = None,
        calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE,
        key_cache_ttl_s: float = KEY_CACHE_TTL_S,
    ) -> None:
        self.market = market
        self.directory = directory
        self.token_supply: TokenSupply = token_supply or NoTokenSupply()
        self.observer = observer
        self.upstream = upstream or UpstreamClient()
        self.counter = counter or TokenCounter()
        self._key_cache: dict[str, tuple[Caller, int | None, float]] = {}
        self._key_cache_ttl_s = key_cache_ttl_s
        rate = Rate(calls_per_minute, calls_per_minute, 60_000)
        self._limiter = RateLimiter(RateLimiterConfig(rate, rate, rate))
        self._settlements: set[asyncio.Task[None]] = set()
        consumption_key_revocations.listen(self.forget_key)

    async def start(self) -> None:
        """Load the tokenizer now, so the first call does not wait for it."""
        await self.counter.ready()

    async def aclose(self) -> None:
        """Wait for pending settlements, then close the upstream connections."""
        consumption_key_revocations.unlisten(self.forget_key)
        await self.wait_settled()
        await self.upstream.aclose()

    # -- authentication -----------------------------------------------------------------------

    def forget_key(self, key_id: str) -> None:
        for key_hash, (caller, _, _) in list(self._key_cache.items()):
            if caller.key_id == key_id:
                del self._key_cache[key_hash]

    async def authenticate(self, raw_key: str) -> Caller:
        if not looks_like_consumption_key(raw_key):
            raise _unauthenticated()
        key_hash = hash_consumption_key(raw_key)
        now = time.monotonic()
        cached = self._key_cache.get(key_hash)
        if cached is None or cached[2] < now:
            record = await asyncio.to_thread(
                registry.find_consumption_key, self.market.store.engine, key_hash
            )
            if record is None or record.revoked_at_ms is not None:
                self._key_cache.pop(key_hash, None)
                raise _unauthenticated()
            caller = Caller(record.account_id, record.key_id, record.spend_cap_tokens)
            if len(self._key_cache) >= KEY_CACHE_MAX:
                self._key_cache.clear()
            cached = (caller, record.expires_at_ms, now + self._key_cache_ttl_s)
            self._key_cache[key_hash] = cached
        caller, expires_at_ms, _ = cached
        if expires_at_ms is not None and expires_at_ms <= int(time.time() * 1000):
            raise GatewayError("authentication", "invalid_api_key", "the API key has expired")
        return caller

    # -- the instruments ----------------------------------------------------------------------

    def instruments(self) -> list[Instrument]:
        state = self.market.sequencer.exchange.state
        return [state.instruments[i] for i in sorted(state.instruments)]

    def instrument(self, model: Any) -> Instrument:
        if not isinstance(model, str) or not model:
            raise GatewayError(
                "invalid_request", "missing_required_parameter", "model is required", param="model"
            )
        instruments = self.market.sequencer.exchange.state.instruments
        instrument = instruments.get(InstrumentId(model.lower()))
        if instrument is None:
            shown = model[:128]
            raise GatewayError(
                "not_found",
                "model_not_found",
                f"The model `{shown}` does not exist: use an instrument id such as text-prime "
                "(GET /v1/models lists them)",
                param="model",
            )
        return instrument

    async def count_prompt_tokens(self, instrument_id: str, request: dict[str, Any]) -> int:
        self.instrument(instrument_id)
        messages = request.get("messages")
        tools = request.get("tools")
        return await self.counter.count_prompt_async(
            messages if isinstance(messages, list) else [],
            tools if isinstance(tools, list) else None,
        )

    # -- one call -----------------------------------------------------------------------------

    async def _prepare(self, caller: Caller, request: Any, request_id: str | None) -> _Call:
        decision = self._limiter.admit(caller.key_id)
        if not decision.allowed:
            raise GatewayError(
                "rate_limit",
                "rate_limit_exceeded",
                "too many requests for this API key",
                retry_after_s=max(1, -(-decision.retry_after_ms // 1000)),
            )
        model = request.get("model") if isinstance(request, dict) else None
        instrument = self.instrument(model)
        output_max = instrument.guarantees.output_tokens_min
        body = validate(request, max_output_tokens=output_max)
        prompt = await self.counter.count_prompt_async(body["messages"], body.get("tools"))
        call = _Call(
            caller,
            instrument,
            body,
            request_id or secrets.token_hex(12),
            int(time.time()),
            time.monotonic(),
            prompt,
        )
        budget = body.get("max_completion_tokens") or body.get("max_tokens")
        budget = budget or min(instrument.default_output_tokens, output_max)
        context = instrument.guarantees.context_tokens_min
        if prompt + budget > context:
            raise GatewayError(
                "invalid_request",
                "context_length_exceeded",
                f"This model's maximum context length is {context} tokens; the messages are "
                f"about {prompt} tokens and {budget} are asked for the completion",
                param="messages",
            )
        call.committed_tokens = prompt + call.n * budget
        await self._commit(call)
        return call

    async def _commit(self, call: _Call) -> None:
        caller = call.caller
        instrument_id = call.instrument.instrument_id
        for attempt in (1, 2):
            call.call_id = f"call_{call.request_id}_{attempt}"
            command = CommitTokens(
                CallId(call.call_id),
                AccountId(caller.account_id),
                instrument_id,
                call.committed_tokens,
                key_id=caller.key_id,
                key_spend_cap_tokens=caller.spend_cap_tokens,
            )
            try:
                # Not waiting for the commit: only this call reads the commitment until its
                # settlement, whose acknowledgement covers it (Sequencer.submit_applied). A
                # crash before that loses both, as if the call had failed first: unbilled.
                outcome = await self.market.submit_applied(command)
            except ServiceError as exc:
                raise GatewayError(
                    "overloaded", "service_unavailable", str(exc), retry_after_s=1
                ) from None
            for event in outcome.events:
                if isinstance(event, TokensCommitted):
                    self._route_from(call, event)
                    return
            reason = next((e.reason for e in outcome.events if isinstance(e, Rejected)), "")
            if reason == "insufficient_tokens" and attempt == 1:
                missing = call.committed_tokens - self._available(caller.account_id, instrument_id)
                await self.token_supply.ensure(caller, instrument_id, max(missing, 1))
                continue
            raise _refusal(reason, call.committed_tokens)

    def _available(self, account_id: str, instrument_id: str) -> int:
        state = self.market.sequencer.exchange.state
        account = state.accounts.get(AccountId(account_id))
        holding = account.holdings.get(instrument_id) if account else None
        now_ms = int(time.time() * 1000)
        lots = holding.lots if holding else ()
        return sum(lot.available_tokens for lot in lots if not lot.expired(now_ms))

    def _route_from(self, call: _Call, committed: TokensCommitted) -> None:
        state = self.market.sequencer.exchange.state
        lots = state.lots
        suppliers = [
            str(lots[lot_id].supplier_id) for lot_id, _ in committed.allocations if lot_id in lots
        ]
        instrument_id = call.instrument.instrument_id
        funding = set(suppliers)
        # The operator's own endpoints (no account) never quote: not worth a walk of the book.
        others = {
            e.supplier_id
            for e in self.directory.for_instrument(instrument_id)
            if e.supplier_id and e.supplier_id not in funding
        }
        book = state.books.get(instrument_id)
        asks = best_asks(book.asks.open_orders(), others) if book and others else {}
        call.endpoints = self.directory.route(instrument_id, suppliers, asks)

    @contextlib.contextmanager
    def _counted(self, request: Any) -> Iterator[None]:
        """One request for the observer, from here to how it ended (see `GatewayObserver`)."""
        observer = self.observer
        if observer is None:
            yield
            return
        model = request.get("model") if isinstance(request, dict) else None
        asked = model.lower() if isinstance(model, str) else ""
        label = asked if asked in self.market.sequencer.exchange.state.instruments else "unknown"
        observer.request_started(label)
        outcome = "ok"
        try:
            yield
        except (GatewayError, StreamInterrupted) as error:
            outcome = error.code
            raise
        except (asyncio.CancelledError, GeneratorExit):
            outcome = "cancelled"
            raise
        except BaseException:
            outcome = "failed"
            raise
        finally:
            observer.request_finished(label, outcome)

    async def chat(
        self, caller: Caller, request: dict[str, Any], *, request_id: str | None = None
    ) -> dict[str, Any]:
        with self._counted(request):
            call = await self._prepare(caller, request, request_id)
            status = "failed"
            try:
                answer = await self._complete(call)
                status = "ok"
                return answer
            except asyncio.CancelledError:
                status = "cancelled"
                raise
            finally:
                self._settle_later(call, status)

    async def _complete(self, call: _Call) -> dict[str, Any]:
        last: UpstreamError | None = None
        call.routed_at = time.monotonic()
        for endpoint in call.endpoints:
            call.endpoint = endpoint
            try:
                answer = await self.upstream.complete(endpoint, call.body)
            except UpstreamError as exc:
                _log_failure(endpoint, exc)
                if not exc.retryable:
                    raise _client_error(exc) from None
                last = exc
                continue
            choices = answer["choices"]
            if not choices or any(
                not isinstance(c, dict) or not c.get("finish_reason") for c in choices
            ):
                last = UpstreamError("upstream_incomplete", "no finish reason", retryable=True)
                continue
            call.usage = _usage(answer.get("usage"))
            for choice in choices:
                call.streamed_text.extend(_message_texts(choice.get("message")))
            answer["usage"] = self._final_usage(call)
            answer.update(self._identity(call, "chat.completion"))
            return conform_completion(answer)
        call.endpoint = None
        raise _no_supplier(last)

    def chat_stream(
        self,
        caller: Caller,
        request: dict[str, Any],
        *,
        request_id: str | None = None,
        prompt_counted: Callable[[int], None] | None = None,
    ) -> AsyncIterator[dict[str, Any]]:
        return self._stream(caller, request, request_id, prompt_counted)

    async def _stream(
        self,
        caller: Caller,
        request: dict[str, Any],
        request_id: str | None,
        prompt_counted: Callable[[int], None] | None,
    ) -> AsyncIterator[dict[str, Any]]:
        with self._counted(request):
            call = await self._prepare(caller, request, request_id)
            if prompt_counted is not None:
                prompt_counted(call.prompt_tokens)
            status = "failed"
            stream: UpstreamStream | None = None
            try:
                stream = await self._open(call)
                wants_usage = bool((call.body.get("stream_options") or {}).get("include_usage"))
                identity = self._identity(call, "chat.completion.chunk")
                finished: set[int] = set()
                try:
                    async for chunk in stream:
                        if call.first_chunk_at is None:
                            call.first_chunk_at = time.monotonic()
                        usage = chunk.pop("usage", None)
                        if usage is not None:
                            call.usage = _usage(usage)
                        choices = chunk.get("choices") or []
                        for choice in choices:
                            if isinstance(choice, dict):
                                delta = choice.get("delta")
                                call.streamed_text.extend(_message_texts(delta))
                                if choice.get("finish_reason"):
                                    finished.add(int(choice.get("index") or 0))
                        if not choices:
                            continue  # the usage-only chunk: sent once, at the end, if asked for
                        chunk.update(identity)
                        if wants_usage:
                            chunk["usage"] = None
                        yield conform_chunk(chunk)
                except StreamBroken as exc:
                    raise StreamInterrupted(exc.code, exc.message) from None
                if not stream.done or len(finished) < call.n or not call.streamed_text:
                    raise StreamInterrupted(
                        "incomplete_delivery",
                        "the supplier's stream ended without a finish reason, tokens or [DONE]",
                    )
                if wants_usage:
                    yield {**identity, "choices": [], "usage": self._final_usage(call)}
                status = "ok"
            except (asyncio.CancelledError, GeneratorExit):
                status = "cancelled" if call.first_chunk_at is not None else "failed"
                raise
            finally:
                self._settle_later(call, status, stream)

    async def _open(self, call: _Call) -> UpstreamStream:
        last: UpstreamError | None = None
        call.routed_at = time.monotonic()
        for endpoint in call.endpoints:
            call.endpoint = endpoint
            try:
                return await self.upstream.open_stream(endpoint, call.body)
            except UpstreamError as exc:
                _log_failure(endpoint, exc)
                if not exc.retryable:
                    raise _client_error(exc) from None
                last = exc
        call.endpoint = None
        raise _no_supplier(last)

    def _identity(self, call: _Call, kind: str) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{call.request_id}",
            "object": kind,
            "created": call.created_s,
            "model": call.instrument.instrument_id,
            "system_fingerprint": SYSTEM_FINGERPRINT,
        }

    def _final_usage(self, call: _Call) -> dict[str, Any]:
        prompt, completion, _ = self._used(call)
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _used(self, call: _Call) -> tuple[int, int, bool]:
        """(prompt, completion, estimated): the supplier's usage, else counted locally."""
        if call.usage is not None:
            prompt, completion = call.usage["prompt_tokens"], call.usage["completion_tokens"]
            local = call.prompt_tokens
            if prompt > 2 * local + 256 or local > 2 * prompt + 256:
                log.warning(
                    "request %s: supplier says %d prompt tokens, counted %d",
                    call.request_id,
                    prompt,
                    local,
                )
            return prompt, completion, False
        completion = self.counter.count_texts(call.streamed_text)
        return call.prompt_tokens, completion, True

    # -- settlement ---------------------------------------------------------------------------

    def _settle_later(self, call: _Call, status: str, stream: UpstreamStream | None = None) -> None:
        """Close the upstream stream and settle in a task of its own: a caller that went away
        (a cancelled task) cannot stop it, and the answer does not wait for it. `aclose` and
        `wait_settled` wait for it."""
        if call.settled or not call.call_id:
            return
        call.settled = True
        task = asyncio.create_task(self._close_and_settle(call, status, stream))
        self._settlements.add(task)
        task.add_done_callback(self._settlements.discard)

    async def wait_settled(self) -> None:
        """Until every call ended so far is settled."""
        while self._settlements:
            await asyncio.gather(*self._settlements, return_exceptions=True)

    async def _close_and_settle(
        self, call: _Call, status: str, stream: UpstreamStream | None
    ) -> None:
        if stream is not None:
            try:
                await stream.aclose()
            except Exception:
                log.debug("closing an upstream stream", exc_info=True)
        await self._settle(call, status)

    async def _settle(self, call: _Call, status: str) -> None:
        prompt, completion, estimated = 0, 0, False
        if status == "ok" or (status == "cancelled" and call.first_chunk_at is not None):
            prompt, completion, estimated = self._used(call)
        used = prompt + completion if status != "failed" else 0
        ended = time.monotonic()
        endpoint, first = call.endpoint, call.first_chunk_at
        if self.observer is not None and endpoint is not None and call.routed_at is not None:
            label = endpoint.name or endpoint.supplier_id or endpoint.base_url
            self.observer.observe_overhead(label, call.routed_at - call.started)
            if first is not None:
                self.observer.observe_ttft(label, first - call.started)
        command = SettleCall(
            CallId(call.call_id),
            used,
            request_id=call.request_id,
            supplier_id=(endpoint.supplier_id or OPERATOR) if endpoint else None,
            model=endpoint.model if endpoint else None,
            prompt_tokens=prompt if status != "failed" else 0,
            completion_tokens=completion if status != "failed" else 0,
            ttft_ms=None if first is None else _ms(first - call.started),
            duration_ms=_ms(ended - call.started),
            status=status,
            usage_estimated=estimated and status != "failed",
        )
        try:
            outcome = await self.market.submit(command)
        except Exception:
            log.exception("request %s: settlement failed", call.request_id)
            return
        if not any(isinstance(e, CallSettled) for e in outcome.events):
            log.error("request %s: settlement refused: %s", call.request_id, outcome.events)


#: How many resting asks `best_asks` looks at, from the best price: a supplier quoting only
#: beyond them counts as not quoting (failover order is a preference, the walk is per call).
BEST_ASKS_SCAN_ORDERS = 500


def best_asks(asks: Iterable[Order], supplier_ids: set[str]) -> dict[str, int]:
    """Each of `supplier_ids`' lowest resting ask price (micro-USD per unit), from `asks` in
    priority order (best price first), looking at no more than `BEST_ASKS_SCAN_ORDERS`."""
    found: dict[str, int] = {}
    for order in itertools.islice(asks, BEST_ASKS_SCAN_ORDERS):
        seller = str(order.account_id)
        if seller in supplier_ids and seller not in found and order.price_usd_micros is not None:
            found[seller] = order.price_usd_micros
            if len(found) == len(supplier_ids):
                break
    return found


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


def _usage(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    prompt, completion = value.get("prompt_tokens"), value.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int or prompt < 0 or completion < 0:
        return None
    return {"prompt_tokens": prompt, "completion_tokens": completion}


def _message_texts(message: Any) -> list[str]:
    if not isinstance(message, dict):
        return []
    texts = content_texts(message.get("content"))
    for call in message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            texts.extend(str(function.get(k) or "") for k in ("name", "arguments"))
    return [text for text in texts if text]


def _unauthenticated() -> GatewayError:
    return GatewayError(
        "authentication",
        "invalid_api_key",
        "Incorrect or missing API key: send Authorization: Bearer <consumption key>",
    )


def _refusal(reason: str, tokens: int) -> GatewayError:
    if reason == "insufficient_tokens":
        return GatewayError(
            "payment_required",
            "insufficient_tokens",
            f"not enough tokens in the consumption account for this call ({tokens} needed): "
            "buy units of the instrument and move them to consumption",
        )
    if reason == "spend_cap_reached":
        return GatewayError(
            "payment_required",
            "spend_cap_reached",
            f"this call ({tokens} tokens) would pass the API key's spend cap",
        )
    if reason == "invalid_amount":
        return GatewayError(
            "unprocessable", "request_too_large", f"a call may not commit {tokens} tokens"
        )
    if reason == "unknown_account":
        return _unauthenticated()
    return GatewayError("internal", "commit_refused", f"the call could not be metered: {reason}")


def _client_error(exc: UpstreamError) -> GatewayError:
    return GatewayError(
        "invalid_request", exc.code, f"the supplier refused the request: {exc.message}"
    )


def _log_failure(endpoint: SupplierEndpoint, exc: UpstreamError) -> None:
    name = endpoint.name or endpoint.base_url
    log.warning("upstream %s failed: %s %s", name, exc.code, exc.message)


def _no_supplier(last: UpstreamError | None) -> GatewayError:
    if last is None:
        return GatewayError(
            "overloaded", "no_supplier", "no supplier serves this instrument now", retry_after_s=5
        )
    return GatewayError(
        "overloaded",
        "supplier_unavailable",
        f"no supplier could serve the call: {last.code}",
        retry_after_s=1,
    )


def conform_completion(answer: dict[str, Any]) -> dict[str, Any]:
    """Fill in what OpenAI always sends and some suppliers leave out (llama.cpp and others omit
    `refusal` and `logprobs`), so strict clients and OpenAI's own schema accept the answer."""
    for index, choice in enumerate(answer.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", index)
        choice.setdefault("logprobs", None)
        message = choice.get("message")
        if isinstance(message, dict):
            message.setdefault("role", "assistant")
            message.setdefault("content", None)
            message.setdefault("refusal", None)
    return answer


def conform_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """The same for a stream chunk: every choice has an index, a delta and a finish reason."""
    for index, choice in enumerate(chunk.get("choices") or ()):
        if not isinstance(choice, dict):
            continue
        choice.setdefault("index", index)
        choice.setdefault("delta", {})
        choice.setdefault("finish_reason", None)
        choice.setdefault("logprobs", None)
    return chunk
