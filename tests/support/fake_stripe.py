"""A small Stripe for tests: `POST /v1/payment_intents`, `GET /v1/payment_intents/{id}` and
`POST /v1/payment_intents/{id}/cancel` as Stripe's API answers them, served by uvicorn in a
thread on a free loopback port.

    with FakeStripe() as stripe:          # stripe.api_base == "http://127.0.0.1:<port>"
        ...                               # stripe.executed: every intent it charged for real

What it checks and does like Stripe:
- `Authorization: Bearer <SECRET_KEY>`; otherwise 401 `invalid_request_error`;
- a form-encoded body with `amount` (whole cents, at least 50), `currency=usd`, `customer`,
  `payment_method`, `confirm=true`, `off_session=true`; a missing or wrong one is a 400
  (`parameter_missing`, `parameter_invalid_integer`, `amount_too_small`); a customer not in
  `customers` is a 400 `resource_missing`;
- `Idempotency-Key`: the first answer to a key is saved and replayed to every later request
  with it (a 200 or an error alike), which therefore charges once; the same key with other
  parameters is a 400 `idempotency_error`;
- Stripe's test payment methods: `pm_card_visa` succeeds; `pm_card_chargeDeclined` is a 402
  `card_declined`/`generic_decline`; `pm_card_chargeDeclinedInsufficientFunds` a 402
  `card_declined`/`insufficient_funds`; `pm_card_authenticationRequired` a 402
  `authentication_required` (each leaving its intent open, `requires_payment_method`); and
  two of this fake's own: `pm_fake_processing`, whose intent stays `processing` until the test
  calls `settle(intent_id, status)`, and `pm_fake_requires_action`, a 200 whose intent waits
  for the customer to authenticate (`requires_action`);
- cancelling an open intent makes it `canceled` (a settled or cancelled one: a 400
  `payment_intent_unexpected_state`); `cancel_failures` cancellations answer a 500 first.

Failure switches for the unknown-outcome path (`mode`, each for the next `times` requests):
`rate_limit` (429, nothing executed or saved, as Stripe's limiter runs before idempotency),
`error500` (500 `api_error`, nothing executed), and `lost` (the charge is executed and its
answer saved, then the server hangs `hang_s` before answering, so the client times out: the
answer is lost, the charge is made).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from threaded_server import ThreadedServer

SECRET_KEY = "sk_test_gridmarket_fake"
CUSTOMER = "cus_TestCustomer1"
_DECLINES = {
    "pm_card_chargeDeclined": ("card_declined", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": ("card_declined", "insufficient_funds"),
    "pm_card_authenticationRequired": ("authentication_required", "authentication_required"),
}
_REQUIRED = ("amount", "currency", "customer", "payment_method", "confirm", "off_session")


def _error(status: int, kind: str, code: str | None, message: str, **more: Any) -> Response:
    body = {"error": {"type": kind, "code": code, "message": message, **more}}
    return JSONResponse(body, status)


class FakeStripe(ThreadedServer):
    def __init__(self) -> None:
        self.customers = {CUSTOMER}
        #: Intents created and confirmed, by id (each one a real charge attempt).
        self.intents: dict[str, dict[str, Any]] = {}
        #: The ids of intents that took money.
        self.executed: list[str] = []
        #: Every request received: (method, path, form or None, idempotency key or None).
        self.requests: list[tuple[str, str, dict[str, str] | None, str | None]] = []
        self.mode = ""
        self.times = 0
        self.hang_s = 5.0
        #: Cancellations still to answer with a 500.
        self.cancel_failures = 0
        self._saved: dict[str, tuple[dict[str, str], int, dict[str, Any]]] = {}
        app = Starlette(
            routes=[
                Route("/v1/payment_intents", self._create, methods=["POST"]),
                Route("/v1/payment_intents/{intent_id}", self._retrieve, methods=["GET"]),
                Route("/v1/payment_intents/{intent_id}/cancel", self._cancel, methods=["POST"]),
            ]
        )
        super().__init__(app, "the fake Stripe")
        self.api_base = f"http://127.0.0.1:{self.port}"

    def fail(self, mode: str, times: int = 1) -> None:
        self.mode, self.times = mode, times

    def settle(self, intent_id: str, status: str) -> None:
        """A processing intent's outcome arrives (`succeeded` or `requires_payment_method`)."""
        intent = self.intents[intent_id]
        intent["status"] = status
        if status == "succeeded":
            self.executed.append(intent_id)
        else:
            intent["last_payment_error"] = {"code": "card_declined", "decline_code": "do_not_honor"}

    def charged_cents(self) -> list[int]:
        return [int(self.intents[i]["amount"]) for i in self.executed]

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {SECRET_KEY}"

    def _take_failure(self) -> str:
        if self.times <= 0:
            return ""
        self.times -= 1
        return self.mode

    async def _create(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        key = request.headers.get("idempotency-key")
        self.requests.append(("POST", "/v1/payment_intents", form, key))
        if not self._authorized(request):
            return _error(401, "invalid_request_error", None, "Invalid API Key provided: sk_****")
        if request.headers.get("content-type") != "application/x-www-form-urlencoded":
            return _error(400, "invalid_request_error", None, "Stripe takes form-encoded bodies")
        failure = self._take_failure()
        if failure == "rate_limit":
            return _error(429, "invalid_request_error", "rate_limit", "Too many requests")
        if failure == "error500":
            return _error(500, "api_error", None, "Something went wrong on Stripe's end")
        if key is not None and key in self._saved:
            saved_form, status, body = self._saved[key]
            if saved_form != form:
                return _error(400, "idempotency_error", None, "Keys for idempotent requests ...")
            return JSONResponse(body, status, headers={"Idempotent-Replayed": "true"})
        status, body = self._execute(form)
        if key is not None:
            self._saved[key] = (form, status, body)
        if failure == "lost":
            await asyncio.sleep(self.hang_s)
        return JSONResponse(body, status)

    def _execute(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        for name in _REQUIRED:
            if name not in form:
                return 400, {
                    "error": {"type": "invalid_request_error", "code": "parameter_missing"}
                }
        if not form["amount"].isdigit():
            return 400, {
                "error": {"type": "invalid_request_error", "code": "parameter_invalid_integer"}
            }
        if int(form["amount"]) < 50:
            return 400, {"error": {"type": "invalid_request_error", "code": "amount_too_small"}}
        if (form["currency"], form["confirm"], form["off_session"]) != ("usd", "true", "true"):
            return 400, {"error": {"type": "invalid_request_error", "code": "parameter_invalid"}}
        if form["customer"] not in self.customers:
            error = {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "param": "customer",
                "message": f"No such customer: '{form['customer']}'",
            }
            return 400, {"error": error}
        intent_id = f"pi_fake{len(self.intents) + 1}"
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": int(form["amount"]),
            "currency": "usd",
            "customer": form["customer"],
            "payment_method": form["payment_method"],
            "metadata": {k[9:-1]: v for k, v in form.items() if k.startswith("metadata[")},
            "last_payment_error": None,
        }
        self.intents[intent_id] = intent
        decline = _DECLINES.get(form["payment_method"])
        if decline is not None:
            code, decline_code = decline
            intent["status"] = "requires_payment_method"
            intent["last_payment_error"] = {"code": code, "decline_code": decline_code}
            error = {
                "type": "card_error",
                "code": code,
                "decline_code": decline_code,
                "message": "Your card was declined.",
                "payment_intent": dict(intent),
            }
            return 402, {"error": error}
        if form["payment_method"] == "pm_fake_requires_action":  # 3-D Secure, say
            intent["status"] = "requires_action"
            return 200, dict(intent)
        if form["payment_method"] == "pm_fake_processing":
            intent["status"] = "processing"
            return 200, dict(intent)
        if form["payment_method"] != "pm_card_visa":
            intent["status"] = "requires_payment_method"
            return 400, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}
        intent["status"] = "succeeded"
        self.executed.append(intent_id)
        return 200, dict(intent)

    async def _retrieve(self, request: Request) -> Response:
        intent_id = request.path_params["intent_id"]
        self.requests.append(("GET", f"/v1/payment_intents/{intent_id}", None, None))
        if not self._authorized(request):
            return _error(401, "invalid_request_error", None, "Invalid API Key provided")
        intent = self.intents.get(intent_id)
        if intent is None:
            return _error(404, "invalid_request_error", "resource_missing", "No such intent")
        return JSONResponse(dict(intent))

    async def _cancel(self, request: Request) -> Response:
        intent_id = request.path_params["intent_id"]
        form = dict(parse_qsl((await request.body()).decode(), keep_blank_values=True))
        self.requests.append(("POST", f"/v1/payment_intents/{intent_id}/cancel", form, None))
        if not self._authorized(request):
            return _error(401, "invalid_request_error", None, "Invalid API Key provided")
        if self.cancel_failures > 0:
            self.cancel_failures -= 1
            return _error(500, "api_error", None, "Something went wrong on Stripe's end")
        intent = self.intents.get(intent_id)
        if intent is None:
            return _error(404, "invalid_request_error", "resource_missing", "No such intent")
        if intent["status"] in ("succeeded", "canceled", "processing"):
            return _error(
                400, "invalid_request_error", "payment_intent_unexpected_state", "cannot cancel"
            )
        intent["status"] = "canceled"
        intent["cancellation_reason"] = form.get("cancellation_reason")
        return JSONResponse(dict(intent))
