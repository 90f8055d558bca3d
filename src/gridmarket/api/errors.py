"""The Trading API's error envelope, applied once, at the edge.

Every error leaves as `{"errors": {"detail": <text>, "code": <stable snake_case code>,
"message": <text>}}`, the shape The Grid's clients read (DESIGN section 11; `message` repeats
`detail` because The Grid's own client reads `errors.message`):

- an HTTP error (unknown path, wrong method, or an `HTTPException` raised by a route) keeps
  its status, and its code comes from a fixed table by status: `not_found`,
  `method_not_allowed`, `http_<status>` for the rest;
- a request that fails validation is a 422 `validation_error` naming the first bad field;
- a `ServiceError` (the sequencer is overloaded, stopping or stopped) is a 503
  `service_unavailable`: the request may be retried later;
- any other exception is a bug: a 500 `internal_error` with a fixed detail, so nothing
  internal leaks to the client. The traceback still reaches the server log.

The consumption surfaces (OpenAI and Anthropic shapes) have envelopes of their own; when
they arrive, they are translated here too.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from fastapi.exceptions import RequestValidationError
from fastapi.utils import is_body_allowed_for_status_code
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gridmarket.service.errors import ServiceError

INTERNAL_ERROR_DETAIL = "internal error"
INTERNAL_ERROR_CODE = "internal_error"
VALIDATION_ERROR_CODE = "validation_error"


def error_response(
    status_code: int,
    detail: str,
    code: str,
    headers: Mapping[str, str] | None = None,
    *,
    message: str | None = None,
) -> JSONResponse:
    """A response in the Trading API's error envelope (`message` defaults to `detail`)."""
    body = {"errors": {"detail": detail, "code": code, "message": message or detail}}
    return JSONResponse(body, status_code=status_code, headers=headers)


class Problem(Exception):
    """A refusal a route raises and answers with `.response()`, in the error envelope.

    `detail` defaults to the message; a few codes must stand in `detail` itself, because The
    Grid's client matches them there (`auto_mode_trading_restricted`, contract line 77).
    """

    def __init__(
        self, status_code: int, code: str, message: str, *, detail: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.detail = detail or message

    def response(self) -> JSONResponse:
        return error_response(self.status_code, self.detail, self.code, message=self.message)


def invalid(field: str, why: str, code: str = "validation_error") -> Problem:
    """The 422 for one bad request field: `field: why` in the envelope."""
    return Problem(422, code, f"{field}: {why}")


# Fixed, not derived from `http.HTTPStatus` phrases: those change between Python versions
# (413 and 422 were renamed in 3.13). Names follow The Grid's SDK codes where it has one.
#: The one code of every 429, the rate limiter's and a plain `HTTPException(429)` alike.
RATE_LIMITED_CODE = "rate_limited"

_STATUS_CODES = {
    400: "bad_request",
    401: "auth_failed",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: VALIDATION_ERROR_CODE,
    429: RATE_LIMITED_CODE,
    500: INTERNAL_ERROR_CODE,
    503: "service_unavailable",
}


def code_for_status(status_code: int) -> str:
    """`404` -> `not_found`: the stable code of a plain HTTP error; `http_<status>` otherwise."""
    return _STATUS_CODES.get(status_code, f"http_{status_code}")


async def _http_error(request: Request, exc: HTTPException) -> Response:
    if not is_body_allowed_for_status_code(exc.status_code):
        return Response(status_code=exc.status_code, headers=exc.headers)
    code = code_for_status(exc.status_code)
    return error_response(exc.status_code, str(exc.detail), code, exc.headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
    return error_response(422, detail, VALIDATION_ERROR_CODE)


async def _service_error(request: Request, exc: ServiceError) -> Response:
    return error_response(503, "the market is not accepting commands now", "service_unavailable")


async def _internal_error(request: Request, exc: Exception) -> Response:
    return error_response(500, INTERNAL_ERROR_DETAIL, INTERNAL_ERROR_CODE)


Handler = Callable[[Request, Any], Coroutine[Any, Any, Response]]

EXCEPTION_HANDLERS: dict[int | type[Exception], Handler] = {
    HTTPException: _http_error,
    RequestValidationError: _validation_error,
    ServiceError: _service_error,
    Exception: _internal_error,
}
"""Pass to `FastAPI(exception_handlers=...)`."""
