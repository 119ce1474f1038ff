"""The tactical picture over HTTP: batches of position reports in, the picture and the
alerts out.

``POST /v1/tracks`` takes JSON (``application/json``) or Arrow IPC
(``application/vnd.apache.arrow.stream``), chosen by Content-Type; see
`deconflict.service.reports` for both forms and the rules.

No `from __future__ import annotations`: FastAPI reads these routes' annotations.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from deconflict.errors import InvalidInput
from deconflict.model import Party
from deconflict.service import Services
from deconflict.service.alerts import alert_json
from deconflict.service.reports import ARROW_MEDIA_TYPE, Reports, from_arrow, from_json
from deconflict.service.tactical import Tactical, TrackInfo

__all__ = ["MAX_TRACK_BODY_BYTES", "scan_every", "track_routes"]

_log = logging.getLogger("deconflict.api.tracks")

#: a batch body may be this large (the rest of the API keeps the default 1 MiB)
MAX_TRACK_BODY_BYTES = 64 << 20


def _parse(content_type: str, body: bytes) -> Reports:
    media = content_type.split(";")[0].strip().lower()
    if media == ARROW_MEDIA_TYPE:
        return from_arrow(body)
    if media in ("application/json", ""):
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput.one("(body)", f"must be JSON: {exc}") from None
        return from_json(doc)
    raise InvalidInput.one("content-type", f"must be application/json or {ARROW_MEDIA_TYPE}")


async def scan_every(tactical: Tactical, interval_s: float) -> None:
    """The scan cycle: `tactical.tick` every `interval_s` seconds, for ever, on a regular
    beat (a cycle that overran its slot is not made up; the next starts on the beat after)."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval_s
    while True:
        await asyncio.sleep(max(due - loop.time(), 0.0))
        try:
            await run_in_threadpool(tactical.tick)
        except Exception:  # a failed cycle (e.g. the store briefly unavailable) must not end the cycle
            _log.exception("tactical scan failed; retried next cycle")
        due += interval_s
        now = loop.time()
        if due <= now:
            due += (now - due) // interval_s * interval_s + interval_s


def track_view(t: TrackInfo) -> dict[str, Any]:
    return {
        "id": f"{t.party}/{t.track}",
        "party": t.party,
        "track": t.track,
        "kind": t.kind,
        "time": t.time_s,
        "lat": t.lat,
        "lon": t.lon,
        "alt_m": t.alt_m,
        "gs_mps": t.gs_mps,
        "trk_deg": t.trk_deg,
        "vs_mps": t.vs_mps,
        "callsign": t.callsign,
        "icao24": t.icao24,
        "intent": t.intent,
    }


def track_routes(services: Services, caller: Callable[..., Awaitable[Party]]) -> APIRouter:
    router = APIRouter(tags=["tactical"])
    Caller = Annotated[Party, Depends(caller)]
    tactical = services.tactical

    @router.post("/v1/tracks")
    async def ingest(request: Request, who: Caller) -> dict[str, Any]:
        """A batch of position reports from the caller's aircraft (JSON or Arrow IPC).
        Answers how many were applied, how many were ignored as older than the newest
        held for their track, and (scanned after every batch, scan interval 0) the alerts
        the batch opened, updated or closed and the conformance transitions; with a scan
        cycle these come with the next cycle, on the streams and at /v1/tactical/alerts."""
        body = await request.body()

        def run() -> dict[str, Any]:
            with tactical.admission:
                done = tactical.ingest(who, _parse(request.headers.get("content-type", ""), body))
            return {
                "accepted": done.accepted,
                "ignored_stale": done.ignored_stale,
                "tracks": done.tracks,
                "alerts": done.alerts,
                "transitions": done.transitions,
            }

        return await run_in_threadpool(run)

    @router.get("/v1/tracks")
    def picture(who: Caller) -> dict[str, Any]:
        """The current picture: every track's last report (time in seconds since the epoch)."""
        tracks = tactical.snapshot()
        return {"count": len(tracks), "tracks": [track_view(t) for t in tracks]}

    @router.get("/v1/tactical/alerts")
    def alerts(
        who: Caller,
        state: Annotated[Literal["open", "all"], Query()] = "open",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[dict[str, Any]]:
        """Alerts of the live picture, newest opened first: conflicts between two tracks
        (CPA figures as of `updated_at`, their last material change) and unannounced tracks
        inside a reservation."""
        return [alert_json(a) for a in tactical.alerts.list(open_only=state == "open", limit=limit)]

    return router
