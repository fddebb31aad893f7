"""The dashboard's routes: login and logout, static assets, the overview, and each area's pages.

Each area (runs, models, …) lives in :mod:`shipyard.ui.pages` as a module with a ``router``.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import plotly
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shipyard.core.errors import NotFound, ShipyardError, Unauthenticated
from shipyard.services import Services
from shipyard.ui.pages import PAGE_ROUTERS
from shipyard.ui.session import COOKIE
from shipyard.ui.web import render, services_of

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
SESSION_DAYS = 7


def mount_dashboard(app: FastAPI, services: Services) -> None:
    app.include_router(_core_router(), include_in_schema=False)
    for router in PAGE_ROUTERS:
        app.include_router(router, include_in_schema=False)


def _core_router() -> APIRouter:
    router = APIRouter()

    @router.get("/login")
    def login_form(request: Request, next: str = "/", error: str = "") -> HTMLResponse:
        return render(request, "login.html", next=_safe_next(next), error=error)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        token = (form.get("token") or [""])[0].strip()
        target = _safe_next((form.get("next") or ["/"])[0])
        services = services_of(request)
        try:
            if not token:
                raise Unauthenticated("paste an API token")
            await run_in_threadpool(services.access.authenticate, token)
        except (Unauthenticated, ShipyardError) as exc:
            client = request.client.host if request.client else "unknown"
            request.app.state.auth_limiter.fail(client)
            return render(request, "login.html", status_code=401, next=target, error=exc.message)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, token, max_age=SESSION_DAYS * 86400, httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    @router.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @router.get("/ui/static/plotly.min.js")
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"cache-control": "max-age=86400"})

    @router.get("/ui/static/{name}")
    def static(name: str) -> FileResponse:
        path = STATIC / name
        if "/" in name or name.startswith(".") or not path.is_file():
            raise NotFound(f"no static file {name!r}", field="name")
        media = {"css": "text/css", "js": "text/javascript", "svg": "image/svg+xml"}.get(path.suffix[1:])
        return FileResponse(path, media_type=media, headers={"cache-control": "max-age=3600"})

    @router.get("/")
    def overview(request: Request) -> HTMLResponse:
        services = services_of(request)
        services.access.require("read")
        started = time.perf_counter()
        inventory = services.inventory.model_inventory()
        alerts = [a for a in services.monitoring.list_alerts() if a.status != "resolved"]
        endpoints = services.deploy.list_endpoints()
        runs = services.tracking.search_runs(max_results=10, order_by=["attributes.start_time DESC"]).runs
        journal = list(reversed(services.journal.read(after=max(0, services.journal.last_seq() - 15), limit=15)))
        return render(request, "overview.html", inventory=inventory, alerts=alerts, endpoints=endpoints,
                      runs=runs, journal=journal, elapsed_ms=(time.perf_counter() - started) * 1000)

    return router


def _safe_next(target: str) -> str:
    """Only a local path may follow a login (no open redirect to another site)."""
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status_code=status, status=status, message=message)
