"""One exception tree for every way a Trading API call can fail, built from The Grid's envelope.

    GridmarketError                 every failure; `status_code`, `code`, `detail`, `body`
    ├── TransportError              the server could not be reached (no HTTP answer)
    ├── ResponseFormatError         a 2xx answer whose body is not the shape the client expects
    ├── CredentialsError            no usable signing key (bad key file, seed, fingerprint)
    ├── ValidationError             400 and 422: the request was refused as invalid
    ├── AuthError                   401: bad or missing signature, stale timestamp, unknown key
    ├── Forbidden                   403
    │   └── AutoModeRestricted      403 `auto_mode_trading_restricted` (switch to Advanced)
    ├── NotFound                    404
    ├── Conflict                    409
    ├── RateLimited                 429, with `retry_after_s` when the server said
    └── ServerError                 5xx

The code and detail are read the way The Grid's client reads them (grid-client-contract.md
§1.4): code from `errors.code`, `error.code`, top-level `code`, then `errors.detail`; the
human text from `error.message`, `errors.message`, top-level `message`, then `errors.detail`.
Nothing here raises while reading a body: a non-JSON or odd body still becomes an error with
the status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

AUTO_MODE_CODE = "auto_mode_trading_restricted"


class GridmarketError(Exception):
    """A failed call: the HTTP status (None when there was no answer), code and detail."""

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        body: object = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status_code = status_code
        self.code = code
        self.body = body

    def __str__(self) -> str:
        where = [part for part in (self.code, _status(self.status_code)) if part]
        return f"{self.detail} ({', '.join(where)})" if where else self.detail


def _status(status_code: int | None) -> str | None:
    return None if status_code is None else f"HTTP {status_code}"


class TransportError(GridmarketError):
    """No HTTP answer: connection refused, DNS failure, timeout."""


class ResponseFormatError(GridmarketError):
    """A successful status whose body does not have the documented shape."""


class CredentialsError(GridmarketError):
    """The signing key could not be loaded, or a signed call was made without one."""


class ValidationError(GridmarketError):
    """400 or 422: the server refused the request's content."""


class AuthError(GridmarketError):
    """401: the signature, timestamp or key was refused."""


class Forbidden(GridmarketError):
    """403: authenticated, but not allowed."""


class AutoModeRestricted(Forbidden):
    """403 `auto_mode_trading_restricted`: an Auto (easy) Mode account may not trade."""


class NotFound(GridmarketError):
    """404: unknown order, market, instrument or path."""


class Conflict(GridmarketError):
    """409: the resource is not in a state that allows this (an order no longer open)."""


class RateLimited(GridmarketError):
    """429: too many requests; `retry_after_s` says when to try again, if the server said."""

    def __init__(self, detail: str, *, retry_after_s: int | None = None, **kw: Any) -> None:
        super().__init__(detail, **kw)
        self.retry_after_s = retry_after_s


class ServerError(GridmarketError):
    """5xx: the server failed or is not accepting commands now."""


_BY_STATUS: dict[int, type[GridmarketError]] = {
    400: ValidationError,
    401: AuthError,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: ValidationError,
}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(*values: object) -> str | None:
    for value in values:
        text = _text(value)
        if text is not None:
            return text
    return None


def retry_after_seconds(headers: Mapping[str, str]) -> int | None:
    """Whole seconds from `Retry-After` or `x-ratelimit-retry-after`, if either is a number."""
    for name in ("retry-after", "x-ratelimit-retry-after"):
        raw = headers.get(name)
        if raw is not None and raw.strip().isascii() and raw.strip().isdigit():
            return int(raw.strip())
    return None


def error_from_answer(
    status_code: int, headers: Mapping[str, str], body: object
) -> GridmarketError:
    """The exception for a non-2xx answer, with its code and detail from the envelope."""
    top: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
    errors = top.get("errors")
    errors = errors if isinstance(errors, Mapping) else {}
    error = top.get("error")
    error = error if isinstance(error, Mapping) else {}
    code = _first(errors.get("code"), error.get("code"), top.get("code"), errors.get("detail"))
    detail = _first(
        error.get("message"), errors.get("message"), top.get("message"), errors.get("detail")
    )
    detail = detail or f"HTTP {status_code} with no error detail"
    kw: dict[str, Any] = {"status_code": status_code, "code": code, "body": body}
    if status_code == 403 and AUTO_MODE_CODE in (code, errors.get("detail")):
        return AutoModeRestricted(detail, **kw)
    if status_code == 429:
        return RateLimited(detail, retry_after_s=retry_after_seconds(headers), **kw)
    if status_code >= 500:
        return ServerError(detail, **kw)
    return _BY_STATUS.get(status_code, GridmarketError)(detail, **kw)
