"""``shipyard server``: serve the HTTP API with uvicorn for the resolved settings.

One worker serves the application object built here. Several workers need an import string, so
the command writes the resolved locations into ``SHIPYARD_HOME`` / ``SHIPYARD_STORE_URI`` /
``SHIPYARD_ARTIFACT_URI`` and points uvicorn at :func:`app_factory`, which every worker process
calls to build its own application from those variables.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli.output import import_from_cwd, state
from shipyard.core.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI

FACTORY = "shipyard.cli.server:app_factory"


def server_settings() -> Settings:
    """The server's own store: never a client of another server, whatever SHIPYARD_URI says."""
    return Settings.resolve(remote_uri="")


def app_factory() -> FastAPI:
    """Build the application in a uvicorn worker process, from the environment the command set."""
    from shipyard.api.app import create_app

    return create_app(server_settings())


def _start_scheduler(settings: Settings, interval: float, schedules: bool = True, monitors: bool = False) -> None:
    """Run the schedule loop in a daemon thread of this (the main) process, over the server's own store.

    Claims are compare-and-set in the store, so this may run beside `shipyard scheduler` processes or
    other servers without firing an occurrence twice.
    """
    import threading

    from shipyard.client import Client
    from shipyard.pipelines.scheduler import Scheduler

    client = Client("", home=settings.home, store_uri=settings.store_uri, artifact_uri=settings.artifact_uri)
    runner = Scheduler(client, interval=interval, schedules=schedules, monitors=monitors)
    name = "shipyard-scheduler" if schedules else "shipyard-monitors"
    threading.Thread(target=runner.run_forever, name=name, daemon=True).start()


def _start_upkeep(settings: Settings, interval: float) -> None:
    """Enforce retention policies and sign a journal checkpoint every ``interval`` seconds, in a daemon
    thread over the server's own store (as the server's local user)."""
    import logging
    import threading

    from shipyard.services import Services

    log = logging.getLogger("shipyard.server")

    def loop() -> None:
        services = Services(settings)
        stop = threading.Event()
        while not stop.wait(interval):
            try:
                services.privacy.enforce_retention()
                head = services.journal.last_seq()
                signed = services.audit.export_checkpoints(after=head - 1)
                if head and not signed:  # a new head since the last checkpoint
                    services.audit.create_checkpoint()
            except Exception as exc:  # keep serving; the next round retries
                log.warning("governance upkeep failed: %s", exc)

    threading.Thread(target=loop, name="shipyard-upkeep", daemon=True).start()


def _start_events(settings: Settings, interval: float, transport: str) -> None:
    """Deliver webhooks (``shipyard events run``) and run the automation engine (``shipyard automations run``)
    in daemon threads over the server's own store."""
    from shipyard.automation.runner import WebhookRunner
    from shipyard.services import Services

    WebhookRunner(Services(settings).events, transport, interval).start()
    # the automation engine shares the loop's switch and transport (docs/automations.md)
    from shipyard.automation.engine import AutomationRunner

    AutomationRunner(Services(settings), transport, interval).start()


def start_loops(
    settings: Settings,
    *,
    upkeep_interval: float = 300.0,
    scheduler_interval: float | None = None,
    monitor_interval: float | None = 10.0,
    events_interval: float | None = 1.0,
    events_transport: str = "inprocess",
) -> None:
    """The server's background work, each in a daemon thread over its own store (None: not run):
    governance upkeep, pipeline schedules, scheduled monitors, webhooks and the automation engine."""
    _start_upkeep(settings, upkeep_interval)
    if scheduler_interval is not None:
        _start_scheduler(settings, scheduler_interval)
    if monitor_interval is not None:
        _start_scheduler(settings, monitor_interval, schedules=False, monitors=True)
    if events_interval is not None:
        _start_events(settings, events_interval, events_transport)


def _admin_hint(settings: Settings) -> str | None:
    """What to do when a server that requires authentication has nobody who could log in."""
    import sqlalchemy as sa

    from shipyard.services import Services
    from shipyard.store import schema as t

    services = Services(settings)
    try:
        with services.db.read() as conn:
            admins = conn.execute(
                sa.select(sa.func.count()).select_from(t.role_grants).where(t.role_grants.c.role == "admin")
            ).scalar_one()
    finally:
        services.close()
    if admins:
        return None
    return (
        "No admin exists yet, so nobody can log in. Create one (and a token) against the store directly:\n"
        f"  shipyard --home {settings.home} access user create NAME --role admin --token"
    )


def _redact(uri: str) -> str:
    return re.sub(r"://([^:/@]+):[^@/]*@", r"://\1:***@", uri)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option("--host", help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option("--workers", "-w", min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn log level.")] = "info",
    scheduler: Annotated[
        bool, typer.Option("--scheduler", help="Also run due pipeline schedules (like `shipyard scheduler`).")
    ] = False,
    scheduler_interval: Annotated[
        float, typer.Option("--scheduler-interval", min=0.05, help="Seconds between schedule checks.")
    ] = 30.0,
    monitors: Annotated[
        bool, typer.Option("--monitors/--no-monitors", help="Run monitors that have a schedule (shipyard monitor).")
    ] = True,
    monitor_interval: Annotated[
        float, typer.Option("--monitor-interval", min=0.05, help="Seconds between checks for due monitors.")
    ] = 10.0,
    auth: Annotated[
        bool,
        typer.Option("--auth/--no-auth", help="Require an API token from every caller (--no-auth: development only)."),
    ] = True,
    upkeep_interval: Annotated[
        float,
        typer.Option(
            "--upkeep-interval", min=0.05, help="Seconds between retention enforcement and journal checkpoints."
        ),
    ] = 300.0,
    events: Annotated[
        bool, typer.Option("--events/--no-events", help="Deliver webhooks (like `shipyard events run`).")
    ] = True,
    events_transport: Annotated[
        str, typer.Option("--events-transport", help="inprocess, or redis (SHIPYARD_REDIS_URL) for several servers.")
    ] = "inprocess",
    events_interval: Annotated[
        float, typer.Option("--events-interval", min=0.05, help="Seconds between webhook delivery rounds.")
    ] = 1.0,
) -> None:
    """Run the Shipyard HTTP server (API under /api/v1, OpenAPI at /docs, /health)."""
    import uvicorn

    from shipyard.api.app import AUTH_ENV, create_app

    st = state(ctx)
    import_from_cwd()  # pipelines run by the jobs API and the scheduler may live in the current directory
    settings = Settings.resolve(home=st.home, remote_uri="")
    st.err.print(
        f"Shipyard server on http://{host}:{port} (dashboard at /, API docs at /docs)  "
        f"store: {_redact(settings.store_uri)}  artifacts: {_redact(settings.artifact_uri)}  workers: {workers}"
        + (f"  scheduler: every {scheduler_interval:g}s" if scheduler else ""),
        markup=False,
        soft_wrap=True,
    )
    os.environ[AUTH_ENV] = "1" if auth else "0"  # every worker builds its app from the environment
    if not auth:
        st.err.print("Authentication is OFF: every caller acts as the server's own user (an admin).", markup=False)
    elif hint := _admin_hint(settings):
        st.err.print(hint, markup=False, soft_wrap=True)
    start_loops(
        settings,
        upkeep_interval=upkeep_interval,
        scheduler_interval=scheduler_interval if scheduler else None,
        monitor_interval=monitor_interval if monitors else None,
        events_interval=events_interval if events else None,
        events_transport=events_transport,
    )
    if workers == 1:
        app = create_app(settings, require_auth=auth)
        try:
            uvicorn.run(app, host=host, port=port, log_level=log_level)
        finally:
            app.state.services.close()
        return
    os.environ["SHIPYARD_HOME"] = str(settings.home)
    os.environ["SHIPYARD_STORE_URI"] = settings.store_uri
    os.environ["SHIPYARD_ARTIFACT_URI"] = settings.artifact_uri
    # Open (and migrate) the store once here, so the workers do not race to create it.
    create_app(settings, require_auth=auth).state.services.close()
    uvicorn.run(FACTORY, factory=True, host=host, port=port, workers=workers, log_level=log_level)
