"""Lenient, exact readers for Trading API JSON: Decimal for amounts, int for quantities.

Bodies are decoded with `parse_float=Decimal` (`decode_json`), so a JSON number never becomes a
binary float: `"2.500"`, `2.5` and `2` all read as exact `Decimal`s. Quantities read as `int`
from a JSON integer, a whole-number string (`"5"`) or an integral decimal (`"5.000"`).

Leniency follows The Grid's client (grid-client-contract.md §0): unknown keys are ignored; an
optional key may be absent or null (read as None); a required key that is missing or of the
wrong type raises `ResponseFormatError` naming the object and field, so a server that breaks
the contract fails loudly instead of handing back a half-filled result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from gridmarket.client.errors import ResponseFormatError


def decode_json(raw: bytes) -> object:
    """A JSON body with every non-integer number as a `Decimal` (never a float)."""
    return json.loads(raw, parse_float=Decimal)


def envelope_data(body: object) -> object:
    """`body["data"]`; a body without the `{"data": ...}` envelope is a `ResponseFormatError`."""
    if not isinstance(body, Mapping) or "data" not in body:
        raise ResponseFormatError('the answer is not in the {"data": ...} envelope', body=body)
    return body["data"]


def data_list(body: object) -> list[object]:
    data = envelope_data(body)
    if not isinstance(data, list):
        raise ResponseFormatError("expected a list in `data`", body=body)
    return data


def _decimal(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    parsed = _decimal(value)
    if parsed is None or parsed != parsed.to_integral_value():
        return None
    return int(parsed)


class Fields:
    """Typed access to one JSON object of the answer; `what` names it in error messages."""

    __slots__ = ("obj", "what")

    def __init__(self, obj: object, what: str) -> None:
        if not isinstance(obj, Mapping):
            raise ResponseFormatError(f"{what}: expected a JSON object", body=obj)
        self.obj: Mapping[str, Any] = obj
        self.what = what

    def _bad(self, name: str, expected: str) -> ResponseFormatError:
        value = self.obj.get(name)
        return ResponseFormatError(
            f"{self.what}.{name}: expected {expected}, got {value!r}", body=self.obj
        )

    def present(self, name: str) -> bool:
        return self.obj.get(name) is not None

    def raw(self, name: str) -> object:
        return self.obj.get(name)

    def opt_text(self, *names: str) -> str | None:
        """The first of `names` that is present, as text (numbers are written out)."""
        for name in names:
            value = self.obj.get(name)
            if isinstance(value, str):
                return value
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                return str(value)
        return None

    def text(self, *names: str) -> str:
        value = self.opt_text(*names)
        if value is None:
            raise self._bad(names[0], "a string")
        return value

    def opt_dec(self, *names: str) -> Decimal | None:
        """The first of `names` that is present, as a Decimal."""
        for name in names:
            value = self.obj.get(name)
            if value is None:
                continue
            parsed = _decimal(value)
            if parsed is None:
                raise self._bad(name, "a decimal")
            return parsed
        return None

    def opt_price(self, *names: str) -> Decimal | None:
        """Like `opt_dec`, with zero read as None: a price is never zero, so `"0.000"` is how
        a ticker says there is none (no trade yet, an empty side)."""
        value = self.opt_dec(*names)
        return None if value is None or value == 0 else value

    def dec(self, name: str) -> Decimal:
        value = self.opt_dec(name)
        if value is None:
            raise self._bad(name, "a decimal")
        return value

    def opt_whole(self, *names: str) -> int | None:
        for name in names:
            value = self.obj.get(name)
            if value is None:
                continue
            parsed = _integer(value)
            if parsed is None:
                raise self._bad(name, "a whole number")
            return parsed
        return None

    def whole(self, *names: str) -> int:
        value = self.opt_whole(*names)
        if value is None:
            raise self._bad(names[0], "a whole number")
        return value

    def opt_bool(self, name: str) -> bool | None:
        value = self.obj.get(name)
        return value if isinstance(value, bool) else None

    def strs(self, name: str) -> tuple[str, ...]:
        value = self.obj.get(name)
        if not isinstance(value, list):
            return ()
        return tuple(v for v in value if isinstance(v, str))

    def sub(self, name: str) -> Fields | None:
        """A nested object, or None when it is absent or not an object."""
        value = self.obj.get(name)
        return Fields(value, f"{self.what}.{name}") if isinstance(value, Mapping) else None
