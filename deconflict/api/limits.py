"""Limits on requests: oversize bodies refused before they are read into memory (413),
and a NUL character anywhere in a request refused before a route sees it (422)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from deconflict.errors import InvalidInput

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
    def __init__(
        self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES, paths: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.default_bytes = max_bytes
        self.max_bytes = max_bytes
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.paths.get(scope.get("path", ""), self.default_bytes)
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await self._refuse(send, limit)
                    return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
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
                await self._refuse(send, limit)

    async def _refuse(self, send: Send, limit: int) -> None:
        start, body = _problem(limit)
        await send(start)
        await send({"type": "http.response.body", "body": body})


NUL_RULE = "must not contain NUL (U+0000)"


def _nul_path(value: Any, at: str = "") -> str | None:
    """The field path (as the problem bodies spell it) of the first string in a parsed JSON
    value, member names included, that holds a NUL; None if none does."""
    if isinstance(value, str):
        return at if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{at}.{k}" if at else str(k)
            if "\x00" in k:
                return here
            found = _nul_path(v, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_path(v, f"{at}[{i}]")
            if found is not None:
                return found
    return None


async def refuse_nul(conn: HTTPConnection) -> None:
    """Refuse a NUL character (U+0000) in a path parameter, the query or a JSON body, as
    invalid input naming the field (422; 400 on the F3548 interface): PostgreSQL's text
    cannot hold one, so it would otherwise fail in the store (a 5xx) where SQLite stores
    it. A dependency of every route. Costs a look at each parameter and a substring
    search of the body, which is parsed again only when it spells ``\\u0000``
    somewhere (the only way JSON holds a NUL)."""
    field = next((k for k, v in conn.path_params.items() if "\x00" in str(v)), None)
    if field is None and b"%00" in conn.scope.get("query_string", b""):
        field = next((k for k, v in conn.query_params.multi_items() if "\x00" in k + v), None)
        field = None if field is None else field.replace("\x00", "\\u0000")
    if field is None and isinstance(conn, Request) and conn.method in ("POST", "PUT", "PATCH"):
        body = await conn.body()  # Starlette keeps it: the route reads it again for free
        if b"\\u0000" in body:
            with contextlib.suppress(orjson.JSONDecodeError):
                field = _nul_path(orjson.loads(body))
    if field is not None:
        raise InvalidInput.one(field, NUL_RULE)
