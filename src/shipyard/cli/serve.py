"""``shipyard serve``: run the inference server (OIP v2, simple JSON, MLflow) for registered models.

Arguments are endpoint names from the store, or model URIs: a URI's endpoint (named by ``--name``
or by the registered model) is created on first use with that version, so ``shipyard serve
models:/m@champion`` just works; after that the endpoint serves whatever its deployments say, and
moving the alias deploys nothing (``shipyard deploy`` does). Every worker process is a replica with
its own :class:`~shipyard.serving.runtime.ServingRuntime`. One worker serves the app built in this
process; several need an import string, so the configuration goes into ``SHIPYARD_SERVE_CONFIG``
(JSON) and uvicorn calls :func:`app_factory` in each worker. The model trees are materialised (and
verified) here first, so the workers only read the local cache. With several workers,
``PROMETHEUS_MULTIPROC_DIR`` points at a fresh temporary directory (removed on exit) before they start,
so ``GET /metrics`` in any worker reports every worker (:mod:`shipyard.serving.metrics`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli.output import state
from shipyard.core.errors import InvalidInput

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from shipyard.client import Client

FACTORY = "shipyard.cli.serve:app_factory"
CONFIG_ENV = "SHIPYARD_SERVE_CONFIG"


def build_app(client: Client, config: dict[str, Any]) -> Starlette:
    """The inference app for a config ``{"endpoints": [name, ...], "max_body_bytes": N, ...}``: a serving
    runtime (this process is one replica) over the endpoints' deployments in the store."""
    from shipyard.serving.app import create_inference_app
    from shipyard.serving.runtime import ServingRuntime

    batching = None
    if int(config.get("max_batch_size", 1)) > 1:
        batching = {"max_batch_size": int(config["max_batch_size"]), "max_wait_ms": float(config["max_wait_ms"])}
    # ``[name, uri]`` pairs are accepted too: the endpoint is created serving ``uri`` if it is new
    names = [entry if isinstance(entry, str) else client.ensure_endpoint(*entry).name for entry in config["endpoints"]]
    runtime = ServingRuntime(
        client,
        names,
        poll_interval=float(config.get("poll_interval", 0.5)),
        flush_interval=float(config.get("flush_interval", 2.0)),
        batching=batching,
    )
    table = runtime.start()
    log = prediction_log_for(client, config)

    def shutdown() -> None:
        runtime.stop()
        if log is not None:
            log.close()

    app = create_inference_app(
        table, max_body_bytes=int(config["max_body_bytes"]), prediction_log=log, on_shutdown=[shutdown]
    )
    app.state.runtime = runtime
    return app


def prediction_log_for(client: Client, config: dict[str, Any]) -> Any:
    """The prediction log through the client (embedded or remote), or None with ``--no-log``."""
    if not config.get("log", True):
        return None
    from shipyard.serving.prediction_log import PredictionLog

    return PredictionLog.for_client(client)


def app_factory() -> Starlette:
    """Build the app in a uvicorn worker process from ``SHIPYARD_SERVE_CONFIG``."""
    from shipyard.client import Client

    config = json.loads(os.environ[CONFIG_ENV])
    # The client stays open for the worker's lifetime: the runtime and the prediction log use it.
    return build_app(Client(config.get("uri"), home=config.get("home")), config)


def resolve_endpoints(client: Client, targets: list[str], names: list[str] | None) -> list[tuple[str, str]]:
    """``(endpoint name, what it serves)`` for each target: an endpoint name from the store, or a model URI
    whose endpoint is created on first use (an existing endpoint keeps serving its own deployment)."""
    uris = [target for target in targets if target.startswith("models:/")]
    if names and len(names) != len(uris):
        raise InvalidInput(
            f"got {len(names)} --name option(s) for {len(uris)} model URI(s); give one name per URI or none",
            field="name",
        )
    resolved: list[tuple[str, str]] = []
    named = iter(names or [])
    for target in targets:
        if target.startswith("models:/"):
            version = client.resolve_model(target)
            endpoint = client.ensure_endpoint(next(named, None) or version.model_name, version.uri)
            if endpoint.stable.digest != version.digest:
                note = f"{endpoint.stable.label} (the endpoint exists; {target} not deployed)"
            else:
                note = endpoint.stable.label
        else:
            endpoint = client.get_endpoint(target)
            note = endpoint.stable.label
        if endpoint.deployment_id:
            note += f", rollout {endpoint.deployment_id} in progress"
        resolved.append((endpoint.name, note))
    seen: set[str] = set()
    for name, _ in resolved:
        if name in seen:
            raise InvalidInput(f"endpoint {name!r} is given twice; name the endpoints with --name", field="name")
        seen.add(name)
    return resolved


def serve(
    ctx: typer.Context,
    targets: Annotated[
        list[str],
        typer.Argument(
            help="Endpoints to serve: endpoint names, or model URIs (models:/churn@champion) whose endpoint is "
            "created on first use.",
            metavar="ENDPOINT_OR_URI...",
        ),
    ],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Endpoint name for each model URI, in order (default: the model's name)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes (replicas).")] = 1,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest accepted request body, in MiB.")
    ] = 10.0,
    max_batch_size: Annotated[
        int, typer.Option("--max-batch-size", min=1, help="Micro-batch up to this many rows per model call (1: off).")
    ] = 1,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0.0, help="Longest a request waits for a micro-batch to fill.")
    ] = 2.0,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.05, help="Seconds between checks of the deployments.")
    ] = 0.5,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write predictions to the prediction log.")] = False,
) -> None:
    """Serve endpoints over HTTP: OIP v2 (/v2/...), /endpoints/NAME/predict and MLflow /invocations.

    Each worker is a replica following the endpoints' deployments in the store (`shipyard deploy`):
    new versions are loaded, smoke-tested and swapped in without dropping requests.
    """
    import uvicorn

    st = state(ctx)
    client = st.client
    resolved = resolve_endpoints(client, targets, name)
    config: dict[str, Any] = {
        "endpoints": [endpoint for endpoint, _ in resolved],
        "max_body_bytes": max(1, int(max_body_mb * 1024 * 1024)),
        "home": str(client.settings.home),
        "uri": st.uri,
        "log": not no_log,
        "max_batch_size": max_batch_size,
        "max_wait_ms": max_wait_ms,
        "poll_interval": poll_interval,
    }
    listing = ", ".join(f"{endpoint} -> {note}" for endpoint, note in resolved)
    st.err.print(
        f"Shipyard inference server on http://{host}:{port}  endpoints: {listing}  workers: {workers}",
        markup=False,
        soft_wrap=True,
    )
    if workers == 1:
        uvicorn.run(build_app(client, config), host=host, port=port, log_level=log_level)
        return
    for endpoint, _ in resolved:
        client.materialize_model(client.get_endpoint(endpoint).stable.digest)  # once: workers verify the cache
    os.environ[CONFIG_ENV] = json.dumps(config)
    # every worker keeps its metric values in files here; a fresh directory, so nothing stale is counted
    from shipyard.serving.metrics import MULTIPROC_ENV

    metrics_dir = tempfile.mkdtemp(prefix="shipyard-metrics-")
    previous = os.environ.get(MULTIPROC_ENV)
    os.environ[MULTIPROC_ENV] = metrics_dir
    try:
        uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
        if previous is None:
            os.environ.pop(MULTIPROC_ENV, None)
        else:
            os.environ[MULTIPROC_ENV] = previous


def main() -> None:  # pragma: no cover - `python -m shipyard.cli.serve`, until `shipyard serve` is registered
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
