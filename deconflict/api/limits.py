"""Refuse oversize request bodies before they are read into memory (413)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 1 << 20  # 1 MiB: thousands of volumes; more is a mistake or an attack


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI passes HTTP exceptions through to
    the problem handler, and this middleware answers itself if nothing else did."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body exceeds {limit} bytes")


def _problem(limit: int) -> tuple[dict[str, Any], bytes]:
    body = orjson.dumps(
        {
            "type": "urn:deconflict:problem:too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": f"the request body exceeds {limit} bytes",
            "errors": [{"field": "(body)", "rule": f"must be at most {limit} bytes"}],
        }
    )
    start = {
        "type": "http.response.start",
        "status": 413,
        "headers": [
            (b"content-type", b"application/problem+json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ],
    }
    return start, body


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        start, body = _problem(self.max_bytes)
        await send(start)
        await send({"type": "http.response.body", "body": body})
