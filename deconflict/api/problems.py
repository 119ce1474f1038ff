"""RFC 9457 problem details: every error leaves the API as application/problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from deconflict import errors
from deconflict.api.wire import dumps

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    *,
    media_type: str = PROBLEM_JSON,
    **extra: Any,
) -> Response:
    """An RFC 9457 problem. `media_type` is application/json where a standard's API
    declares that (the F3548 interface, whose ErrorResponse is this body's `message`)."""
    body = {"type": f"urn:deconflict:problem:{slug}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return Response(dumps(body), status_code=status, media_type=media_type, headers=headers)


def invalid(field_errors: Sequence[errors.FieldError], status: int = 422) -> Response:
    detail = "; ".join(f"{e.field or '(body)'}: {e.rule}" for e in field_errors)
    return problem(
        status,
        "invalid-input",
        "Invalid input",
        detail,
        errors=[{"field": e.field, "rule": e.rule} for e in field_errors],
    )


def _loc_to_field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def _rule(err: dict[str, Any]) -> str:
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "is required"
    if kind == "json_invalid":
        return "is not valid JSON"
    return str(err.get("msg", "is invalid"))


def request_errors(exc: RequestValidationError) -> list[errors.FieldError]:
    """What FastAPI's request validation found, as field paths and rules."""
    return [errors.FieldError(_loc_to_field(e.get("loc", ())), _rule(e)) for e in exc.errors()]


def _extras(exc: Exception) -> dict[str, Any]:
    """Problem members beyond the standard ones, per domain error."""
    match exc:
        case errors.StaleVersion():
            return {"field": "ovn", "current_ovn": exc.current}
        case errors.InvalidTransition():
            return {"field": "state"}
        case errors.MissingKey():
            return {"field": "key", "missing": list(exc.missing)}
        case errors.ConflictRefused():
            return {"conflicts": list(exc.conflicts)}
        case errors.SignatureRejected():
            return {"field": exc.field, "rule": exc.rule}
        case errors.LateNotice():
            return {"field": "volumes", "notice_s": exc.notice_s, "min_notice_s": exc.min_notice_s}
    return {}


#: Domain error → (status, problem slug, title, headers).
_DOMAIN: dict[type[errors.DeconflictError], tuple[int, str, str, dict[str, str] | None]] = {
    errors.Unauthorized: (401, "unauthorized", "Unauthorized", {"WWW-Authenticate": "Bearer"}),
    errors.SignatureRejected: (401, "bad-signature", "Party signature rejected", None),
    errors.Forbidden: (403, "forbidden", "Forbidden", None),
    errors.NotFound: (404, "not-found", "Not found", None),
    errors.AlreadyExists: (409, "already-exists", "Already exists", None),
    errors.StaleVersion: (409, "stale-version", "Stale version", None),
    errors.InvalidTransition: (409, "invalid-transition", "Invalid state transition", None),
    errors.MissingKey: (409, "missing-key", "Key is missing conflicting versions", None),
    errors.ConflictRefused: (409, "conflict-blocked", "Conflict blocked by the agreement", None),
    errors.LateNotice: (422, "late-notice", "Notice shorter than agreed", None),
    errors.PartyDown: (412, "party-down", "Party marked Down", None),
    errors.StoreUnavailable: (503, "store-unavailable", "Store unavailable", {"Retry-After": "1"}),
}


def _detail(exc: Exception) -> str:
    if isinstance(exc, errors.MissingKey):
        return (
            f"the filing conflicts with {len(exc.missing)} version(s) its key does not list; "
            "add each missing ovn to `key` after reviewing it"
        )
    return str(exc)


async def _domain_problem(_: Request, exc: errors.DeconflictError) -> Response:
    status, slug, title, headers = next(v for t, v in _DOMAIN.items() if isinstance(exc, t))
    return problem(status, slug, title, _detail(exc), headers=headers, **_extras(exc))


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.InvalidInput)
    async def _invalid(_: Request, exc: errors.InvalidInput) -> Response:
        return invalid(exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> Response:
        return invalid(request_errors(exc))

    for exc_type in _DOMAIN:
        app.add_exception_handler(exc_type, _domain_problem)  # type: ignore[arg-type]

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        slug = {404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}
        return problem(
            exc.status_code,
            slug.get(exc.status_code, "http-error"),
            str(exc.detail) if exc.status_code != 404 else "Not found",
            str(exc.detail),
            headers=getattr(exc, "headers", None),
        )
