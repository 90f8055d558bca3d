"""OpenAPI declarations of the answers routes share: the error envelope and the rate limits.

Documentation only: the routes build their responses themselves (`api.errors`); these models
say what those responses look like, so /openapi.json describes them and the fuzz tests
(tests/fuzz) check every response against them.

    @router.get("/thing", responses={404: ERROR_404})
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str
    code: str
    message: str


class ErrorEnvelope(BaseModel):
    """`{"errors": {"detail", "code", "message"}}`, every error of the Trading API."""

    errors: ErrorBody


def _int_header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string", "pattern": "^[0-9]+$"}}


RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit": _int_header("The signing key's budget: the bucket's capacity."),
    "x-ratelimit-remaining": _int_header("Requests left in the budget after this one."),
    "x-ratelimit-reset": _int_header("Unix time (seconds) when the budget is full again."),
}


def error(description: str) -> dict[str, Any]:
    return {"model": ErrorEnvelope, "description": description}


SIGNED_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: error("Not authenticated: a missing, unknown, stale or bad signature, or a replay."),
    429: {
        **error("Over the signing key's rate limit (code `rate_limited`); nothing was done."),
        "headers": {
            **RATE_LIMIT_HEADERS,
            "Retry-After": _int_header("Whole seconds to wait before retrying."),
            "x-ratelimit-retry-after": _int_header("The same, for The Grid's clients."),
        },
    },
}
"""Every signed route answers these (added by `api.signed.SignedRoute`)."""
