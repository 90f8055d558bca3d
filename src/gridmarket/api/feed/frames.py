"""Phoenix channels framing, as The Grid's TradingGatewayClient speaks it, and v2 besides.

The client (grid-client-contract.md §5.1) sends JSON text frames holding a Phoenix **v1**
object `{"topic", "event", "payload", "ref"}` with `ref` a per-connection counter as a string
and no `join_ref`. Phoenix **v2** (`vsn=2.0.0`) frames are arrays
`[join_ref, ref, topic, event, payload]`; they cost nothing extra to accept, so both are read,
and every reply is written in the format of the frame it answers. Pushes (server-initiated
events) use the format of the frame that joined the channel (`vsn=2.0.0` in the URL picks v2
before any join).

`ref` and `join_ref` are echoed exactly as sent (a string or an integer, or null). Anything
else (not JSON, not an object or a 5-array, a topic or event that is not a short string, a
payload that is not an object) is a `FrameError`: the socket answers it with an error and
carries on.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

MAX_TOPIC_CHARS = 100
MAX_EVENT_CHARS = 64
MAX_REF_CHARS = 64


class Frame(NamedTuple):
    topic: str
    event: str
    payload: dict[str, Any]
    ref: str | int | None
    join_ref: str | int | None
    v2: bool


class FrameError(Exception):
    """A frame the socket cannot act on; `ref` is known when the frame got that far."""

    def __init__(self, reason: str, detail: str, ref: str | int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.ref = ref


def _ref(value: object, name: str) -> str | int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FrameError("malformed_frame", f"`{name}` must be a string, an integer or null")
    if len(str(value)) > MAX_REF_CHARS:
        raise FrameError("malformed_frame", f"`{name}` is longer than {MAX_REF_CHARS} characters")
    return value


def _name(value: object, name: str, limit: int, ref: str | int | None) -> str:
    if not isinstance(value, str) or not value:
        raise FrameError("malformed_frame", f"`{name}` must be a non-empty string", ref)
    if len(value) > limit:
        raise FrameError("malformed_frame", f"`{name}` is longer than {limit} characters", ref)
    return value


def parse(text: str) -> Frame:
    """One client frame; `FrameError` if it is not a Phoenix v1 object or v2 array."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError):
        raise FrameError("malformed_frame", "the frame is not valid JSON") from None
    if isinstance(raw, dict):
        ref = _ref(raw.get("ref"), "ref")
        join_ref = _ref(raw.get("join_ref"), "join_ref")
        topic, event, payload, v2 = raw.get("topic"), raw.get("event"), raw.get("payload"), False
    elif isinstance(raw, list) and len(raw) == 5:
        join_ref, ref = _ref(raw[0], "join_ref"), _ref(raw[1], "ref")
        topic, event, payload, v2 = raw[2], raw[3], raw[4], True
    else:
        raise FrameError(
            "malformed_frame",
            "a frame is an object {topic, event, payload, ref} or an array "
            "[join_ref, ref, topic, event, payload]",
        )
    topic = _name(topic, "topic", MAX_TOPIC_CHARS, ref)
    event = _name(event, "event", MAX_EVENT_CHARS, ref)
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise FrameError("malformed_frame", "`payload` must be an object", ref)
    return Frame(topic, event, payload, ref, join_ref, v2)


def dumps(value: Any) -> str:
    """Compact JSON, as every frame is written."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode(
    v2: bool,
    topic: str,
    event: str,
    payload_json: str,
    ref: str | int | None = None,
    join_ref: str | int | None = None,
) -> str:
    """A frame around an already-serialised payload (shared by every connection it goes to)."""
    if v2:
        return f"[{dumps(join_ref)},{dumps(ref)},{dumps(topic)},{dumps(event)},{payload_json}]"
    return (
        f'{{"topic":{dumps(topic)},"event":{dumps(event)},'
        f'"payload":{payload_json},"ref":{dumps(ref)}}}'
    )
