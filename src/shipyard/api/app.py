"""The HTTP server: the generated service routes, blob transfer, errors as JSON, the caller's identity.

``create_app(settings)`` builds the FastAPI application served by ``shipyard server``; OpenAPI
is at ``/docs``. Errors are ``{"error": {"code", "message", "field"}}`` with a 4xx status.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard import __version__
from shipyard.api.ratelimit import FailureLimiter
from shipyard.api.routes import build_router
from shipyard.core.context import reset_actor, set_actor
from shipyard.core.errors import (
    IntegrityError,
    NotFound,
    PermissionDenied,
    RateLimited,
    ShipyardError,
    Unauthenticated,
)
from shipyard.core.hashing import normalize_digest
from shipyard.core.settings import Settings
from shipyard.governance.access import parse_token
from shipyard.services import Services
from shipyard.ui import mount_dashboard
from shipyard.ui.app import error_page
from shipyard.ui.session import CSRF_HEADER, SAFE_METHODS, cookie_token, is_dashboard_path, is_public

API_PREFIX = "/api/v1"
# Paths anyone may fetch: liveness and the API's own description (no data).
OPEN_PATHS = frozenset({"/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
AUTH_ENV = "SHIPYARD_SERVER_AUTH"  # "0" runs an open server (development only)
TOUCH_EVERY_S = 60.0


def auth_required_by_default() -> bool:
    return os.environ.get(AUTH_ENV, "1") != "0"


class AuthMiddleware:
    """Authenticates every request by its bearer token (or the dashboard's session cookie) and sets
    the acting principal for it.

    Missing or bad credentials answer 401 before any route runs; an address with too many recent
    failures answers 429. The token itself is never logged or echoed. Without authentication
    (``--no-auth``) every caller acts as the server's own user.
    """

    def __init__(self, app: ASGIApp, services: Services, require_auth: bool, limiter: FailureLimiter):
        self.app = app
        self.services = services
        self.require_auth = require_auth
        self.limiter = limiter
        self.touched: dict[str, float] = {}  # token id -> when this process last recorded its use

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not self.require_auth or path in OPEN_PATHS or is_public(path):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.limiter.retry_after(client)
        if wait > 0:
            error = RateLimited(f"too many failed authentications from {client}; retry in {wait:.0f} s")
            await _reject(scope, receive, send, error, {"retry-after": str(max(1, round(wait)))})
            return
        headers = dict(scope.get("headers", []))
        header = headers.get(b"authorization", b"").decode(errors="replace")
        scheme, _, credentials = header.partition(" ")
        credentials = credentials.strip() if scheme.lower() == "bearer" else ""
        from_cookie = False
        if not credentials and (session := cookie_token(headers)):
            credentials, from_cookie = session, True
        if not credentials:
            if is_dashboard_path(path):
                await _to_login(scope, receive, send)
                return
            message = "authentication required: send 'Authorization: Bearer <token>' (see `shipyard login`)"
            await _reject(scope, receive, send, Unauthenticated(message), {"www-authenticate": "Bearer"})
            return
        if from_cookie and scope.get("method", "GET") not in SAFE_METHODS and CSRF_HEADER not in headers:
            error = PermissionDenied("a request authenticated by the dashboard's cookie must send X-Shipyard-CSRF")
            await _reject(scope, receive, send, error, {})
            return
        try:
            principal = await run_in_threadpool(self.services.access.authenticate, credentials)
        except Unauthenticated as exc:
            self.limiter.fail(client)
            if from_cookie and is_dashboard_path(path):
                await _to_login(scope, receive, send)
                return
            await _reject(scope, receive, send, exc, {"www-authenticate": "Bearer"})
            return
        await self._note_use(credentials)
        token = set_actor(principal)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_actor(token)

    async def _note_use(self, credentials: str) -> None:
        """Record a token's last use at most once a minute per process (a write per request would
        serialise every read on SQLite)."""
        token_id = parse_token(credentials)[0]
        now = time.monotonic()
        if now - self.touched.get(token_id, -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        self.touched[token_id] = now
        if len(self.touched) > 100_000:
            self.touched.clear()
        await run_in_threadpool(self.services.access.touch_token, token_id)


async def _to_login(scope: Scope, receive: Receive, send: Send) -> None:
    """A page asked for without a (valid) session: go to the login form, then come back."""
    target = scope.get("path", "/")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    response = RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)
    await response(scope, receive, send)


async def _reject(scope: Scope, receive: Receive, send: Send, error: ShipyardError, headers: dict[str, str]) -> None:
    response = JSONResponse({"error": error.to_dict()}, status_code=error.status, headers=headers)
    await response(scope, receive, send)


def create_app(
    settings: Settings | None = None, services: Services | None = None, *, require_auth: bool | None = None
) -> FastAPI:
    """The server app; it authenticates every caller unless ``require_auth=False`` (or SHIPYARD_SERVER_AUTH=0)."""
    if require_auth is None:
        require_auth = auth_required_by_default() if services is None else services.require_auth
    services = services or Services(settings or Settings.resolve(), require_auth=require_auth)
    app = FastAPI(title="Shipyard", version=__version__, description="Shipyard MLOps platform API")
    app.state.services = services
    app.state.auth_limiter = FailureLimiter()
    app.add_middleware(AuthMiddleware, services=services, require_auth=require_auth, limiter=app.state.auth_limiter)
    app.include_router(build_router(services), prefix=API_PREFIX)
    _add_blob_routes(app, services)
    _add_error_handlers(app)
    mount_dashboard(app, services)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, Any]:
        services.journal.last_seq()  # proves the store answers
        return {"status": "ok", "version": __version__}

    return app


def _add_blob_routes(app: FastAPI, services: Services) -> None:
    store = services.artifacts

    @app.head(API_PREFIX + "/blobs/{digest}", tags=["artifacts"])
    def has_blob(digest: str) -> JSONResponse:
        services.access.require("read")
        if not store.has(normalize_digest(digest)):
            raise NotFound(f"object {digest} not found", field="digest")
        return JSONResponse(None)

    @app.get(API_PREFIX + "/blobs/{digest}", tags=["artifacts"])
    def get_blob(digest: str) -> StreamingResponse:
        services.access.require("read")
        digest = normalize_digest(digest)
        stream = store.open(digest)

        def chunks():
            with stream:
                while chunk := stream.read(1024 * 1024):
                    yield chunk

        return StreamingResponse(chunks(), media_type="application/octet-stream", headers={"x-digest": digest})

    @app.put(API_PREFIX + "/blobs/{digest}", tags=["artifacts"])
    async def put_blob(digest: str, request: Request) -> dict[str, Any]:
        """Upload an object; the server recomputes the digest and refuses a mismatch."""
        await run_in_threadpool(services.access.require, "write")
        digest = normalize_digest(digest)
        if store.has(digest):
            async for _ in request.stream():
                pass
            return {"digest": digest, "stored": False}
        # Spool to disk so a large upload is never held in memory, then store it atomically.
        with tempfile.NamedTemporaryFile(prefix="upload-", delete=False) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
        try:
            with open(spool.name, "rb") as f:
                stored, size = store.put_stream(f, expected_digest=digest)
        finally:
            os.unlink(spool.name)
        return {"digest": stored, "size": size, "stored": True}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ShipyardError)
    async def shipyard_error(request: Request, exc: ShipyardError) -> Response:
        if _wants_page(request):
            return await run_in_threadpool(error_page, request, exc.status, exc.message)
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(location) or None
        message = f"{field}: {first.get('msg', 'invalid value')}" if field else first.get("msg", "invalid request")
        body = {
            "code": "invalid_input",
            "message": message,
            "field": field,
            "details": {"errors": _plain(exc.errors())},
        }
        return JSONResponse({"error": body}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if _wants_page(request):
            return await run_in_threadpool(error_page, request, exc.status_code, str(exc.detail))
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


def _wants_page(request: Request) -> bool:
    """A browser asking for a dashboard page gets an HTML error page, an API client JSON."""
    return is_dashboard_path(request.url.path) and "text/html" in request.headers.get("accept", "")


def _plain(errors: Any) -> Any:
    return [
        {k: (v if isinstance(v, (str, int, float, list, type(None))) else str(v)) for k, v in e.items()} for e in errors
    ]
