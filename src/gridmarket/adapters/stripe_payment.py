"""Auto-Reload's card processor: the payment port (`adapters.payment`) over Stripe's API.

`StripePaymentProvider.charge(account_id, amount_usd_micros, idempotency_key)` charges the
account's saved Stripe payment method off-session, in one request:

    POST {api_base}/v1/payment_intents          (form-encoded, as Stripe's API takes it)
    Authorization: Bearer <secret key>
    Idempotency-Key: <our idempotency key>
    amount=<cents>&currency=usd&customer=cus_...&payment_method=pm_...&confirm=true
    &off_session=true&description=...&metadata[account_id]=...&metadata[idempotency_key]=...

The account's customer and payment method are what the operator recorded
(`payment.set_method`, `gridmarket admin payment-method --stripe-customer ...`). Stripe saves
the answer to the first request with an Idempotency-Key and replays it to every later request
with that key (24 hours at least), which is the port's contract: asking again never charges
twice. The parameters of a retry must equal the first request's: the customer and payment
method a charge is first sent with are kept on its record (`payment.pin_stripe_method`) and
sent again by every retry, even after the operator has changed the account's method.

What each answer means (a charge that is not certainly paid is never `Charged`):

- 200, PaymentIntent `succeeded`: `Charged`.
- 200, `processing` (the payment method settles later): not paid, not failed.
  `PaymentUnavailable("processing")`: the charge stays pending; the next ask replays the
  same 200 (Stripe's saved answer) and then reads the intent's current state with
  `GET /v1/payment_intents/{id}`, so a processing charge ends as `Charged` or `Declined`
  once Stripe knows, never as a decline by default.
- 200, `requires_payment_method` (the attempt failed): `Declined` with its
  `last_payment_error`'s decline code or code; `requires_action` (the bank wants the customer
  to authenticate, impossible off-session): `Declined("authentication_required")`;
  `canceled`: `Declined("canceled")`; any other status (`requires_capture`,
  `requires_confirmation`): `Declined("stripe_status_<status>")`. None of these took money,
  so none is deposited.
- 402 (a `card_error`: declined, expired, `authentication_required` for a charge the bank
  wants authenticated): `Declined(decline_code or code)`, e.g. `insufficient_funds`.
- 401 (the secret key is wrong): `Declined("stripe_authentication_failed")`; 403:
  `Declined("stripe_permission_denied")`; 400/404 and other 4xx (unknown customer or payment
  method, `amount_too_small`, `idempotency_error`): `Declined("stripe_<code or type>")`.
  Each stands until the operator sets the method again, and the operator sees the reason in
  `gridmarket admin payment-method ACCOUNT --show`; Stripe's own message is logged.
- 409 (`idempotency_key_in_use`: the same key is still running), 424, 429, 5xx, a timeout,
  a refused or broken connection, an answer that is not Stripe's JSON:
  `PaymentUnavailable`: the outcome is unknown; the AutoBuyer keeps the charge pending and
  asks again with the same key (a lost answer to a charge that went through is then replayed
  as `Charged`). Known limit: Stripe replays a 5xx to the same key too, so a charge whose
  first answer was a 5xx stays pending (the account's reloads answer 503) until Stripe
  forgets the key (after 24 hours) or the operator reconciles it in Stripe's dashboard.

A declined intent that is still open (`requires_payment_method`, `requires_action`,
`requires_confirmation`, `requires_capture`, from a 200 or inside a 402's error) is cancelled
(`POST /v1/payment_intents/{id}/cancel`, `cancellation_reason=abandoned`): otherwise the
customer could still complete it outside Gridmarket (authenticate it, say), and Stripe would
take money that no deposit ever credits. A cancellation that fails is logged with the
intent's id, for the operator to cancel it in Stripe's dashboard; the decline stands.

Amounts: Stripe takes USD in whole cents. A charge that is not a whole number of cents
(10,000 micro-USD) is refused before any request, `Declined("amount_not_whole_cents")`; the
self-settings API refuses such Auto-Reload amounts while this provider is configured, so only
an amount stored before the switch can meet it. No method recorded: `Declined
("no_payment_method")`, without a request.

One `httpx2.AsyncClient` per provider: bounded pool, connect/read/total timeouts, no
redirects, no proxy from the environment. The secret key lives only in the client's default
headers: never in a repr, a log line or an error message.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, NamedTuple

import httpx2
import sqlalchemy as sa

from gridmarket.adapters import payment
from gridmarket.adapters.payment import Charged, ChargeResult, Declined, PaymentUnavailable

log = logging.getLogger(__name__)

#: Micro-USD in one cent: Stripe's smallest USD unit.
USD_MICROS_PER_CENT = 10_000
#: Stripe's smallest USD charge (an `amount_too_small` error below it).
MIN_CHARGE_USD_MICROS = 500_000
#: The longest Stripe answer read (a PaymentIntent is a few kilobytes).
MAX_ANSWER_BYTES = 256 * 1024
_TRANSIENT_STATUSES = frozenset({409, 424, 429})
#: A declined intent in one of these can still be completed: it is cancelled.
_OPEN_STATUSES = frozenset(
    {"requires_payment_method", "requires_action", "requires_confirmation", "requires_capture"}
)
_INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,250}")
_DESCRIPTION = "Gridmarket Auto-Reload"


class StripeConfig(NamedTuple):
    secret_key: str
    api_base: str = "https://api.stripe.com"
    connect_timeout_s: float = 5.0
    #: The whole request, answer read included. Below Auto Mode's 30 s wait for a buy, so a
    #: hung request becomes a retryable 503 before the waiting calls give up.
    total_timeout_s: float = 20.0
    max_connections: int = 8

    def __repr__(self) -> str:  # the key never shows
        return f"StripeConfig(api_base={self.api_base!r})"


def cents_of(amount_usd_micros: int) -> int | None:
    """The amount in whole cents; None when it is not a whole number of cents."""
    cents, rest = divmod(amount_usd_micros, USD_MICROS_PER_CENT)
    return None if rest or cents <= 0 else cents


def reload_amount_problem(amount_usd_micros: int) -> str | None:
    """Why Stripe cannot charge this Auto-Reload amount; None when it can."""
    if amount_usd_micros % USD_MICROS_PER_CENT:
        return "must be a whole number of cents with the Stripe payment provider"
    if amount_usd_micros < MIN_CHARGE_USD_MICROS:
        return "must be at least 0.50 with the Stripe payment provider (Stripe's smallest charge)"
    return None


class StripePaymentProvider:
    """The payment port over Stripe's PaymentIntents API; see the module doc."""

    def __init__(
        self,
        engine: sa.Engine,
        config: StripeConfig,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> None:
        self._engine = engine
        self._config = config
        self._client = httpx2.AsyncClient(
            base_url=config.api_base.rstrip("/"),
            headers={"Authorization": f"Bearer {config.secret_key}"},
            timeout=httpx2.Timeout(
                connect=config.connect_timeout_s,
                read=config.total_timeout_s,
                write=config.total_timeout_s,
                pool=config.connect_timeout_s,
            ),
            limits=httpx2.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            transport=transport,
            follow_redirects=False,
            trust_env=False,
        )

    def __repr__(self) -> str:
        return f"StripePaymentProvider({self._config!r})"

    async def aclose(self) -> None:
        await self._client.aclose()

    async def charge(
        self, account_id: str, amount_usd_micros: int, idempotency_key: str
    ) -> ChargeResult:
        cents = cents_of(amount_usd_micros)
        if cents is None:
            return Declined(idempotency_key, "amount_not_whole_cents")
        pinned = await asyncio.to_thread(self._method_for, account_id, idempotency_key)
        if pinned is None:
            return Declined(idempotency_key, "no_payment_method")
        form = {
            "amount": str(cents),
            "currency": "usd",
            "customer": pinned.customer_id,
            "payment_method": pinned.payment_method_id,
            "confirm": "true",
            "off_session": "true",
            "description": _DESCRIPTION,
            "metadata[account_id]": account_id,
            "metadata[idempotency_key]": idempotency_key,
        }
        status, body = await self._request(
            "POST", "/v1/payment_intents", data=form, headers={"Idempotency-Key": idempotency_key}
        )
        if status != 200:
            result = _error_result(idempotency_key, status, body)
            error = body.get("error")
            intent = error.get("payment_intent") if isinstance(error, dict) else None
        else:
            if body.get("status") == "processing" and isinstance(body.get("id"), str):
                # The answer is Stripe's saved one: read what became of the intent since.
                status, body = await self._request("GET", f"/v1/payment_intents/{body['id']}")
                if status != 200:
                    raise PaymentUnavailable(f"stripe_http_{status}")
            result = _intent_result(idempotency_key, amount_usd_micros, body)
            intent = body
        if isinstance(result, Declined):
            await self._cancel_open(intent, idempotency_key)
        return result

    def _method_for(self, account_id: str, idempotency_key: str) -> payment.StripeMethod | None:
        """The method to send: the one this charge was first sent with, else the account's."""
        method = payment.get_method(self._engine, account_id)
        current = None
        if method is not None and method.stripe_customer_id and method.stripe_payment_method_id:
            current = payment.StripeMethod(
                method.stripe_customer_id, method.stripe_payment_method_id
            )
        return payment.pin_stripe_method(self._engine, idempotency_key, current)

    async def _cancel_open(self, intent: object, idempotency_key: str) -> None:
        """Cancel a declined intent that could still be completed (see the module doc)."""
        if not isinstance(intent, dict) or intent.get("status") not in _OPEN_STATUSES:
            return
        intent_id = intent.get("id")
        if not isinstance(intent_id, str) or not _INTENT_ID.fullmatch(intent_id):
            return
        try:
            status, _ = await self._request(
                "POST",
                f"/v1/payment_intents/{intent_id}/cancel",
                data={"cancellation_reason": "abandoned"},
                headers={"Idempotency-Key": f"{idempotency_key}:cancel"},
            )
            failure = None if status == 200 else f"HTTP {status}"
        except PaymentUnavailable as exc:
            failure = str(exc)
        if failure is not None:
            log.warning(
                "could not cancel declined PaymentIntent %s (%s): cancel it in Stripe's "
                "dashboard, or the customer may still complete it",
                intent_id,
                failure,
            )

    async def _request(self, method: str, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, the JSON object answered); `PaymentUnavailable` when no usable answer
        came, or the status says to ask again later."""
        try:
            async with asyncio.timeout(self._config.total_timeout_s):
                response = await self._client.request(method, path, **kwargs)
                raw = response.content
        except (TimeoutError, httpx2.TimeoutException):
            raise PaymentUnavailable("stripe_timeout") from None
        except httpx2.HTTPError as exc:
            log.warning("Stripe unreachable: %s", type(exc).__name__)
            raise PaymentUnavailable("stripe_unreachable") from None
        status = response.status_code
        if status in _TRANSIENT_STATUSES or status >= 500:
            log.warning("Stripe answered %s to %s %s: asking again later", status, method, path)
            raise PaymentUnavailable(f"stripe_http_{status}")
        body = _json_object(raw)
        if body is None:
            raise PaymentUnavailable("stripe_bad_answer")
        return status, body


def _json_object(raw: bytes) -> dict[str, Any] | None:
    if len(raw) > MAX_ANSWER_BYTES:
        return None
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def _text(value: object) -> str | None:
    return value[: payment.MAX_KEY_CHARS - 10] if isinstance(value, str) and value else None


def _error_result(idempotency_key: str, status: int, body: dict[str, Any]) -> ChargeResult:
    """A 4xx answer (transient ones were raised already): the decline it amounts to."""
    error = body.get("error")
    error = error if isinstance(error, dict) else {}
    code, kind = _text(error.get("code")), _text(error.get("type"))
    log.warning(
        "Stripe refused charge %s: HTTP %s, %s/%s: %s",
        idempotency_key,
        status,
        kind,
        code,
        error.get("message"),
    )
    if status == 402:
        return Declined(idempotency_key, _text(error.get("decline_code")) or code or "declined")
    if status == 401:
        return Declined(idempotency_key, "stripe_authentication_failed")
    if status == 403:
        return Declined(idempotency_key, "stripe_permission_denied")
    return Declined(idempotency_key, f"stripe_{code or kind or f'http_{status}'}")


def _intent_result(
    idempotency_key: str, amount_usd_micros: int, intent: dict[str, Any]
) -> ChargeResult:
    """What a PaymentIntent's status means for the charge (see the module doc)."""
    status = intent.get("status")
    if status == "succeeded":
        return Charged(idempotency_key, amount_usd_micros)
    if status == "processing":
        raise PaymentUnavailable("processing")
    if status == "requires_payment_method":
        error = intent.get("last_payment_error")
        error = error if isinstance(error, dict) else {}
        reason = _text(error.get("decline_code")) or _text(error.get("code"))
        return Declined(idempotency_key, reason or "payment_failed")
    if status == "requires_action":
        return Declined(idempotency_key, "authentication_required")
    if status == "canceled":
        return Declined(idempotency_key, "canceled")
    if not isinstance(status, str):
        raise PaymentUnavailable("stripe_bad_answer")
    return Declined(idempotency_key, f"stripe_status_{_text(status)}")
