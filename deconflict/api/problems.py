"""RFC 9457 problem details: every error leaves the API as application/problem+json."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from deconflict import errors
from deconflict.api.wire import plain

PROBLEM_JSON = "application/problem+json"


def problem(
    status: int, slug: str, title: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> Response:
    body = {"type": f"urn:deconflict:problem:{slug}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return Response(orjson.dumps(plain(body)), status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.InvalidInput)
    async def _invalid(_: Request, exc: errors.InvalidInput) -> Response:
        return invalid(exc.errors)

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(_: Request, exc: RequestValidationError) -> Response:
        found = [errors.FieldError(_loc_to_field(e.get("loc", ())), _rule(e)) for e in exc.errors()]
        return invalid(found)

    @app.exception_handler(errors.Unauthorized)
    async def _unauthorized(_: Request, exc: errors.Unauthorized) -> Response:
        return problem(401, "unauthorized", "Unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(errors.Forbidden)
    async def _forbidden(_: Request, exc: errors.Forbidden) -> Response:
        return problem(403, "forbidden", "Forbidden", str(exc))

    @app.exception_handler(errors.NotFound)
    async def _not_found(_: Request, exc: errors.NotFound) -> Response:
        return problem(404, "not-found", "Not found", str(exc))

    @app.exception_handler(errors.AlreadyExists)
    async def _exists(_: Request, exc: errors.AlreadyExists) -> Response:
        return problem(409, "already-exists", "Already exists", str(exc))

    @app.exception_handler(errors.StaleVersion)
    async def _stale(_: Request, exc: errors.StaleVersion) -> Response:
        return problem(409, "stale-version", "Stale version", str(exc), field="ovn", current_ovn=exc.current)

    @app.exception_handler(errors.InvalidTransition)
    async def _transition(_: Request, exc: errors.InvalidTransition) -> Response:
        return problem(409, "invalid-transition", "Invalid state transition", str(exc), field="state")

    @app.exception_handler(errors.MissingKey)
    async def _missing_key(_: Request, exc: errors.MissingKey) -> Response:
        return problem(
            409,
            "missing-key",
            "Key is missing conflicting versions",
            f"the filing conflicts with {len(exc.missing)} version(s) its key does not list; "
            "add each missing ovn to `key` after reviewing it",
            field="key",
            missing=list(exc.missing),
        )

    @app.exception_handler(errors.ConflictRefused)
    async def _refused(_: Request, exc: errors.ConflictRefused) -> Response:
        return problem(
            409,
            "conflict-blocked",
            "Conflict blocked by the agreement",
            str(exc),
            conflicts=list(exc.conflicts),
        )

    @app.exception_handler(errors.LateNotice)
    async def _late(_: Request, exc: errors.LateNotice) -> Response:
        return problem(
            422,
            "late-notice",
            "Notice shorter than agreed",
            str(exc),
            field="volumes",
            notice_s=exc.notice_s,
            min_notice_s=exc.min_notice_s,
        )

    @app.exception_handler(errors.StoreUnavailable)
    async def _unavailable(_: Request, exc: errors.StoreUnavailable) -> Response:
        return problem(503, "store-unavailable", "Store unavailable", str(exc), headers={"Retry-After": "1"})

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
