"""A limit on every request body: larger bodies get 413 in their surface's error shape, unread.

Applied to the whole app as plain ASGI middleware, before routing, so no endpoint can forget
it. A declared `content-length` over the limit is refused before any byte is read; a body
without one (chunked) is counted as it arrives and refused as soon as it passes the limit.

The consumption surfaces carry whole conversations (long contexts, base64 images), so their
paths get a larger limit than the Trading API's, and their 413 comes in their own shape:
OpenAI's `{"error": {...}}` on `/v1/chat/completions` and `/v1/models`, Anthropic's
`{"type": "error", "error": {"type": "request_too_large", ...}}` on `/v1/messages`, The Grid's
`{"errors": {...}}` everywhere else.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1_048_576
#: Chat requests: a 128k-token context is about 0.5 MB of text; images add more.
CONSUMPTION_MAX_BODY_BYTES = 16 * 1_048_576
OPENAI_PATHS = ("/v1/chat/completions", "/v1/models")
ANTHROPIC_PATHS = ("/v1/messages",)


class BodyTooLarge(Exception):
    pass


def _too_large_body(path: str, max_body_bytes: int) -> bytes:
    detail = f"request body larger than {max_body_bytes} bytes"
    body: dict[str, object]
    if path.startswith(OPENAI_PATHS):
        body = {
            "error": {
                "message": detail,
                "type": "invalid_request_error",
                "param": None,
                "code": "request_too_large",
            }
        }
    elif path.startswith(ANTHROPIC_PATHS):
        body = {"type": "error", "error": {"type": "request_too_large", "message": detail}}
    else:
        body = {"errors": {"detail": detail, "code": "request_too_large", "message": detail}}
    return json.dumps(body).encode()


def limit_for(path: str, max_body_bytes: int, consumption_max_body_bytes: int) -> int:
    """The body limit of a request to `path`: the consumption surfaces' is larger."""
    if path.startswith(OPENAI_PATHS + ANTHROPIC_PATHS):
        return consumption_max_body_bytes
    return max_body_bytes


def declared_over(scope: Scope, limit: int) -> bool:
    """Whether the request declares a `content-length` over `limit` (refused unread)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    return True
            except ValueError:
                pass
    return False


def counting(receive: Receive, limit: int) -> Receive:
    """`receive`, raising `BodyTooLarge` as soon as the body read passes `limit` bytes."""
    received = 0

    async def counting_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge
        return message

    return counting_receive


async def refuse(send: Send, path: str, limit: int) -> None:
    """Send the 413 for `path`, in its surface's shape, and close the connection."""
    body = _too_large_body(path, limit)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        consumption_max_body_bytes: int = CONSUMPTION_MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.consumption_max_body_bytes = consumption_max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = limit_for(path, self.max_body_bytes, self.consumption_max_body_bytes)
        if declared_over(scope, limit):
            await refuse(send, path, limit)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting(receive, limit), tracking_send)
        except BodyTooLarge:
            if not started:
                await refuse(send, path, limit)
