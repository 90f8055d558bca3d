"""Small validators for the JSON bodies of self-service and operator routes, raising `Problem`.

Routes read the raw body themselves (after the signature or token check) and pass it through
`json_object`; every refusal is a 422 `validation_error` naming the field, in the envelope.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Any

from gridmarket.api import wire
from gridmarket.api.errors import Problem
from gridmarket.api.money import parse_usd_micros

#: The largest body any of these routes reads.
MAX_BODY_BYTES = 8_192


def invalid(field: str, why: str, code: str = "validation_error") -> Problem:
    return Problem(422, code, f"{field}: {why}")


def json_object(raw: bytes, allowed: Collection[str], *, field: str = "body") -> dict[str, Any]:
    """The body as a JSON object with no key outside `allowed`."""
    if len(raw) > MAX_BODY_BYTES:
        raise Problem(413, "request_too_large", f"body: at most {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        raise invalid(field, "must be a JSON object") from None
    return object_of(body, allowed, field=field)


def object_of(value: object, allowed: Collection[str], *, field: str) -> dict[str, Any]:
    """`value` as a JSON object with no key outside `allowed`."""
    if not isinstance(value, dict):
        raise invalid(field, "must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise invalid(f"{field}.{unknown[0]}", "unknown field; allowed: " + ", ".join(allowed))
    return value


def text(value: object, field: str, max_chars: int) -> str:
    """A non-blank string of printable characters, at most `max_chars` long."""
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "required, a non-empty string")
    if len(value) > max_chars:
        raise invalid(field, f"at most {max_chars} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise invalid(field, "control characters are not allowed")
    return value


def boolean(value: object, field: str) -> bool:
    if type(value) is not bool:
        raise invalid(field, "must be true or false")
    return value


def usd_micros(value: object, field: str, max_usd_micros: int) -> int:
    """A positive decimal string of USD (`"12.50"`) as micro-USD, at most `max_usd_micros`."""
    try:
        micros = parse_usd_micros(value)
    except ValueError as why:
        raise invalid(field, str(why)) from None
    if micros > max_usd_micros:
        raise invalid(field, f"at most {wire.usd(max_usd_micros)} USD")
    return micros
