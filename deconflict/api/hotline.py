"""The hotline over HTTP: messages, acknowledgements, heartbeats, and each party's
event stream over SSE and WebSocket.

Streams follow the party's persisted event sequence: a client gives the last number it
has (SSE ``Last-Event-ID`` or ``?after=``; WebSocket ``?after=``) and is sent every
later event, in order, once; then new ones as they are committed (the service's bell
wakes the stream; without a ring it reads again every `POLL_S`, so events written by
another process on the same database arrive too).

No `from __future__ import annotations`: FastAPI reads these routes' annotations.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Header, Path, Query, Request, WebSocket, WebSocketDisconnect, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from deconflict.api import wire
from deconflict.api.signatures import signed_request_dependency
from deconflict.errors import DeconflictError, InvalidInput, NotFound, Unauthorized
from deconflict.model import Delivery, Event, Message, Party, PartyStatus, Role
from deconflict.model.signature import SignedRequest
from deconflict.service import Services
from deconflict.service.bell import POLL_S
from deconflict.service.hotline import MAX_MESSAGES, Hotline, delivery_json, message_json

__all__ = ["hotline_routes", "tick_every"]

_log = logging.getLogger("deconflict.api.hotline")
MessageId = Annotated[str, Path(max_length=64)]
#: an SSE comment this often keeps idle connections (and proxies) open
KEEPALIVE_S = 15.0
PAGE = 500


class MessageSend(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    code: str = Field(max_length=64, examples=["IDENTITY_QUERY"])
    to: list[Annotated[str, Field(max_length=63, pattern=wire.PARTY_PATTERN)]] | None = Field(
        default=None, max_length=100, description="recipient party ids (READ_BACK: the original's sender)"
    )
    fields: dict[str, Any] = Field(default_factory=dict, description="the code's typed fields")


class WebhookBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    url: str = Field(max_length=2000, examples=["https://ops.example/deconflict-hook"])


class ReplyBody(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reply: str = Field(max_length=32, examples=["WILCO"])


def message_view(hotline: Hotline, m: Message, deliveries: list[Delivery], reader: Party) -> dict[str, Any]:
    code = hotline.code(m.code)
    lang = hotline.catalogue.language(reader.language)
    return {
        **message_json(m),
        "uncoded": code.uncoded,
        "language": lang.tag,
        "text": hotline.text(m, lang.tag),
        "replies": list(code.replies),
        "deliveries": [delivery_json(d, hotline.contacts(d.recipient)) for d in deliveries],
    }


def status_view(s: PartyStatus) -> dict[str, Any]:
    return {
        "party": s.party,
        "state": "up" if s.up else "down",
        "last_heartbeat": s.last_heartbeat,
        "down_since": s.down_since,
    }


def event_json(e: Event) -> dict[str, Any]:
    return {"seq": e.seq, "at": e.at, "type": e.type, "data": dict(e.data)}


def _sse(e: Event) -> bytes:
    from deconflict.api.wire import dumps

    data = dumps(event_json(e))
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (e.seq, e.type.encode(), data)


async def follow(hotline: Hotline, party: str, after: int) -> AsyncIterator[Event | None]:
    """`party`'s events after `after`, for ever; None after each `POLL_S` without any
    (so the caller can send a keepalive or notice that its client left)."""
    seq = after
    while True:
        with hotline.bell.listening() as waiter:
            events = hotline.events(party, seq, PAGE)  # a short indexed read
            if not events:
                if not await waiter.wait(POLL_S):
                    yield None
                continue
        for e in events:
            seq = e.seq
            yield e


def _after(value: str | None, name: str) -> int:
    if value is None or value == "":
        return 0
    if not value.isdigit() or len(value) > 18:
        raise InvalidInput.one(name, "must be the number of the last event received (an integer >= 0)")
    return int(value)


def hotline_routes(services: Services, caller: Callable[..., Awaitable[Party]]) -> APIRouter:
    router = APIRouter(prefix="/v1/hotline", tags=["hotline"])
    Caller = Annotated[Party, Depends(caller)]
    Signed = Annotated[SignedRequest | None, Depends(signed_request_dependency(services, caller))]
    hotline = services.hotline

    @router.post("/messages", status_code=status.HTTP_201_CREATED)
    def send(body: MessageSend, who: Caller, signed: Signed) -> dict[str, Any]:
        """Send a coded message; it is on each recipient's stream before this answers."""
        sent = hotline.send(who, body.code, body.to, body.fields, evidence=signed)
        view = message_view(hotline, sent.message, list(sent.deliveries), who)
        return {"message": view, "receipt": _receipt(sent.receipt)}

    @router.get("/messages", response_model=list[dict[str, Any]])
    def inbox(
        request: Request,
        who: Caller,
        box: Annotated[str, Query(pattern="^(in|out|all)$")] = "in",
        limit: Annotated[int, Query(ge=1, le=MAX_MESSAGES)] = 100,
        before: wire.Cursor = None,
    ) -> Response:
        """Messages received (`in`), sent (`out`) or both, newest first, in your language. When
        older ones follow, a `Link: rel="next"` header names their page."""
        found = hotline.messages(who, box, limit, before)
        headers = {}
        if len(found) == limit and hotline.messages(who, box, 1, found[-1][0].id):
            query = dict(request.query_params) | {"box": box, "limit": str(limit)}
            headers["Link"] = wire.next_link(request.url.path, query, "before", found[-1][0].id)
        return wire.JSON([message_view(hotline, m, ds, who) for m, ds in found], headers=headers)

    @router.get("/messages/{message_id}")
    def get_message(message_id: MessageId, who: Caller) -> dict[str, Any]:
        m, ds = hotline.get(who, message_id)
        return message_view(hotline, m, ds, who)

    @router.post("/messages/{message_id}/delivered")
    def delivered(message_id: MessageId, who: Caller, signed: Signed) -> dict[str, Any]:
        """Your client has the message (the first layer of acknowledgement)."""
        d, receipt = hotline.delivered(who, message_id, evidence=signed)
        return {
            "delivery": delivery_json(d, hotline.contacts(d.recipient)),
            "receipt": _receipt(receipt) if receipt else None,
        }

    @router.post("/messages/{message_id}/reply")
    def reply(message_id: MessageId, body: ReplyBody, who: Caller, signed: Signed) -> dict[str, Any]:
        """The operator's answer, from the code's allowed replies (the second layer)."""
        d, receipt = hotline.reply(who, message_id, body.reply, evidence=signed)
        return {"delivery": delivery_json(d, hotline.contacts(d.recipient)), "receipt": _receipt(receipt)}

    @router.post("/heartbeat")
    def heartbeat(who: Caller) -> dict[str, Any]:
        """Your client is alive; send one every `heartbeat_period_s` of the agreement."""
        s = hotline.heartbeat(who)
        rules = services.agreement.hotline
        return {
            **status_view(s),
            "heartbeat_period_s": rules.heartbeat_period_s,
            "down_after_s": rules.down_after_s,
        }

    @router.get("/status")
    def party_status(who: Caller) -> list[dict[str, Any]]:
        """Every hotline party's line (operators and observers, and any other party once
        it has sent a heartbeat): up, down, or unknown (never heard a heartbeat)."""
        known = {s.party: s for s in hotline.statuses()}
        out = []
        for p in services.parties.all():
            s = known.get(p.id)
            if s is not None:
                out.append(status_view(s))
            elif p.role in (Role.OPERATOR, Role.OBSERVER):
                out.append({"party": p.id, "state": "unknown"})
        return out

    @router.put("/webhook")
    def set_webhook(body: WebhookBody, who: Caller) -> dict[str, Any]:
        """POST your events, from now on, to `url`, signed: header `X-Deconflict-Signature:
        sha256=<HMAC-SHA256 of the body under the secret>`, shown once in this answer."""
        hook, secret = services.webhooks.register(who, body.url)
        return {"url": hook.url, "secret": secret, "delivered_seq": hook.delivered_seq}

    @router.get("/webhook")
    def get_webhook(who: Caller) -> dict[str, Any]:
        hook = services.webhooks.get(who)
        if hook is None:
            raise NotFound("webhook", who.id)
        return {
            "url": hook.url,
            "delivered_seq": hook.delivered_seq,
            "failures": hook.failures,
            "next_attempt": hook.next_attempt,
        }

    @router.delete("/webhook", status_code=status.HTTP_204_NO_CONTENT)
    def delete_webhook(who: Caller) -> None:
        if not services.webhooks.remove(who):
            raise NotFound("webhook", who.id)

    @router.get("/events")
    def events(
        who: Caller,
        after: Annotated[int, Query(ge=0, le=10**18)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Your stream's events after `after`, as one page (for clients that poll)."""
        found = hotline.events(who.id, after, limit)
        return {"events": [event_json(e) for e in found], "last": found[-1].seq if found else after}

    @router.get(
        "/stream",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def stream(
        request: Request,
        who: Caller,
        after: Annotated[str | None, Query(max_length=18)] = None,
        last_event_id: Annotated[str | None, Header(max_length=18)] = None,
    ) -> StreamingResponse:
        """Server-sent events: `id:` is the event's number; reconnect with
        `Last-Event-ID` (or `?after=`) to be sent exactly what you missed."""
        start = _after(last_event_id, "Last-Event-ID") if last_event_id else _after(after, "after")

        async def body() -> AsyncIterator[bytes]:
            yield b"retry: 1000\n\n"
            idle = 0.0
            async for e in follow(hotline, who.id, start):
                if await request.is_disconnected():
                    return
                if e is not None:
                    idle = 0.0
                    yield _sse(e)
                    continue
                idle += POLL_S
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield b": keepalive\n\n"

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.websocket("/ws")
    async def ws(websocket: WebSocket, after: str | None = None) -> None:
        """JSON frames {seq, at, type, data}; connect with `?after=` the last seq you have.
        The client may send {"type": "heartbeat"} and {"type": "delivered", "message": id}."""
        header = websocket.headers.get("authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else None
        try:
            who = services.parties.authenticate(token)
            start = _after(after, "after")
        except (Unauthorized, InvalidInput) as exc:
            await websocket.close(code=1008, reason=str(exc)[:120])
            return
        await websocket.accept()
        from deconflict.api.wire import dumps

        async def receive() -> None:
            while True:
                raw = await websocket.receive_text()
                try:
                    msg = orjson.loads(raw)
                    if msg.get("type") == "heartbeat":
                        await run_in_threadpool(hotline.heartbeat, who)
                    elif msg.get("type") == "delivered":
                        await run_in_threadpool(hotline.delivered, who, str(msg.get("message")))
                except (orjson.JSONDecodeError, AttributeError, DeconflictError) as exc:
                    await websocket.send_text(orjson.dumps({"type": "error", "detail": str(exc)}).decode())

        receiver = asyncio.create_task(receive())
        try:
            async for e in follow(hotline, who.id, start):
                if receiver.done():
                    break
                if e is not None:
                    await websocket.send_text(dumps(event_json(e)).decode())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await receiver

    return router


def _receipt(receipt: Any) -> dict[str, Any]:
    from deconflict.api.wire import receipt_view

    return receipt_view(receipt)


async def tick_every(services: Services, interval_s: float) -> None:
    """Every `interval_s`: the hotline's deadlines, escalation and heartbeat check, then
    the webhooks' deliveries."""
    while True:
        await asyncio.sleep(interval_s)
        for job in (services.hotline.tick, services.webhooks.run_once):
            try:
                await run_in_threadpool(job)
            except DeconflictError as exc:
                _log.warning("hotline %s failed: %s", job.__name__, exc)
