"""``shipyard serve``: run the inference server (OIP v2, simple JSON, MLflow) for registered models.

Each model URI becomes an endpoint (named by ``--name``, in order, or by the registered model's
name). URIs are resolved once, here, to fixed versions (``models:/m@champion`` -> ``models:/m/3``),
so every worker serves the same version even if the alias moves while they start. One worker
serves the app built in this process; several workers need an import string, so the resolved
configuration goes into ``SHIPYARD_SERVE_CONFIG`` (JSON) and uvicorn calls :func:`app_factory` in
each worker process. The model trees are materialised (and verified) here first, so the workers
only read the local cache.
"""

from __future__ import annotations

import json
import os
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
    """The inference app for a config ``{"endpoints": [[name, uri], ...], "max_body_bytes": N}``."""
    from shipyard.serving.app import create_inference_app
    from shipyard.serving.endpoints import EndpointTable

    table = EndpointTable.from_uris(client, [(name, uri) for name, uri in config["endpoints"]])
    return create_inference_app(
        table, max_body_bytes=int(config["max_body_bytes"]), prediction_log=prediction_log_for(client, config)
    )


def prediction_log_for(client: Client, config: dict[str, Any]) -> Any:
    """The prediction log over the client's own store (embedded only for now: segments are registered
    straight in the store), or None with ``--no-log`` or a remote client."""
    if not config.get("log", True) or client.is_remote:
        return None
    from shipyard.serving.prediction_log import PredictionLog

    services = client._backend.services
    return PredictionLog(services.db, services.artifacts)


def app_factory() -> Starlette:
    """Build the app in a uvicorn worker process from ``SHIPYARD_SERVE_CONFIG``."""
    from shipyard.client import Client

    config = json.loads(os.environ[CONFIG_ENV])
    # The client stays open for the worker's lifetime: the prediction log writes through its store.
    return build_app(Client(config.get("uri"), home=config.get("home")), config)


def resolve_endpoints(client: Client, models: list[str], names: list[str] | None) -> list[tuple[str, str, str]]:
    """``(endpoint name, pinned models:/NAME/VERSION uri, digest)`` for each model URI."""
    if names and len(names) != len(models):
        raise InvalidInput(
            f"got {len(names)} --name option(s) for {len(models)} model(s); give one name per model or none",
            field="name",
        )
    resolved = []
    for i, uri in enumerate(models):
        version = client.resolve_model(uri)
        resolved.append((names[i] if names else version.model_name, version.uri, version.digest))
    seen: set[str] = set()
    for name, _, _ in resolved:
        if name in seen:
            raise InvalidInput(f"endpoint {name!r} is given twice; name the endpoints with --name", field="name")
        seen.add(name)
    return resolved


def serve(
    ctx: typer.Context,
    models: Annotated[
        list[str], typer.Argument(help="Model URIs to serve, e.g. models:/churn@champion models:/fraud/3.")
    ],
    name: Annotated[
        list[str] | None,
        typer.Option("--name", "-n", help="Endpoint name for each model, in order (default: the model's name)."),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    max_body_mb: Annotated[
        float, typer.Option("--max-body-mb", min=0.001, help="Largest accepted request body, in MiB.")
    ] = 10.0,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not write predictions to the prediction log.")] = False,
) -> None:
    """Serve registered models over HTTP: OIP v2 (/v2/...), /endpoints/NAME/predict and MLflow /invocations."""
    import uvicorn

    st = state(ctx)
    client = st.client
    resolved = resolve_endpoints(client, models, name)
    config: dict[str, Any] = {
        "endpoints": [[endpoint, uri] for endpoint, uri, _ in resolved],
        "max_body_bytes": max(1, int(max_body_mb * 1024 * 1024)),
        "home": str(client.settings.home),
        "uri": st.uri,
        "log": not no_log,
    }
    listing = ", ".join(f"{endpoint} -> {uri[len('models:/') :]}" for endpoint, uri, _ in resolved)
    st.err.print(
        f"Shipyard inference server on http://{host}:{port}  endpoints: {listing}  workers: {workers}",
        markup=False,
        soft_wrap=True,
    )
    if workers == 1:
        app = build_app(client, config)
        try:
            uvicorn.run(app, host=host, port=port, log_level=log_level)
        finally:
            log = app.state.prediction_log
            if log is not None:
                log.close()
        return
    for _, _, digest in resolved:
        client.materialize_model(digest)  # once, here: the workers then only verify the cached trees
    os.environ[CONFIG_ENV] = json.dumps(config)
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)


def main() -> None:  # pragma: no cover - `python -m shipyard.cli.serve`, until `shipyard serve` is registered
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(serve)
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
