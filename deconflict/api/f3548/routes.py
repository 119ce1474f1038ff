"""The F3548-21 DSS endpoints under /dss/v1: thin routes over `service.dss`.

Errors leave as F3548 gives them: the status its definition lists for the case, and
a body that is both its ErrorResponse (`message`) and an RFC 9457 problem (served as
application/json, as the definition declares); a 409 for a missing key is an
AirspaceConflictResponse listing the references the key lacked.

No `from __future__ import annotations`: FastAPI reads these routes' annotations.
"""

import re
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from deconflict import errors
from deconflict.api import problems
from deconflict.api.f3548 import wire
from deconflict.api.f3548.auth import AuthConfig, Claims, Scope
from deconflict.geometry.outline import area_m2
from deconflict.model import Circle, FilingType, Party, Volume4D
from deconflict.model.dss import Availability
from deconflict.service import Services
from deconflict.service.dss import Change, Referenced
from deconflict.service.subscriptions import SubscriptionDraft, default_window

PREFIX = "/dss/v1"
JSON = "application/json"
_bearer = HTTPBearer(auto_error=False, description="OAuth2 access token (JWT) with F3548 scopes")

EntityId = Annotated[str, Path(pattern=wire.UUID_PATTERN, description="a UUIDv4")]
Ovn = Annotated[str, Path(min_length=16, max_length=128)]
UssId = Annotated[str, Path(min_length=1, max_length=256)]

SC = Scope.STRATEGIC_COORDINATION
CM = Scope.CONSTRAINT_MANAGEMENT
CP = Scope.CONSTRAINT_PROCESSING
CMSA = Scope.CONFORMANCE_MONITORING_SA
AA = Scope.AVAILABILITY_ARBITRATION


class AreaTooLarge(errors.DeconflictError):
    """F3548's 413: an area of interest, or an intent's or constraint's, is too large."""


class Refused(errors.DeconflictError):
    """A status F3548 gives to a case the domain names otherwise (e.g. 409 for a
    subscription managed by another party), with its message."""

    def __init__(self, status_code: int, message: str, **extra: Any) -> None:
        self.status_code = status_code
        self.extra = extra
        super().__init__(message)


#: Domain error → F3548 status (the definition's code for that case).
_STATUS: dict[type[Exception], int] = {
    errors.InvalidInput: 400,
    errors.InvalidTransition: 400,
    errors.ConflictRefused: 400,
    errors.LateNotice: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.AlreadyExists: 409,
    errors.StaleVersion: 409,
    errors.MissingKey: 409,
    errors.PartyDown: 412,
    AreaTooLarge: 413,
    errors.StoreUnavailable: 503,
}
_SLUG = {
    400: "invalid-input",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    409: "conflict",
    412: "party-down",
    413: "too-large",
    503: "store-unavailable",
}


_TITLE = {
    "invalid-input": "Invalid input",
    "conflict-blocked": "Conflict blocked by the agreement",
    "unauthorized": "Unauthorized",
    "forbidden": "Forbidden",
    "not-found": "Not found",
    "conflict": "Conflict",
    "party-down": "Party marked Down",
    "too-large": "Area too large",
    "store-unavailable": "Store unavailable",
}


def error_response(exc: Exception) -> Response | None:
    """The F3548 answer to an error raised in a /dss/v1 route (None: not ours)."""
    extra: dict[str, Any] = {}
    headers: dict[str, str] | None = None
    if isinstance(exc, RequestValidationError):
        found = problems.request_errors(exc)
        code, message = 400, "; ".join(f"{e.field or '(body)'}: {e.rule}" for e in found)
        extra["errors"] = [{"field": e.field, "rule": e.rule} for e in found]
    elif isinstance(exc, Refused):
        code, message = exc.status_code, str(exc)
        extra.update(exc.extra)
    else:
        code_found = next((c for t, c in _STATUS.items() if isinstance(exc, t)), None)
        if code_found is None:
            return None
        code, message = code_found, str(exc)
        if isinstance(exc, errors.InvalidInput):
            extra["errors"] = [{"field": e.field, "rule": e.rule} for e in exc.errors]
        elif isinstance(exc, errors.ConflictRefused):
            extra["conflicts"] = list(exc.conflicts)
        elif isinstance(exc, errors.StaleVersion):
            extra["field"] = "ovn"
    if code == 401:
        headers = {"WWW-Authenticate": 'Bearer realm="dss"'}
    elif code == 503:
        headers = {"Retry-After": "1"}
    slug = "conflict-blocked" if isinstance(exc, errors.ConflictRefused) else _SLUG.get(code, "error")
    return problems.problem(
        code,
        slug,
        _TITLE.get(slug, "Error"),
        message,
        headers,
        media_type=JSON,
        message=message,
        **extra,
    )


class DssRoute(APIRoute):
    """Routes whose errors are rendered as F3548 answers, not the native problems."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                answer = error_response(exc)
                if answer is None:
                    raise
                return answer

        return route


def router(services: Services, auth: AuthConfig) -> APIRouter:
    api = APIRouter(prefix=PREFIX, route_class=DssRoute, tags=["F3548 DSS"])
    dss = services.dss
    clock = services.clock

    def claims(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Claims:
        return auth.verify(creds.credentials if creds else None, clock)

    Token = Annotated[Claims, Depends(claims)]

    def party(c: Claims) -> Party:
        pid = auth.party_of(c.sub)
        found = services.parties.get(pid)
        if found is None:
            raise errors.Forbidden(f"the token's sub {c.sub!r} is no party of this service")
        return found

    def native_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def area(body: wire.QueryParameters) -> Volume4D:
        if body.area_of_interest is None:
            raise errors.InvalidInput.one("area_of_interest", "is required")
        found = wire.to_volume(body.area_of_interest, "area_of_interest", now=clock.now())
        _check_area(found, "area_of_interest")
        return found

    def _check_area(v: Volume4D, where: str) -> None:
        cap = services.agreement.max_volume_area_m2
        size = area_m2(v.outline)
        if size > cap:
            raise AreaTooLarge(f"{where}: area {size / 1e6:,.1f} km² exceeds the cap of {cap / 1e6:,g} km²")

    def missing(exc: errors.MissingKey, viewer: Party, request: Request) -> Refused:
        by_type: dict[str, list[str]] = {FilingType.INTENT.value: [], FilingType.CONSTRAINT.value: []}
        for m in exc.missing:
            by_type[str(m["type"])].append(str(m["id"]))
        url = native_url(request)

        def render(ftype: FilingType) -> list[dict[str, Any]]:
            return [
                wire.reference(r, viewer.id, url, show_ovn=True)
                for r in dss.current(ftype, by_type[ftype.value])
            ]

        return Refused(
            409,
            str(exc) + "; add the OVN of each missing reference to the key after reviewing it",
            missing_operational_intents=render(FilingType.INTENT),
            missing_constraints=render(FilingType.CONSTRAINT),
        )

    def change(ch: Change, who: Party, request: Request, field: str) -> dict[str, Any]:
        ref = Referenced(
            ch.outcome.filing, ch.reference, services.availabilities.get(ch.outcome.filing.owner)
        )
        return {
            "subscribers": wire.subscribers(ch.outcome.subscribers),
            field: wire.reference(ref, who.id, native_url(request), as_of=ch.previous),
        }

    # -- operational intent references -------------------------------------------

    def put_reference(
        ftype: FilingType, entityid: str, ovn: str | None, draft: Any, who: Party, request: Request
    ) -> dict[str, Any]:
        for i, v in enumerate(draft.volumes):
            _check_area(v, f"extents[{i}]")
        try:
            ch = dss.put(who, ftype, entityid, ovn, draft)
        except errors.MissingKey as exc:
            raise missing(exc, who, request) from None
        except errors.InvalidInput as exc:
            raise errors.InvalidInput([_extents_field(e, draft.volumes) for e in exc.errors]) from None
        field = "operational_intent_reference" if ftype is FilingType.INTENT else "constraint_reference"
        return change(ch, who, request, field)

    @api.post("/operational_intent_references/query", operation_id="queryOperationalIntentReferences")
    def query_intents(body: wire.QueryParameters, token: Token, request: Request) -> dict[str, Any]:
        token.require(SC, CMSA)
        who = party(token)
        found = dss.query(FilingType.INTENT, area(body))
        url = native_url(request)
        return {"operational_intent_references": [wire.reference(r, who.id, url) for r in found]}

    @api.get("/operational_intent_references/{entityid}", operation_id="getOperationalIntentReference")
    def get_intent(entityid: EntityId, token: Token, request: Request) -> dict[str, Any]:
        token.require(SC, CMSA)
        who = party(token)
        ref = dss.get(FilingType.INTENT, entityid)
        return {"operational_intent_reference": wire.reference(ref, who.id, native_url(request))}

    @api.put(
        "/operational_intent_references/{entityid}",
        operation_id="createOperationalIntentReference",
        status_code=status.HTTP_201_CREATED,
    )
    def create_intent(
        entityid: EntityId,
        body: wire.PutOperationalIntentReferenceParameters,
        token: Token,
        request: Request,
    ) -> dict[str, Any]:
        token.require(SC, CMSA)
        _implicit_scopes(token, body)
        who = party(token)
        return put_reference(FilingType.INTENT, entityid, None, wire.intent_draft(body), who, request)

    @api.put(
        "/operational_intent_references/{entityid}/{ovn}", operation_id="updateOperationalIntentReference"
    )
    def update_intent(
        entityid: EntityId,
        ovn: Ovn,
        body: wire.PutOperationalIntentReferenceParameters,
        token: Token,
        request: Request,
    ) -> dict[str, Any]:
        token.require(SC, CMSA)
        _implicit_scopes(token, body)
        who = party(token)
        return put_reference(FilingType.INTENT, entityid, ovn, wire.intent_draft(body), who, request)

    @api.delete(
        "/operational_intent_references/{entityid}/{ovn}", operation_id="deleteOperationalIntentReference"
    )
    def delete_intent(entityid: EntityId, ovn: Ovn, token: Token, request: Request) -> dict[str, Any]:
        token.require(SC, CMSA)
        who = party(token)
        ch = dss.delete(who, FilingType.INTENT, entityid, ovn)
        return change(ch, who, request, "operational_intent_reference")

    def _implicit_scopes(token: Claims, body: wire.PutOperationalIntentReferenceParameters) -> None:
        new = body.new_subscription
        if new is not None and new.notify_for_constraints and CP not in token.scopes:
            raise errors.Forbidden(f"notifications for constraints need the scope {CP}")

    # -- constraint references ---------------------------------------------------

    @api.post("/constraint_references/query", operation_id="queryConstraintReferences")
    def query_constraints(body: wire.QueryParameters, token: Token, request: Request) -> dict[str, Any]:
        token.require(CM, CP)
        who = party(token)
        found = dss.query(FilingType.CONSTRAINT, area(body))
        url = native_url(request)
        return {"constraint_references": [wire.reference(r, who.id, url) for r in found]}

    @api.get("/constraint_references/{entityid}", operation_id="getConstraintReference")
    def get_constraint(entityid: EntityId, token: Token, request: Request) -> dict[str, Any]:
        token.require(CM, CP)
        who = party(token)
        ref = dss.get(FilingType.CONSTRAINT, entityid)
        return {"constraint_reference": wire.reference(ref, who.id, native_url(request))}

    @api.put(
        "/constraint_references/{entityid}",
        operation_id="createConstraintReference",
        status_code=status.HTTP_201_CREATED,
    )
    def create_constraint(
        entityid: EntityId, body: wire.PutConstraintReferenceParameters, token: Token, request: Request
    ) -> dict[str, Any]:
        token.require(CM)
        who = party(token)
        return put_reference(FilingType.CONSTRAINT, entityid, None, wire.constraint_draft(body), who, request)

    @api.put("/constraint_references/{entityid}/{ovn}", operation_id="updateConstraintReference")
    def update_constraint(
        entityid: EntityId,
        ovn: Ovn,
        body: wire.PutConstraintReferenceParameters,
        token: Token,
        request: Request,
    ) -> dict[str, Any]:
        token.require(CM)
        who = party(token)
        return put_reference(FilingType.CONSTRAINT, entityid, ovn, wire.constraint_draft(body), who, request)

    @api.delete("/constraint_references/{entityid}/{ovn}", operation_id="deleteConstraintReference")
    def delete_constraint(entityid: EntityId, ovn: Ovn, token: Token, request: Request) -> dict[str, Any]:
        token.require(CM)
        who = party(token)
        ch = dss.delete(who, FilingType.CONSTRAINT, entityid, ovn)
        return change(ch, who, request, "constraint_reference")

    # -- subscriptions -------------------------------------------------------------

    subs = services.subscriptions

    def sub_view(s: Any) -> dict[str, Any]:
        return wire.subscription(s, subs.dependents(s.id))

    def sub_draft(body: wire.PutSubscriptionParameters, token: Claims) -> SubscriptionDraft:
        if body.notify_for_operational_intents and SC not in token.scopes:
            raise errors.Forbidden(f"notifications for operational intents need the scope {SC}")
        if body.notify_for_constraints and CP not in token.scopes:
            raise errors.Forbidden(f"notifications for constraints need the scope {CP}")
        ext = body.extents
        v = wire.to_volume(ext, "extents", now=clock.now())
        if ext.time_end is None:  # the longest a subscription may last, from its start
            v = Volume4D(v.outline, v.altitude_lower_m, v.altitude_upper_m, *default_window(v.time_start))
        return SubscriptionDraft(
            v, body.uss_base_url, body.notify_for_operational_intents, body.notify_for_constraints
        )

    def put_answer(s: Any, request: Request, who: Party) -> dict[str, Any]:
        url = native_url(request)
        answer: dict[str, Any] = {"subscription": sub_view(s)}
        for flag, ftype, field in (
            (s.notify_for_intents, FilingType.INTENT, "operational_intent_references"),
            (s.notify_for_constraints, FilingType.CONSTRAINT, "constraint_references"),
        ):
            found: dict[str, Referenced] = {}
            if flag:
                for v in s.volumes:
                    for r in dss.query(ftype, v):
                        found[r.filing.id] = r
            answer[field] = [wire.reference(r, who.id, url) for r in found.values()]
        return answer

    def managed_elsewhere(exc: errors.Forbidden) -> Refused:
        return Refused(409, str(exc))

    @api.post("/subscriptions/query", operation_id="querySubscriptions")
    def query_subscriptions(body: wire.QueryParameters, token: Token) -> dict[str, Any]:
        token.require(CP, SC)
        who = party(token)
        return {"subscriptions": [sub_view(s) for s in subs.query(who, area(body))]}

    @api.get("/subscriptions/{subscriptionid}", operation_id="getSubscription")
    def get_subscription(subscriptionid: EntityId, token: Token) -> dict[str, Any]:
        token.require(CP, SC)
        who = party(token)
        return {"subscription": sub_view(subs.get(who, subscriptionid))}

    @api.put("/subscriptions/{subscriptionid}", operation_id="createSubscription")
    def create_subscription(
        subscriptionid: EntityId, body: wire.PutSubscriptionParameters, token: Token, request: Request
    ) -> dict[str, Any]:
        token.require(CP, SC)
        who = party(token)
        s = subs.put(who, subscriptionid, None, sub_draft(body, token))
        return put_answer(s, request, who)

    @api.put("/subscriptions/{subscriptionid}/{version}", operation_id="updateSubscription")
    def update_subscription(
        subscriptionid: EntityId,
        version: Annotated[str, Path(max_length=32)],
        body: wire.PutSubscriptionParameters,
        token: Token,
        request: Request,
    ) -> dict[str, Any]:
        token.require(CP, SC)
        who = party(token)
        draft = sub_draft(body, token)
        try:
            s = subs.put(who, subscriptionid, _version(version, subscriptionid), draft)
        except errors.Forbidden as exc:
            raise managed_elsewhere(exc) from None
        return put_answer(s, request, who)

    @api.delete("/subscriptions/{subscriptionid}/{version}", operation_id="deleteSubscription")
    def delete_subscription(
        subscriptionid: EntityId, version: Annotated[str, Path(max_length=32)], token: Token
    ) -> dict[str, Any]:
        token.require(CP, SC)
        who = party(token)
        try:
            s = subs.delete(who, subscriptionid, _version(version, subscriptionid))
        except errors.Forbidden as exc:
            raise managed_elsewhere(exc) from None
        return {"subscription": wire.subscription(s, [])}

    # -- USS availability ------------------------------------------------------------

    @api.get("/uss_availability/{uss_id}", operation_id="getUssAvailability")
    def get_availability(uss_id: UssId, token: Token) -> dict[str, Any]:
        token.require(AA, SC, CMSA)
        party(token)
        return wire.availability(uss_id, _availability_of(uss_id))

    @api.put("/uss_availability/{uss_id}", operation_id="setUssAvailability")
    def set_availability(
        uss_id: UssId, body: wire.SetUssAvailabilityStatusParameters, token: Token
    ) -> dict[str, Any]:
        token.require(AA)
        who = party(token)
        try:
            a = services.availabilities.set(
                who, auth.party_of(uss_id), body.old_version, Availability(body.availability)
            )
        except errors.NotFound as exc:
            raise errors.InvalidInput.one("uss_id", f"names no party of this service ({exc})") from None
        except errors.StaleVersion as exc:
            raise errors.InvalidInput.one(
                "old_version", f"must be the current version {exc.current!r}"
            ) from None
        return wire.availability(uss_id, a)

    def _availability_of(uss_id: str) -> Any:
        try:
            return services.availabilities.get(auth.party_of(uss_id))
        except errors.NotFound as exc:
            raise errors.InvalidInput.one("uss_id", f"names no party of this service ({exc})") from None

    return api


_NATIVE_VOLUME = re.compile(r"^volumes\[(\d+)\](?:\.(geometry|properties)(?:\.(\w+))?)?(.*)$")


def _extents_field(e: errors.FieldError, volumes: Sequence[Volume4D]) -> errors.FieldError:
    """A domain rule's field path (the native API's volume Features) in F3548 terms."""
    m = _NATIVE_VOLUME.match(e.field)
    if m is None:
        return errors.FieldError("extents" if e.field == "volumes" else e.field, e.rule)
    i, part, prop = int(m.group(1)), m.group(2), m.group(3)
    where = f"extents[{i}]"
    if part == "geometry" or prop == "radius_m":
        is_circle = i < len(volumes) and isinstance(volumes[i].outline, Circle)
        where += ".volume.outline_circle" if is_circle else ".volume.outline_polygon"
    elif prop in ("time_start", "time_end"):
        where += f".{prop}"
    elif prop in ("altitude_lower_m", "altitude_upper_m"):
        where += f".volume.{prop[:-2]}"
    return errors.FieldError(where, e.rule)


def _version(text: str, subscription_id: str) -> int:
    if not text.isdigit():
        raise errors.StaleVersion(subscription_id, text, "(a number)")
    return int(text)
