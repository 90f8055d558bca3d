"""The WebSocket endpoint and the channel protocol of one connection (see `gridmarket.api.feed`).

Per frame, on topic `ws:trading` (anything else: `unmatched_topic`; `phoenix`/`heartbeat` is
answered on any connection):

    phx_join      -> phx_reply ok {}                                  (needed before the rest)
    authenticate  -> phx_reply ok {account_id} | error {reason: auth code, detail}
    subscribe     -> ack {request_id, status ok|partial|error, action, streams, rejected}
                     and phx_reply (same ref) ok|error with that ack as response
    unsubscribe   -> the same, action "unsubscribe"
    phx_leave     -> phx_reply ok {}; every stream is dropped, join again to go on
    heartbeat     -> phx_reply ok {} on topic `phoenix`

Errors are `phx_reply` with `status: "error"` and `response: {reason, detail}`; a frame that
cannot be read at all (not JSON, too big, binary) gets a `phx_error` push with the reason
(there is no ref to reply to). Nothing a client sends ends the connection except idling past
`FeedLimits.idle_timeout_s`; errors never touch the market.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from gridmarket.api.feed import frames
from gridmarket.api.feed.hub import (
    CLOSE_POLICY,
    CLOSE_TRY_AGAIN,
    MARKET_STREAMS,
    STREAMS,
    TOPIC,
    USER_ORDERS,
    Connection,
    Hub,
    Stream,
    running_hub,
)
from gridmarket.api.signed import KeyCache, KeyCacheEntry
from gridmarket.auth.outcomes import AuthCode, AuthFailure, Fingerprint
from gridmarket.auth.signing import verify_ws_authenticate
from gridmarket.service.market import MarketService

PATHS = ("/v1/trading_socket/websocket", "/trading_socket/websocket", "/v1/", "/v1")
MAX_REQUEST_ID_CHARS = 128
MAX_STREAM_NAME_CHARS = 64
MAX_MARKET_ID_CHARS = 128

router = APIRouter(tags=["live feed"], lifespan=running_hub)


class Refused(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


async def trading_socket(websocket: WebSocket) -> None:
    hub = getattr(websocket.app.state, "feed_hub", None)
    await websocket.accept()
    if not isinstance(hub, Hub) or hub.model is None:
        await websocket.close(CLOSE_TRY_AGAIN, "service_unavailable")
        return
    connection = hub.connect(websocket.query_params.get("vsn", "").startswith("2."))
    if connection is None:
        await websocket.close(CLOSE_TRY_AGAIN, "too_many_connections")
        return
    writer = asyncio.create_task(connection.write(websocket), name="feed-writer")
    try:
        await _read(websocket, connection, hub)
    finally:
        hub.forget(connection)
        if connection.closing is None:
            writer.cancel()  # the client left: nothing more to send
        # Otherwise the writer sends the reason and closes (each step bounded by a timeout).
        with contextlib.suppress(BaseException):
            await writer


for _path in PATHS:
    router.add_api_websocket_route(_path, trading_socket)


async def _read(websocket: WebSocket, connection: Connection, hub: Hub) -> None:
    limits = hub.limits
    while connection.closing is None:
        try:
            message = await asyncio.wait_for(websocket.receive(), limits.idle_timeout_s)
        except TimeoutError:
            idle = f"nothing received for {limits.idle_timeout_s:g} s"
            connection.close(CLOSE_POLICY, "idle_timeout", idle)
            return
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            _error_push(connection, "binary_frames_unsupported", "frames are JSON text")
            continue
        if len(text) > limits.max_frame_bytes:
            _error_push(
                connection, "frame_too_large", f"a frame is at most {limits.max_frame_bytes}"
            )
            continue
        try:
            frame = frames.parse(text)
        except frames.FrameError as error:
            if error.ref is None:
                _error_push(connection, error.reason, error.detail)
            else:
                _reply(
                    connection, error.ref, None, TOPIC, "error", _why(error.reason, error.detail)
                )
            continue
        await _handle(websocket, connection, hub, frame)


def _why(reason: str, detail: str) -> dict[str, str]:
    return {"reason": reason, "detail": detail}


def _error_push(connection: Connection, reason: str, detail: str) -> None:
    body = frames.dumps(_why(reason, detail))
    connection.send(frames.encode(connection.v2, "phoenix", "phx_error", body))


def _reply(
    connection: Connection,
    ref: str | int | None,
    join_ref: str | int | None,
    topic: str,
    status: str,
    response: dict[str, Any],
    v2: bool | None = None,
) -> None:
    body = frames.dumps({"status": status, "response": response})
    as_v2 = connection.v2 if v2 is None else v2
    connection.send(frames.encode(as_v2, topic, "phx_reply", body, ref, join_ref))


async def _handle(
    websocket: WebSocket, connection: Connection, hub: Hub, frame: frames.Frame
) -> None:
    def reply(status: str, response: dict[str, Any]) -> None:
        _reply(connection, frame.ref, frame.join_ref, frame.topic, status, response, frame.v2)

    if frame.topic == "phoenix":
        if frame.event == "heartbeat":
            reply("ok", {})
        else:
            reply("error", _why("unknown_event", f"topic phoenix has no event {frame.event!r}"))
        return
    if frame.topic != TOPIC:
        reply("error", _why("unmatched_topic", f"the only topic is {TOPIC!r}"))
        return
    if frame.event == "phx_join":
        connection.joined = True
        connection.join_ref = frame.join_ref if frame.v2 else frame.ref
        connection.v2 = frame.v2
        reply("ok", {})
        return
    if not connection.joined:
        reply("error", _why("not_joined", f"join {TOPIC!r} (phx_join) first"))
        return
    if frame.event == "phx_leave":
        for stream in list(connection.streams):
            hub.unsubscribe(connection, stream)
        connection.joined = False
        reply("ok", {})
    elif frame.event == "authenticate":
        try:
            account_id = await _authenticate(websocket, connection, frame.payload)
        except Refused as refused:
            reply("error", _why(refused.reason, refused.detail))
        else:
            reply("ok", {"account_id": account_id})
    elif frame.event in ("subscribe", "unsubscribe"):
        _subscribe(connection, hub, frame, reply)
    else:
        reply("error", _why("unknown_event", f"unknown event {frame.event!r}"))


async def _authenticate(
    websocket: WebSocket, connection: Connection, payload: dict[str, Any]
) -> str:
    """The signed `authenticate` step: Ed25519 over timestamp + fingerprint, 30 s window."""
    market = websocket.app.state.market
    if not isinstance(market, MarketService):
        raise Refused("service_unavailable", "the market service is not running")
    state = websocket.app.state
    if getattr(state, "signing_key_cache", None) is None:
        state.signing_key_cache = KeyCache()
    cache: KeyCache = state.signing_key_cache
    used: list[KeyCacheEntry] = []

    def lookup(fingerprint: Fingerprint) -> bytes | None:
        entry = cache.get(fingerprint)
        if entry is None or entry.revoked:
            return None
        used.append(entry)
        return entry.public_key_raw

    result = verify_ws_authenticate(payload, int(time.time()), lookup)
    if isinstance(result, AuthFailure) and result.code == AuthCode.unknown_fingerprint:
        fingerprint = payload.get("fingerprint")
        assert isinstance(fingerprint, str)  # the fingerprint's format was checked
        if cache.get(fingerprint) is None and await cache.load(market, fingerprint) is not None:
            result = verify_ws_authenticate(payload, int(time.time()), lookup)
    if isinstance(result, AuthFailure):
        raise Refused(result.code.value, result.detail)
    account_id = used[-1].account_id
    if connection.account_id is not None and connection.account_id != account_id:
        raise Refused("already_authenticated", "this connection belongs to another account")
    connection.account_id = account_id
    return account_id


def _subscribe(connection: Connection, hub: Hub, frame: frames.Frame, reply: Any) -> None:
    action = frame.event
    payload = frame.payload
    request_id = payload.get("request_id")
    ack: dict[str, Any] = {"request_id": None, "status": "error", "action": action}
    try:
        if request_id is not None and (
            not isinstance(request_id, str) or len(request_id) > MAX_REQUEST_ID_CHARS
        ):
            raise Refused("invalid_request_id", f"a string of at most {MAX_REQUEST_ID_CHARS}")
        ack["request_id"] = request_id
        streams = _requested_streams(payload.get("streams"), hub.limits.max_subscriptions)
    except Refused as refused:
        ack |= {"streams": [], "rejected": [], **_why(refused.reason, refused.detail)}
        connection.push("ack", ack)
        reply("error", ack)
        return
    accepted: list[Stream] = []
    rejected: list[dict[str, Any]] = []
    for stream in streams:
        if action == "unsubscribe":
            if stream in connection.streams:
                hub.unsubscribe(connection, stream)
            accepted.append(stream)
            continue
        refusal = _refusal(connection, hub, stream, accepted)
        if refusal is None:
            accepted.append(stream)
        else:
            rejected.append(_stream_json(stream) | _why(*refusal))
    status = "ok" if not rejected else "partial" if accepted else "error"
    ack |= {
        "status": status,
        "streams": [_stream_json(s) for s in accepted],
        "rejected": rejected,
    }
    if status == "error":
        ack |= _why(rejected[0]["reason"], rejected[0]["detail"])
    connection.push("ack", ack)
    reply("ok" if accepted else "error", ack)
    if action == "subscribe":
        # After the ack, with no await: a book snapshot is followed by exactly the later diffs.
        for stream in accepted:
            hub.subscribe(connection, stream)


def _stream_json(stream: Stream) -> dict[str, Any]:
    name, market = stream
    return {"name": name} if market is None else {"name": name, "market": market}


def _requested_streams(raw: object, limit: int) -> list[Stream]:
    if not isinstance(raw, list) or not raw:
        raise Refused("invalid_streams", "`streams` must be a non-empty list of {name, market?}")
    if len(raw) > limit:
        raise Refused("too_many_streams", f"at most {limit} streams per request")
    streams: list[Stream] = []
    for item in raw:
        if not isinstance(item, dict):
            raise Refused("invalid_streams", "each stream is an object {name, market?}")
        name, market = item.get("name"), item.get("market")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_STREAM_NAME_CHARS:
            raise Refused("invalid_streams", "a stream's `name` must be a short string")
        if market is not None and (
            not isinstance(market, str) or not 0 < len(market) <= MAX_MARKET_ID_CHARS
        ):
            raise Refused("invalid_streams", "a stream's `market` must be a short string")
        stream: Stream = (name, None if name == USER_ORDERS else market)
        if stream not in streams:
            streams.append(stream)
    return streams


def _refusal(
    connection: Connection, hub: Hub, stream: Stream, accepted: list[Stream]
) -> tuple[str, str] | None:
    name, market = stream
    if name not in STREAMS:
        return "unknown_stream", f"streams are {', '.join(STREAMS)}"
    if name == USER_ORDERS and connection.account_id is None:
        return "unauthenticated", "user.orders needs the authenticate step first"
    if name in MARKET_STREAMS:
        if market is None:
            return "market_required", f"{name} needs a `market`"
        if not hub.has_market(market):
            return "market_not_found", f"market {market!r} not found"
    new = [s for s in (*accepted, stream) if s not in connection.streams]
    if len(connection.streams) + len(new) > hub.limits.max_subscriptions:
        return "subscription_limit", f"at most {hub.limits.max_subscriptions} streams a connection"
    return None
