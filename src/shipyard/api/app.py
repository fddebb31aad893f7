"""The HTTP server: the generated service routes, blob transfer, errors as JSON, the caller's identity.

``create_app(settings)`` builds the FastAPI application served by ``shipyard server``; OpenAPI
is at ``/docs``. Errors are ``{"error": {"code", "message", "field"}}`` with a 4xx status.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard import __version__
from shipyard.api.routes import build_router
from shipyard.core.context import reset_actor, set_actor
from shipyard.core.errors import IntegrityError, NotFound, ShipyardError
from shipyard.core.hashing import normalize_digest
from shipyard.core.settings import Settings
from shipyard.services import Services

API_PREFIX = "/api/v1"
ACTOR_HEADER = "x-shipyard-actor"


class ActorMiddleware:
    """Sets the acting user for the request (the governance issue replaces this header with tokens)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        actor = dict(scope.get("headers", [])).get(ACTOR_HEADER.encode())
        token = set_actor(actor.decode(errors="replace")[:250] if actor else None)
        try:
            await self.app(scope, receive, send)
        finally:
            reset_actor(token)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    services = services or Services(settings or Settings.resolve())
    app = FastAPI(title="Shipyard", version=__version__, description="Shipyard MLOps platform API")
    app.state.services = services
    app.add_middleware(ActorMiddleware)
    app.include_router(build_router(services), prefix=API_PREFIX)
    _add_blob_routes(app, services)
    _add_error_handlers(app)

    @app.get("/health", tags=["server"])
    def health() -> dict[str, Any]:
        services.journal.last_seq()  # proves the store answers
        return {"status": "ok", "version": __version__}

    return app


def _add_blob_routes(app: FastAPI, services: Services) -> None:
    store = services.artifacts

    @app.head(API_PREFIX + "/blobs/{digest}", tags=["artifacts"])
    def has_blob(digest: str) -> JSONResponse:
        if not store.has(normalize_digest(digest)):
            raise NotFound(f"object {digest} not found", field="digest")
        return JSONResponse(None)

    @app.get(API_PREFIX + "/blobs/{digest}", tags=["artifacts"])
    def get_blob(digest: str) -> StreamingResponse:
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
    async def shipyard_error(_request: Request, exc: ShipyardError) -> JSONResponse:
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
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"error": {"code": code, "message": str(exc.detail)}}, status_code=exc.status_code)

    @app.exception_handler(IntegrityError)
    async def integrity_error(_request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"error": exc.to_dict()}, status_code=exc.status)


def _plain(errors: Any) -> Any:
    return [
        {k: (v if isinstance(v, (str, int, float, list, type(None))) else str(v)) for k, v in e.items()} for e in errors
    ]
