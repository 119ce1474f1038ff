"""The FastAPI application: thin routes over `deconflict.service`.

No `from __future__ import annotations` here: FastAPI reads the annotations of
routes built inside `_filing_routes` at definition time.
"""

import asyncio
import base64
import hashlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from deconflict import __version__
from deconflict.api import console, f3548, problems, wire
from deconflict.api.hotline import hotline_routes, tick_every
from deconflict.api.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit, refuse_bad_text
from deconflict.api.signatures import signed_request_dependency
from deconflict.api.tracks import MAX_TRACK_BODY_BYTES, scan_every, track_routes
from deconflict.api.wire import JSON
from deconflict.errors import DeconflictError, InvalidInput
from deconflict.ledger.sth import MAX_UINT
from deconflict.model import Conflict, ConflictState, Filing, FilingType, Party, Role, State
from deconflict.model.geojson import parse_time
from deconflict.model.signature import SignedRequest
from deconflict.service import Draft, Ledger, Outcome, Services
from deconflict.service.ledger import MAX_PAGE
from deconflict.service.signatures import parse_public_key

_log = logging.getLogger("deconflict.api")
_bearer = HTTPBearer(auto_error=False, description="the party's API token")
FilingId = Annotated[str, Path(max_length=128, pattern=wire.ID_PATTERN)]


LogInt = Annotated[int, Query(ge=0, le=MAX_UINT)]


def _outcome(outcome: Outcome, caller: Party) -> dict[str, Any]:
    return {
        "filing": wire.filing_view(outcome.filing, caller),
        "conflicts": [wire.conflict_view(c) for c in outcome.conflicts],
        "receipt": wire.receipt_view(outcome.receipt),
    }


def _answer(outcome: Outcome, caller: Party, status_code: int = status.HTTP_200_OK) -> Response:
    """A write's answer, encoded once (orjson): returned as a Response, FastAPI neither
    validates it against the declared model nor walks it with its JSON encoder."""
    return JSON(_outcome(outcome, caller), status_code=status_code)


PAGE_LIMIT = 1000  # items in a list's page when the caller names no limit
MAX_PAGE_LIMIT = 10_000
PageLimit = Annotated[
    int,
    Query(
        ge=1,
        le=MAX_PAGE_LIMIT,
        description='at most this many items; a `Link: rel="next"` header gives the next page',
    ),
]
ListAnswer = list[dict[str, Any]]  # what the list routes answer (declared for the OpenAPI)
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "unchanged since the ETag named in If-None-Match (no body)"}
}


def _list_tag(stamp: int, who: Party) -> str:
    """A list's entity tag: `stamp` is when a filing was last stored (read in the list's
    snapshot), and only storing a filing changes a filing or a conflict (it opens and
    closes conflicts in the same transaction), so it dates the lists. Views differ by
    caller, and by the service's version."""
    salt = hashlib.sha256(f"{__version__}\0{who.id}".encode()).hexdigest()[:12]
    return f'"{stamp}-{salt}"'


def _unchanged(if_none_match: str | None, tag: str) -> bool:
    """RFC 9110 13.1.2: weak comparison of `tag` with each tag listed, or `*`."""
    if not if_none_match:
        return False
    listed = [t.strip() for t in if_none_match.split(",")]
    return "*" in listed or any(t.removeprefix("W/") == tag for t in listed)


def _page(
    request: Request,
    services: Services,
    who: Party,
    read: Callable[[int], list[Any]],
    view: Callable[[Any], Any],
    cursor: Callable[[Any], str],
    limit: int,
    answer: Callable[[list[Any]], Any] = list,
) -> Response:
    """A page of a list: `read(n)` gives up to n items from the query's cursor on, and
    `answer` makes the body of their views (a JSON array unless it says otherwise). With
    more to come, an RFC 8288 `Link` header names the next page (the same query,
    `after` the last item's cursor). On GET an `ETag` dates the list: sent back in
    `If-None-Match`, it gets 304 and no body while nothing has changed."""
    headers: dict[str, str] = {}
    with services.store.read() as r:  # one snapshot: the tag and the page (read nests in it)
        if request.method == "GET":
            tag = _list_tag(r.last_filing_stored(), who)
            headers |= {"ETag": tag, "Cache-Control": "private, no-cache"}
            if _unchanged(request.headers.get("if-none-match"), tag):
                return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
        items = read(limit + 1)
    if len(items) > limit:
        items = items[:limit]
        query = dict(request.query_params) | {"limit": str(limit)}
        headers["Link"] = wire.next_link(request.url.path, query, "after", cursor(items[-1]))
    return JSON(answer([view(x) for x in items]), headers=headers)


async def _sign_every(ledger: Ledger, interval_s: float) -> None:
    """Sign a tree head every `interval_s` seconds (only if the log grew), for ever."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(ledger.sign_head)
        except DeconflictError as exc:  # the store may be briefly unavailable: try next time
            _log.warning("could not sign a tree head: %s", exc)


def create_app(
    services: Services,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    sth_interval_s: float | None = 10.0,
    tick_interval_s: float | None = 1.0,
    dss_auth: f3548.AuthConfig | None = None,
) -> FastAPI:
    """The app over `services`. While it runs (its lifespan), a tree head is signed every
    `sth_interval_s` seconds if the log grew (None: on demand only, at GET /v1/log/sth),
    and the hotline's deadlines and heartbeats are checked every `tick_interval_s`
    (None: never; tests call `services.hotline.tick` on a manual clock). With a tactical
    scan interval (`services.tactical.scan_interval_s` > 0), the live picture is scanned
    every interval (`Tactical.tick`; tests call it on a manual clock). With `dss_auth`
    (how to verify OAuth2 JWTs), the ASTM F3548-21 DSS interface is served under /dss/v1
    too; without it, not at all."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(services.ledger.record_agreement, services.agreement)
        tasks = []
        if sth_interval_s:
            tasks.append(asyncio.create_task(_sign_every(services.ledger, sth_interval_s)))
        if tick_interval_s:
            tasks.append(asyncio.create_task(tick_every(services, tick_interval_s)))
        scan_s = services.tactical.scan_interval_s
        if scan_s > 0:
            tasks.append(asyncio.create_task(scan_every(services.tactical, scan_s)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        lifespan=lifespan,
        title="deconflict",
        version=__version__,
        description=(
            "Deconfliction between operators who share an airspace but not a chain of command: "
            "notices of activity as 4D volumes, strategic conflict detection, shared record. "
            "Units: metres, seconds, WGS84 degrees, UTC. Errors are RFC 9457 problem+json."
        ),
        default_response_class=JSON,
        dependencies=[Depends(refuse_bad_text)],
    )
    app.state.services = services
    problems.install(app)
    app.add_middleware(
        BodyLimit, max_bytes=max_body_bytes, paths={"/v1/tracks": max(max_body_bytes, MAX_TRACK_BODY_BYTES)}
    )

    async def caller(
        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Party:
        # one indexed read, on the loop: a hop to a worker thread per request costs
        # more than the read (and filings look at a snapshot on the loop anyway)
        return services.parties.authenticate(creds.credentials if creds else None)

    Caller = Annotated[Party, Depends(caller)]
    signed_dep = signed_request_dependency(services, caller)
    Signed = Annotated[SignedRequest | None, Depends(signed_dep)]

    # the filing routes first: a request is matched against the routes in order, and
    # filings are the busiest (measured: 25 route checks a filing when they came last)
    app.include_router(
        _filing_routes(services, FilingType.INTENT, wire.IntentCreate, wire.IntentUpdate, caller, signed_dep)
    )
    app.include_router(
        _filing_routes(
            services, FilingType.CONSTRAINT, wire.ConstraintCreate, wire.ConstraintUpdate, caller, signed_dep
        )
    )

    @app.get("/healthz", tags=["meta"])
    def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "pid": os.getpid()}

    @app.get("/v1/clock", tags=["meta"])
    def clock() -> dict[str, Any]:
        """The service's time (every deadline, notice and track time is on it) and its rate:
        seconds of service time per real second, 1 but in the demo (`demo --speed`). No
        token needed: a client sets its countdowns, and the `created` of its signatures, by it."""
        c = services.clock
        now = c.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return {"now": now, "rate": c.rate}

    @app.get("/v1/me", tags=["parties"])
    def me(who: Caller) -> dict[str, Any]:
        return wire.party_view(who)

    @app.get("/v1/agreement", tags=["agreement"])
    def agreement(who: Caller) -> dict[str, Any]:
        a = services.agreement
        return {
            "name": a.name,
            "version": a.version,
            "conflict_action": a.conflict_action.value,
            "late_notice_action": a.late_notice_action.value,
            "max_volume_area_km2": a.max_volume_area_m2 / 1e6,
            "max_volume_duration_s": a.max_volume_duration_s,
            "max_volumes_per_filing": a.max_volumes_per_filing,
            "parties": [
                {"id": p.id, "name": p.name, "language": p.language, "escalation": list(p.escalation)}
                for p in a.parties
            ],
            "hotline": {
                "heartbeat_period_s": a.hotline.heartbeat_period_s,
                "down_after_s": a.hotline.down_after_s,
                "down_filings": a.hotline.down_filings.value,
                "delivery_retries": a.hotline.delivery_retries,
                "deadlines": {
                    code: {"delivery_s": d.delivery_s, "reply_s": d.reply_s}
                    for code, d in a.hotline.deadlines.items()
                },
            },
            "kinds": {
                k.name: {
                    "min_notice_s": k.min_notice_s,
                    "horizontal_buffer_m": k.horizontal_buffer_m,
                    "vertical_buffer_m": k.vertical_buffer_m,
                    "time_buffer_s": k.time_buffer_s,
                    "priority": k.priority,
                }
                for k in a.kinds.values()
            },
        }

    @app.get("/v1/parties", tags=["parties"])
    def list_parties(who: Caller) -> list[dict[str, Any]]:
        return [wire.party_view(p) for p in services.parties.all()]

    @app.post("/v1/parties", tags=["parties"], status_code=status.HTTP_201_CREATED)
    def add_party(body: wire.PartyCreate, who: Caller) -> dict[str, Any]:
        created = services.parties.create(
            body.id, role=Role(body.role), name=body.name, language=body.language, caller=who
        )
        return {
            "party": wire.party_view(created.party),
            "token": created.token,
            "receipt": wire.receipt_view(created.receipt),
        }

    @app.get("/v1/parties/{party_id}/keys", tags=["parties"])
    def party_keys(
        party_id: Annotated[str, Path(max_length=63, pattern=wire.PARTY_PATTERN)], who: Caller
    ) -> list[dict[str, Any]]:
        """The Ed25519 keys a party registered (revoked ones too): what checks its signatures."""
        return [wire.key_view(k) for k in services.signatures.keys(party_id)]

    @app.post("/v1/me/keys", tags=["parties"], status_code=status.HTTP_201_CREATED)
    def add_key(body: wire.KeyCreate, who: Caller, signed: Signed) -> dict[str, Any]:
        """Register an Ed25519 public key to sign requests with (RFC 9421). With `required`,
        every later write of the party must be signed."""
        raw = parse_public_key(body.public_key)
        added = services.signatures.register(who, raw, required=body.required, evidence=signed)
        return {"key": wire.key_view(added.key), "receipt": wire.receipt_view(added.receipt)}

    @app.delete("/v1/me/keys/{key_id}", tags=["parties"])
    def revoke_key(
        key_id: Annotated[str, Path(max_length=64)], who: Caller, signed: Signed
    ) -> dict[str, Any]:
        receipt = services.signatures.revoke(who, key_id, evidence=signed)
        return {"key_id": key_id, "revoked": True, "receipt": wire.receipt_view(receipt)}

    @app.get("/v1/conflicts", tags=["conflicts"], response_model=ListAnswer, responses=NOT_MODIFIED)
    def list_conflicts(
        request: Request,
        who: Caller,
        state: Annotated[ConflictState | None, Query()] = ConflictState.OPEN,
        party: wire.PartyFilter = None,
        after: wire.Cursor = None,
        limit: PageLimit = PAGE_LIMIT,
    ) -> Response:
        """Conflicts by detection time then id, a page at a time."""
        return _page(
            request,
            services,
            who,
            lambda n: services.filings.conflicts(state=state, party=party, after=after, limit=n),
            wire.conflict_view,
            lambda c: c.id,
            limit,
        )

    @app.post("/v1/query", tags=["query"], response_model=dict[str, Any])
    def query(
        request: Request,
        body: wire.AreaQuery,
        who: Caller,
        after: wire.Cursor = None,
        limit: PageLimit = PAGE_LIMIT,
        conflicts: Annotated[
            ConflictState | None,
            Query(description="also the conflicts in this state with a side among the page's filings"),
        ] = None,
    ) -> Response:
        """Filings with a volume meeting the area (a volume Feature: outline, altitude
        band, time window), by id, a page of `limit` filings at a time: with more to come, a
        `Link: rel="next"` header names the next page, to be asked with the same body.
        Answers a GeoJSON FeatureCollection, one Feature per volume. With `conflicts`, its
        `conflicts` member lists the conflicts in that state that have a side among the
        page's filings, by detection time then id, as `GET /v1/conflicts` gives them (one
        whose sides are on two pages is on both)."""
        met: list[Conflict] = []
        try:
            area = body.area.to_volume()
        except InvalidInput as exc:
            raise exc.prefixed("area") from None

        def read(n: int) -> list[Filing]:
            try:
                found = services.filings.query(area, after=after, limit=n)
            except InvalidInput as exc:
                raise exc.prefixed("area") from None
            if conflicts is not None:  # in the page's snapshot
                met.extend(services.filings.conflicts_of(found, conflicts))
            return found

        def collection(pages: list[list[dict[str, Any]]]) -> dict[str, Any]:
            body: dict[str, Any] = {"type": "FeatureCollection", "features": [x for p in pages for x in p]}
            if conflicts is not None:  # of the page's filings only (read gave one more)
                ids = {p[0]["properties"]["filing_id"] for p in pages}
                body["conflicts"] = [
                    wire.conflict_view(c) for c in met if c.finding.a.id in ids or c.finding.b.id in ids
                ]
            return body

        def features(filing: Filing) -> list[dict[str, Any]]:
            view = wire.filing_view(filing, who)
            volumes: list[dict[str, Any]] = view.pop("volumes")
            for i, feature in enumerate(volumes):
                feature["id"] = f"{filing.id}#{i}"
                feature["properties"].update({"filing_" + k: v for k, v in view.items()})
            return volumes

        return _page(
            request,
            services,
            who,
            read,
            features,
            lambda f: f.id,
            limit,
            collection,
        )

    app.include_router(_log_routes(services, caller))
    app.include_router(hotline_routes(services, caller))
    app.include_router(track_routes(services, caller))
    if dss_auth is not None:
        app.include_router(f3548.router(services, dss_auth))
    console.install(app)
    return app


def _filing_routes(
    services: Services,
    ftype: FilingType,
    create_model: type[wire.IntentCreate] | type[wire.ConstraintCreate],
    update_model: type[wire.IntentUpdate] | type[wire.ConstraintUpdate],
    caller: Any,
    signed_dep: Any,
) -> APIRouter:
    plural = f"{ftype.value}s"
    router = APIRouter(prefix=f"/v1/{plural}", tags=[plural])
    Caller = Annotated[Party, Depends(caller)]
    Signed = Annotated[SignedRequest | None, Depends(signed_dep)]
    filings = services.filings

    def draft(body: Any) -> Draft:
        state = State(getattr(body, "state", "accepted"))
        try:
            volumes = wire.volumes_of(body.volumes)
        except InvalidInput as exc:
            # report the kind's rule beside the volumes' (the state rule differs on update)
            head = filings.header_errors(ftype, body.kind, State.ACCEPTED)
            raise InvalidInput(head + list(exc.errors)) from None
        return Draft(ftype, body.kind, volumes, state)

    Answer = dict[str, Any]  # what the write routes answer (declared for the OpenAPI)

    @router.post("", status_code=status.HTTP_201_CREATED, name=f"create_{ftype.value}", response_model=Answer)
    async def create(body: create_model, who: Caller, signed: Signed) -> Response:  # type: ignore[valid-type]
        payload: Any = body
        outcome = await filings.submit_async(who, draft(payload), payload.key, evidence=signed)
        return _answer(outcome, who, status.HTTP_201_CREATED)

    @router.get("", name=f"list_{plural}", response_model=ListAnswer, responses=NOT_MODIFIED)
    def list_all(
        request: Request,
        who: Caller,
        owner: wire.PartyFilter = None,
        after: wire.Cursor = None,
        limit: PageLimit = PAGE_LIMIT,
    ) -> Response:
        """The live ones (not ended) by id, a page at a time."""
        return _page(
            request,
            services,
            who,
            lambda n: filings.current(owner=owner, ftype=ftype, after=after, limit=n),
            lambda f: wire.filing_view(f, who),
            lambda f: f.id,
            limit,
        )

    @router.get("/{filing_id}", name=f"get_{ftype.value}")
    def get(filing_id: FilingId, who: Caller) -> dict[str, Any]:
        return wire.filing_view(filings.get(ftype, filing_id), who)

    @router.get("/{filing_id}/versions", name=f"versions_{ftype.value}")
    def versions(filing_id: FilingId, who: Caller) -> list[dict[str, Any]]:
        """Every version, oldest first, each with `leaf_index`: where its entry is in the
        shared record (GET /v1/log/entries, /v1/log/receipts/{index}); null for versions
        stored before the service kept it."""
        found, entries = filings.versions_and_entries(ftype, filing_id)
        return [{**wire.filing_view(f, who), "leaf_index": entries.get(f.version)} for f in found]

    @router.put("/{filing_id}", name=f"update_{ftype.value}", response_model=Answer)
    def update(
        filing_id: FilingId,
        body: update_model,  # type: ignore[valid-type]
        who: Caller,
        signed: Signed,
    ) -> Response:
        payload: Any = body
        return _answer(
            filings.update(who, filing_id, payload.ovn, draft(payload), payload.key, evidence=signed), who
        )

    @router.post("/{filing_id}/state", name=f"set_{ftype.value}_state")
    def set_state(filing_id: FilingId, body: wire.StateChange, who: Caller, signed: Signed) -> dict[str, Any]:
        state = State(body.state)
        if ftype is FilingType.CONSTRAINT and state is not State.ENDED:
            raise InvalidInput.one("state", "a constraint can only be ended")
        return _outcome(filings.transition(who, ftype, filing_id, body.ovn, state, evidence=signed), who)

    @router.delete("/{filing_id}", name=f"withdraw_{ftype.value}")
    def withdraw(
        filing_id: FilingId,
        who: Caller,
        signed: Signed,
        ovn: Annotated[str, Query(max_length=128, description="the current version token")],
    ) -> dict[str, Any]:
        return _outcome(filings.withdraw(who, ftype, filing_id, ovn, evidence=signed), who)

    return router


def _log_routes(services: Services, caller: Any) -> APIRouter:
    """The shared record: readable by every party (observers too)."""
    router = APIRouter(prefix="/v1/log", tags=["log"])
    Caller = Annotated[Party, Depends(caller)]
    ledger = services.ledger

    @router.get("/key")
    def log_key(who: Caller) -> dict[str, Any]:
        """The Ed25519 public key that verifies every signed tree head."""
        key = ledger.key
        return {
            "algorithm": "Ed25519",
            "key_id": key.key_id,
            "log_id": key.log_id.hex(),
            "public_key": key.public_b64,
            "public_key_pem": key.public_pem,
        }

    @router.get("/sth")
    def log_sth(who: Caller) -> dict[str, Any]:
        """The latest signed tree head; a new one is signed first if the log grew."""
        return ledger.sign_head().to_json()

    @router.get("/proof/inclusion")
    def inclusion_proof(who: Caller, index: LogInt, size: LogInt) -> dict[str, Any]:
        """RFC 9162 audit path of leaf `index` in the tree of `size` leaves (a signed head's size)."""
        path = ledger.inclusion_proof(index, size)
        return {"leaf_index": index, "tree_size": size, "audit_path": [h.hex() for h in path]}

    @router.get("/receipts/{index}")
    def log_receipt(who: Caller, index: Annotated[int, Path(ge=0, le=MAX_UINT)]) -> dict[str, Any]:
        """The whole receipt of entry `index`: its leaf hash, the latest signed tree head
        (signed now if the log grew, so it always covers the entry) and the RFC 9162 audit
        path from the entry to that head's root."""
        receipt, head, path = ledger.receipt(index)
        return {
            **wire.receipt_view(receipt),
            "sth": head.to_json(),
            "audit_path": [h.hex() for h in path],
        }

    @router.get("/proof/consistency")
    def consistency_proof(who: Caller, first: LogInt, second: LogInt) -> dict[str, Any]:
        """RFC 9162 consistency proof that the tree of `first` leaves is a prefix of `second`'s."""
        path = ledger.consistency_proof(first, second)
        return {"first": first, "second": second, "consistency_path": [h.hex() for h in path]}

    @router.get(
        "/entries",
        description=f"Entries [start, end) as base64 of their exact bytes: at most {MAX_PAGE}, none "
        "past the log's end (`end` in the answer is where the page stopped).",
    )
    def log_entries(
        who: Caller,
        start: LogInt,
        end: Annotated[int | None, Query(ge=0, le=MAX_UINT, description="exclusive")] = None,
    ) -> dict[str, Any]:
        rows = ledger.entries(start, end)
        return {
            "start": start,
            "end": start + len(rows),
            "entries": [base64.b64encode(e).decode("ascii") for _, e in rows],
        }

    @router.get("/replay")
    def log_replay(
        who: Caller,
        at: Annotated[
            str, Query(max_length=64, description="RFC 3339 UTC time", examples=["2026-11-26T12:00:00Z"])
        ],
        include_ended: bool = False,
    ) -> dict[str, Any]:
        """Filings at their latest version no later than `at`, and the conflicts open at
        `at`, rebuilt from the log alone."""
        return ledger.replay(parse_time(at, "at"), include_ended=include_ended).as_dict()

    return router
