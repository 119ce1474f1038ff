"""Limits on requests: oversize bodies refused before they are read into memory (413),
and text no store can keep (a NUL anywhere in a request, a lone surrogate in a JSON
body) refused before a route sees it (422)."""

from __future__ import annotations

import json
import re
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
SURROGATE_RULE = "must be valid Unicode: a lone surrogate (U+D800 to U+DFFF) is not a character"
# how JSON spells a NUL or a surrogate; a body that spells neither holds neither
_SUSPECT = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


def _text_rule(text: str) -> str | None:
    """The rule `text` breaks, if any: a NUL, or a lone surrogate (which no store can
    encode: UTF-8 has no form for it)."""
    if "\x00" in text:
        return NUL_RULE
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_RULE
    return None


def _bad_text(value: Any, at: str = "") -> tuple[str, str] | None:
    """(field path, as the problem bodies spell it; rule) of the first string in a parsed
    JSON value, member names included, that breaks a text rule; None if none does."""
    if isinstance(value, str):
        rule = _text_rule(value)
        return None if rule is None else (at, rule)
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{at}.{k}" if at else str(k)
            rule = _text_rule(k)
            found = (here, rule) if rule is not None else _bad_text(v, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _bad_text(v, f"{at}[{i}]")
            if found is not None:
                return found
    return None


async def refuse_bad_text(conn: HTTPConnection) -> None:
    """Refuse text no store can keep, as invalid input naming the field (422; 400 on the
    F3548 interface), before any route sees it: a NUL (U+0000) in a path parameter, the
    query or a JSON body (PostgreSQL's text cannot hold one, where SQLite's can), and a
    lone surrogate in a JSON body (Python's JSON reader accepts the escape; no UTF-8
    encoder does). Either would otherwise fail in the store or the encoder: a 5xx. A
    dependency of every route. Costs a look at each parameter and a search of the body,
    which is parsed again only when it spells ``\\u0000`` or a surrogate's escape."""
    field = next((k for k, v in conn.path_params.items() if "\x00" in str(v)), None)
    if field is None and b"%00" in conn.scope.get("query_string", b""):
        field = next((k for k, v in conn.query_params.multi_items() if "\x00" in k + v), None)
        field = None if field is None else field.replace("\x00", "\\u0000")
    if field is not None:
        raise InvalidInput.one(field, NUL_RULE)
    if (
        isinstance(conn, Request)
        and conn.method in ("POST", "PUT", "PATCH")
        and "json" in conn.headers.get("content-type", "")
    ):
        body = await conn.body()  # Starlette keeps it: the route reads it again for free
        if _SUSPECT.search(body):
            try:
                found = _bad_text(json.loads(body))  # the stdlib's reader keeps lone surrogates
            except ValueError:  # not JSON: the route says so
                found = None
            if found is not None:  # the path may hold the surrogate: named by its escape
                raise InvalidInput.one(found[0].encode("utf-8", "backslashreplace").decode(), found[1])
