"""The inference server: a lean Starlette app answering OIP v2, simple JSON and MLflow requests.

No pydantic on the hot path: bodies are read with a size limit, parsed with :mod:`json`, decoded by
:mod:`shipyard.serving.protocols`, checked against the model signature and predicted in a worker
thread, so a slow model never blocks the event loop. Every prediction response (and every error
of a prediction route) carries ``X-Prediction-Id`` and, once a version is chosen, ``X-Model-Version:
NAME/VERSION``; the body repeats both. Errors are ``{"error": "...", "field": "..."}`` with a 4xx
status naming the field at fault, or 500 with the model's own message when ``predict`` raises.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask, BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shipyard import __version__
from shipyard.core.errors import InvalidInput, ShipyardError
from shipyard.core.ids import new_id
from shipyard.serving.endpoints import Endpoint, EndpointTable, ServedVersion
from shipyard.serving.metrics import ServingMetrics
from shipyard.serving.protocols import (
    ProtocolError,
    decode_mlflow,
    decode_simple,
    decode_v2,
    dumps,
    encode_predictions,
    encode_v2_binary,
    encode_v2_tensors,
    parse_json,
    rows_of,
    split_v2_binary,
    to_model_input,
    v2_schema_tensors,
)
from shipyard.serving.router import Router, Variant
from shipyard.serving.shadow import ShadowQueue

__all__ = ["DEFAULT_MAX_BODY_BYTES", "SERVER_NAME", "create_inference_app"]

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
SERVER_NAME = "shipyard"
OUTPUTS = ("predict", "predict_proba")

log = logging.getLogger("shipyard.serving")

Decoder = Callable[[Any, Any], Any]
BINARY_HEADER = "inference-header-content-length"  # OIP binary tensor data extension (Triton's)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None, background: Any = None) -> Response:
    return Response(
        dumps(body), status_code=status, headers=headers, media_type="application/json", background=background
    )


def _error(status: int, message: str, field: str | None = None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    return _json(body, status, headers)


def _error_of(exc: ShipyardError, headers: dict[str, str] | None = None) -> Response:
    return _error(exc.status, exc.message, exc.field, headers)


def create_inference_app(
    endpoints: EndpointTable | Iterable[Endpoint],
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    prediction_log: Any = None,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Starlette:
    """The ASGI app serving ``endpoints``.

    ``max_body_bytes`` bounds request bodies (413 beyond it). ``prediction_log``, when given, gets
    ``record(endpoint=, model=, version=, variant=, request_id=, inputs=, outputs=, latency_ms=,
    routing=)`` after each successful prediction, off the request path; its failures are logged and
    never reach the caller. System health is at ``GET /metrics`` (Prometheus) and ``GET /metrics.json``
    (:mod:`shipyard.serving.metrics`).
    """
    table = endpoints if isinstance(endpoints, EndpointTable) else EndpointTable(endpoints)
    shadows = ShadowQueue()

    def queue_lengths() -> dict[tuple[str, str], int]:
        lengths: dict[tuple[str, str], int] = {}
        for e in table:
            router = e.router
            served = (*router.versions, *((router.shadow,) if router.shadow is not None else ()))
            lengths[(e.name, "batch")] = sum(s.batcher.queue_length for s in served if s.batcher is not None)
            lengths[(e.name, "shadow")] = shadows.backlog_of(e.name)
        return lengths

    metrics = ServingMetrics(queue_lengths=queue_lengths)

    async def read_json(request: Request, oip: bool = False) -> Any:
        mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # OIP clients (tritonclient) send no content type, or octet-stream with binary tensor data
        oip_ok = oip and (mime in ("", "application/octet-stream") or BINARY_HEADER in request.headers)
        if (
            not oip_ok
            and mime != "application/json"
            and not (mime.startswith("application/") and mime.endswith("+json"))
        ):
            raise ProtocolError(
                f"unsupported content type {mime or '(none)'!r}; send JSON with 'Content-Type: application/json'",
                field="content-type",
                status=415,
            )
        too_big = ProtocolError(
            f"request body is larger than the {max_body_bytes}-byte limit", field="body", status=413
        )
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > max_body_bytes:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body_bytes:
                raise too_big
            chunks.append(chunk)
        if not size:
            raise ProtocolError("request body is empty; send a JSON object", field="body")
        if oip and BINARY_HEADER in request.headers:
            return split_v2_binary(b"".join(chunks), request.headers[BINARY_HEADER])
        return parse_json(b"".join(chunks))

    def record(
        endpoint: Endpoint,
        served: ServedVersion,
        variant: str | None,
        routing: dict[str, Any] | None,
        pid: str,
        data: Any,
        output: Any,
        latency_ms: float,
    ) -> None:
        try:
            prediction_log.record(
                endpoint=endpoint.name,
                model=served.model_name,
                version=served.version,
                variant=variant,
                request_id=pid,
                inputs=rows_of(data),
                outputs=encode_predictions(output),
                latency_ms=latency_ms,
                routing=routing,
            )
        except Exception:  # logging must never fail a prediction
            log.exception("prediction log failed for %s on endpoint %s", pid, endpoint.name)

    def observe(
        endpoint: Endpoint, router: Router, variant: Variant, latency_ms: float, error: bool, output: Any, pid: str
    ) -> None:
        if endpoint.observer is not None:
            try:
                endpoint.observer(
                    endpoint, router, variant, latency_ms=latency_ms, error=error, output=output, prediction_id=pid
                )
            except Exception:  # statistics must never fail a prediction
                log.exception("observer failed on endpoint %s", endpoint.name)

    def shadow_predict(endpoint: Endpoint, router: Router, body: Any, decode: Decoder, pid: str, primary: Any) -> None:
        """The shadow's answer to a copy of the request: logged and compared, never returned."""
        served = router.shadow
        assert served is not None
        variant = Variant("shadow", served, 0.0)
        started = time.perf_counter()
        try:
            data = to_model_input(served.signature, decode(body, served.signature))
            output = served.model.unchecked("predict")(data)
        except Exception:
            seconds = time.perf_counter() - started
            metrics.shadow(endpoint.name, served.model_name, served.version, seconds, True)
            observe(endpoint, router, variant, seconds * 1000, True, None, pid)
            return
        seconds = time.perf_counter() - started
        metrics.shadow(endpoint.name, served.model_name, served.version, seconds, False)
        latency_ms = seconds * 1000
        observe(endpoint, router, variant, latency_ms, False, (output, primary), pid)
        if prediction_log is not None:
            record(endpoint, served, "shadow", {"rule": "shadow", "of": pid}, pid, data, output, latency_ms)

    def submit_shadow(endpoint: Endpoint, *args: Any) -> None:
        if not shadows.submit(shadow_predict, endpoint, *args, key=endpoint.name):
            metrics.dropped(endpoint.name)

    async def predict(
        request: Request,
        endpoint: Endpoint,
        served: ServedVersion | None,
        decode: Decoder,
        respond: Callable[[Any, ServedVersion, str, Any, Any], Any],
        outputs: Callable[[Any], tuple[str, ...]] | None = None,
    ) -> Response:
        """Answer one prediction request, counted and timed in the metrics."""
        started = time.perf_counter()
        chosen: list[Any] = [served, ""]  # the version and variant that answer, once known
        flight = metrics.in_flight(endpoint.name)
        flight.inc()
        status = 499  # cancelled: the client went away (nginx's code for it)
        try:
            response = await answer(request, endpoint, served, decode, respond, outputs, chosen)
            status = response.status_code
            return response
        except Exception:
            status = 500  # the app's error handler answers
            raise
        finally:
            flight.dec()
            served = chosen[0]
            if served is None:
                metrics.request(endpoint.name, "", "", chosen[1], status, time.perf_counter() - started)
            else:
                metrics.request(
                    endpoint.name, served.model_name, served.version, chosen[1], status, time.perf_counter() - started
                )

    async def answer(
        request: Request,
        endpoint: Endpoint,
        served: ServedVersion | None,
        decode: Decoder,
        respond: Callable[[Any, ServedVersion, str, Any, Any], Any],
        outputs: Callable[[Any], tuple[str, ...]] | None,
        chosen: list[Any],
    ) -> Response:
        pid = new_id()
        started = time.perf_counter()
        headers = {"X-Prediction-Id": pid}
        router = endpoint.router  # one snapshot per request: a swap mid-request does not move it
        try:
            if served is not None:
                headers["X-Model-Version"] = served.label
                variant, routing = Variant("pinned", served, 1.0), {"rule": "pinned", "variant": "pinned"}
                chosen[1] = "pinned"
            body = await read_json(request, oip=decode is decode_v2)
            if served is None:
                variant, routing = router.choose(request.headers, body)
                served = variant.served
                chosen[0], chosen[1] = served, variant.name
                headers["X-Model-Version"] = served.label
            wanted = outputs(body) if outputs else ("predict",)
            data = to_model_input(served.signature, decode(body, served.signature))
            # `data` is validated against the signature now: the model's own methods need not check it again.
            methods = {}
            for name in wanted:
                try:
                    methods[name] = served.model.unchecked(name)
                except AttributeError:
                    raise ProtocolError(f"model {served.label} has no output {name!r}", field=name) from None
        except ShipyardError as exc:
            return _error_of(exc, headers)

        def run() -> dict[str, Any]:
            return {name: method(data) for name, method in methods.items()}

        try:
            if served.batcher is not None and wanted == ("predict",):
                results = {"predict": await served.batcher.submit(data)}
            else:
                results = await run_in_threadpool(run)
        except InvalidInput as exc:
            return _error(422, exc.message, exc.field, headers)
        except Exception as exc:
            # the caller gets the message; the traceback only with debug logging (a bad release can fail often)
            log.warning("model %s failed on prediction %s: %s: %s", served.label, pid, type(exc).__name__, exc)
            log.debug("traceback of prediction %s", pid, exc_info=True)
            observe(endpoint, router, variant, (time.perf_counter() - started) * 1000, True, None, pid)
            metrics.prediction_error(endpoint.name, served.model_name, served.version, variant.name)
            return _error(500, f"model {served.label} failed: {type(exc).__name__}: {exc}", None, headers)
        latency_ms = (time.perf_counter() - started) * 1000
        try:
            content = respond(body, served, pid, results, endpoint)
        except Exception as exc:
            log.exception("cannot encode the output of %s", served.label)
            metrics.prediction_error(endpoint.name, served.model_name, served.version, variant.name)
            return _error(500, f"cannot encode the output of model {served.label}: {exc}", None, headers)
        primary = results.get("predict", next(iter(results.values())))
        observe(endpoint, router, variant, latency_ms, False, primary, pid)
        tasks: list[BackgroundTask] = []
        if isinstance(content, tuple):  # OIP binary outputs: JSON header, then the raw tensor data
            header, raw = content
            headers[BINARY_HEADER] = str(len(header))
        if prediction_log is not None:
            tasks.append(
                BackgroundTask(record, endpoint, served, variant.name, routing, pid, data, primary, latency_ms)
            )
        if router.shadow is not None and router.wants_shadow():
            tasks.append(BackgroundTask(submit_shadow, endpoint, router, body, decode, pid, primary))
        background = None
        if len(tasks) == 1:
            background = tasks[0]
        elif tasks:
            background = BackgroundTasks(tasks)
        if isinstance(content, tuple):
            return Response(header + raw, 200, headers, media_type="application/octet-stream", background=background)
        return _json(content, 200, headers, background)

    def plain(body: Any, served: ServedVersion, pid: str, results: dict[str, Any], endpoint: Endpoint) -> Any:
        return {"id": pid, "model_version": served.label, "predictions": encode_predictions(results["predict"])}

    def v2(body: Any, served: ServedVersion, pid: str, results: dict[str, Any], endpoint: Endpoint) -> Any:
        request_id = body.get("id") if isinstance(body.get("id"), str) else None
        tensors = [t for name, output in results.items() for t in encode_v2_tensors(output, name)]
        content = {
            "model_name": endpoint.name,
            "model_version": str(served.version),
            "id": request_id or pid,
            "parameters": {"prediction_id": pid, "model": served.label},
            "outputs": tensors,
        }
        binary = binary_outputs(body)
        if not binary:
            return content
        raw = []
        for i, tensor in enumerate(tensors):
            if tensor["name"] in binary:
                tensors[i], data = encode_v2_binary(tensor)
                raw.append(data)
        return dumps(content), b"".join(raw)

    def binary_outputs(body: Any) -> set[str]:
        """Outputs the caller wants as binary tensor data: all with ``parameters.binary_data_output``,
        else those requested with ``parameters.binary_data``."""
        params = body.get("parameters")
        requested = body.get("outputs")
        if isinstance(requested, list) and requested:
            return {
                str(o["name"])
                for o in requested
                if isinstance(o.get("parameters"), dict) and o["parameters"].get("binary_data") is True
            }
        if isinstance(params, dict) and params.get("binary_data_output") is True:
            return set(OUTPUTS)
        return set()

    def v2_outputs(body: Any) -> tuple[str, ...]:
        if not isinstance(body, dict) or body.get("outputs") is None:
            return ("predict",)
        requested = body["outputs"]
        if not isinstance(requested, list) or not all(isinstance(o, dict) and "name" in o for o in requested):
            raise ProtocolError("'outputs' must be a list of objects with a 'name'", field="outputs")
        names = tuple(dict.fromkeys(str(o["name"]) for o in requested))
        unknown = [n for n in names if n not in OUTPUTS]
        if unknown:
            raise ProtocolError(
                f"unknown output {unknown[0]!r}; this server offers {', '.join(OUTPUTS)}", field=unknown[0]
            )
        return names or ("predict",)

    def lookup(name: str, version: str | None) -> tuple[Endpoint, ServedVersion | None]:
        endpoint = table.get(name)
        return endpoint, (endpoint.version(version) if version is not None else None)

    # ------------------------------------------------------------------------------------------
    # OIP v2

    async def live(request: Request) -> Response:
        return _json({"live": True})

    async def ready(request: Request) -> Response:
        return _json({"ready": True})

    async def server_metadata(request: Request) -> Response:
        return _json({"name": SERVER_NAME, "version": __version__, "extensions": []})

    def versions_of(request: Request) -> tuple[Endpoint, ServedVersion]:
        endpoint, served = lookup(request.path_params["name"], request.path_params.get("version"))
        return endpoint, served or endpoint.route(request)

    async def model_metadata(request: Request) -> Response:
        try:
            endpoint, served = versions_of(request)
        except ShipyardError as exc:
            return _error_of(exc)
        signature = served.signature or {}
        return _json(
            {
                "name": endpoint.name,
                "versions": [str(v.version) for v in endpoint.versions],
                "platform": f"shipyard-{served.model.flavor}",
                "inputs": v2_schema_tensors(signature.get("inputs")),
                "outputs": v2_schema_tensors(signature.get("outputs"), "predict"),
                "parameters": {"model": served.label, "digest": served.digest},
            },
            headers={"X-Model-Version": served.label},
        )

    async def model_ready(request: Request) -> Response:
        try:
            endpoint, served = versions_of(request)
        except ShipyardError as exc:
            return _error_of(exc)
        return _json({"name": endpoint.name, "version": str(served.version), "ready": True})

    def refused(name: str, exc: ShipyardError, started: float) -> Response:
        """A prediction request for an unknown endpoint or version: counted, never labelled by what was asked."""
        metrics.request(name if name in table else "", "", "", "", exc.status, time.perf_counter() - started)
        return _error_of(exc, {"X-Prediction-Id": new_id()})

    async def infer(request: Request) -> Response:
        started = time.perf_counter()
        try:
            endpoint, served = lookup(request.path_params["name"], request.path_params.get("version"))
        except ShipyardError as exc:
            return refused(request.path_params["name"], exc, started)
        return await predict(request, endpoint, served, decode_v2, v2, v2_outputs)

    # ------------------------------------------------------------------------------------------
    # simple JSON and MLflow

    async def endpoint_predict(request: Request) -> Response:
        started = time.perf_counter()
        try:
            endpoint = table.get(request.path_params["name"])
        except ShipyardError as exc:
            return refused(request.path_params["name"], exc, started)
        return await predict(request, endpoint, None, decode_simple, plain)

    async def endpoint_invocations(request: Request) -> Response:
        started = time.perf_counter()
        try:
            endpoint = table.get(request.path_params["name"])
        except ShipyardError as exc:
            return refused(request.path_params["name"], exc, started)
        return await predict(request, endpoint, None, decode_mlflow, plain)

    async def invocations(request: Request) -> Response:
        if len(table) != 1:
            metrics.request("", "", "", "", 400, 0.0)
            return _error(
                400,
                f"this server has {len(table)} endpoints ({', '.join(table.names)}); "
                "POST /endpoints/{name}/invocations instead",
                "endpoint",
                {"X-Prediction-Id": new_id()},
            )
        return await predict(request, next(iter(table)), None, decode_mlflow, plain)

    async def list_endpoints(request: Request) -> Response:
        """What this replica routes right now: per endpoint its variants and weights, and any shadow."""

        def describe(e: Endpoint) -> dict[str, Any]:
            router = e.router
            body: dict[str, Any] = {
                "name": e.name,
                "versions": [
                    {
                        "model": v.served.label,
                        "digest": v.served.digest,
                        "flavor": v.served.model.flavor,
                        "variant": v.name,
                        "weight": v.weight,
                    }
                    for v in router.variants
                ],  # fmt: skip
                "deployment": router.deployment_id,
                "strategy": router.strategy,
            }
            if router.shadow is not None:
                body["shadow"] = {"model": router.shadow.label, "sample": router.shadow_sample}
            return body

        return _json({"endpoints": [describe(e) for e in table], "shadow_queue": shadows.stats})

    async def ping(request: Request) -> Response:
        return _json({"status": "ok"})

    # ------------------------------------------------------------------------------------------
    # system health

    async def metrics_text(request: Request) -> Response:
        body, content_type = await run_in_threadpool(metrics.render, request.headers.get("accept"))
        return Response(body, headers={"Content-Type": content_type})

    async def metrics_json(request: Request) -> Response:
        return _json(await run_in_threadpool(metrics.summary))

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if exc.status_code != 404 else f"no route {request.method} {request.url.path}"
        return _error(exc.status_code, str(message), headers=getattr(exc, "headers", None))

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error serving %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}: {exc}")

    v = "/v2/models/{name}"
    routes = [
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route("/v2", server_metadata),
        Route(v, model_metadata),
        Route(v + "/versions/{version}", model_metadata),
        Route(v + "/ready", model_ready),
        Route(v + "/versions/{version}/ready", model_ready),
        Route(v + "/infer", infer, methods=["POST"]),
        Route(v + "/versions/{version}/infer", infer, methods=["POST"]),
        Route("/endpoints", list_endpoints),
        Route("/endpoints/{name}/predict", endpoint_predict, methods=["POST"]),
        Route("/endpoints/{name}/invocations", endpoint_invocations, methods=["POST"]),
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping),
        Route("/health", ping),
        Route("/metrics", metrics_text),
        Route("/metrics.json", metrics_json),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        metrics.start()
        try:
            yield
        finally:
            metrics.stop()
            shadows.close()
            for hook in on_shutdown:
                hook()

    app = Starlette(
        routes=routes, exception_handlers={HTTPException: http_error, Exception: server_error}, lifespan=lifespan
    )
    app.state.endpoints = table
    app.state.prediction_log = prediction_log
    app.state.shadows = shadows
    app.state.metrics = metrics
    return app
