"""The operations console's static files (``deconflict/web/``), served at ``/console/``.

The files are the committed bundle that ``console/build.mjs`` writes (MapLibre GL JS, the
console, and a Natural Earth base map as GeoJSON): the service needs no npm and the page
loads nothing from anywhere but this service, which its Content-Security-Policy enforces.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["WEB_DIR", "install"]

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
"""Where the bundle lives inside the installed package."""

#: Same origin only: no CDN, no tile server, no font or glyph server.
CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self' blob:; connect-src 'self'; "
    "img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; font-src 'self'; "
    "object-src 'none'; base-uri 'self'; frame-ancestors 'none'"
)
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


class _ConsoleFiles(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(_HEADERS)
        return response


def install(app: FastAPI, web_dir: Path = WEB_DIR) -> None:
    """Serve the console at ``/console/`` and send ``/`` there; ``/v1`` is untouched."""
    app.mount("/console", _ConsoleFiles(directory=web_dir, html=True), name="console")

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    def root() -> Any:
        return RedirectResponse("/console/", status_code=307)
