"""``shipyard events …`` and ``shipyard webhooks …``: subscribers, webhooks, dead letters, the delivery runner.

Reading the journal itself stays ``shipyard journal tail [--follow]``.
"""

from __future__ import annotations

import logging
import signal
from typing import Annotated, Any

import typer

from shipyard.automation.entities import Delivery, Subscriber
from shipyard.cli.output import State, done, emit_json, state, table, when
from shipyard.core.errors import InvalidInput

events_app = typer.Typer(no_args_is_help=True)
webhooks_app = typer.Typer(no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Webhook name.")]
ActionOpt = Annotated[
    list[str] | None,
    typer.Option("--action", "-a", help="Only these actions: exact (alias.set) or a prefix (run. or run.*); repeat."),
]
EntityOpt = Annotated[list[str] | None, typer.Option("--entity-type", "-t", help="Only these entity types; repeat.")]


def _show_subscribers(st: State, subs: list[Subscriber]) -> None:
    if st.json:
        emit_json(subs)
        return
    grid = table("name", "kind", "actions", "entity types", "cursor", "url", "created")
    for s in subs:
        grid.add_row(
            s.name,
            s.kind,
            ", ".join(s.actions) or "*",
            ", ".join(s.entity_types) or "*",
            str(s.cursor),
            s.url or "",
            when(s.created_at),
        )
    st.out.print(grid)


def _show_deliveries(st: State, deliveries: list[Delivery]) -> None:
    if st.json:
        emit_json(deliveries, lines=True)
        return
    for d in deliveries:
        outcome = f"ok ({d.status})" if d.ok else f"FAILED after {d.attempts} attempt(s): {d.error}"
        st.err.print(f"{d.subscriber} seq {d.seq}: {outcome}", markup=False, soft_wrap=True)


@events_app.command("subscribers")
def subscribers(ctx: typer.Context) -> None:
    """Subscribers and webhooks with their cursors (the last journal seq each acknowledged)."""
    st = state(ctx)
    _show_subscribers(st, st.client.list_subscribers())


@events_app.command("run")
def run(
    ctx: typer.Context,
    transport: Annotated[str, typer.Option("--transport", help="inprocess (default) or redis.")] = "inprocess",
    interval: Annotated[float, typer.Option("--interval", help="Seconds between delivery rounds.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Deliver what is pending, then exit.")] = False,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", envvar="SHIPYARD_REDIS_URL", help="Redis (redis://127.0.0.1:6379/0).")
    ] = None,
) -> None:
    """Deliver webhooks until stopped (Ctrl-C / SIGTERM): each webhook's events after its cursor."""
    from shipyard.automation.runner import TRANSPORTS, WebhookRunner

    st = state(ctx)
    if transport not in TRANSPORTS:
        raise InvalidInput(f"--transport must be one of {', '.join(TRANSPORTS)}", field="transport")
    if interval <= 0:
        raise InvalidInput("--interval must be positive", field="interval")
    source: Any = st.client
    if transport == "redis":
        if st.client.is_remote:
            raise InvalidInput(
                "the redis transport runs beside the store: run it where the server runs (without --uri)",
                field="transport",
            )
        source = st.client._backend.services.events  # type: ignore[union-attr]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    runner = WebhookRunner(source, transport, interval, redis_url=redis_url)
    if once:
        _show_deliveries(st, runner.run_once())
        return
    signal.signal(signal.SIGTERM, lambda *_: runner.stop())
    if not st.json:
        st.err.print(f"events: delivering webhooks over {transport} every {interval:g}s; Ctrl-C to stop")
    while not runner.stop_event.is_set():
        try:
            _show_deliveries(st, runner.run_once())
        except KeyboardInterrupt:
            break
        except Exception as exc:  # keep running; undelivered events stay after the cursor
            st.err.print(f"delivery round failed: {exc}", markup=False)
        try:
            runner.stop_event.wait(interval)
        except KeyboardInterrupt:
            break


@webhooks_app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    url: Annotated[str, typer.Argument(help="Receiver URL (http or https).")],
    action: ActionOpt = None,
    entity_type: EntityOpt = None,
    secret: Annotated[
        str | None, typer.Option("--secret", envvar="SHIPYARD_WEBHOOK_SECRET", help="Signing secret (default: new).")
    ] = None,
    attempts: Annotated[int, typer.Option("--attempts", help="Attempts before the dead-letter list.")] = 5,
    after: Annotated[
        int | None, typer.Option("--after", help="Start after this journal seq (default: new events only).")
    ] = None,
) -> None:
    """Send matching events to URL as JSON signed with HMAC-SHA256 (the secret is printed once)."""
    st = state(ctx)
    hook = st.client.create_webhook(
        name, url, secret=secret, actions=action, entity_types=entity_type, after=after, max_attempts=attempts
    )
    if st.json:
        emit_json(hook)
        return
    done(st, "added", "webhook", name, url)
    st.out.print(f"secret: {hook.secret}  (shown once; receivers verify X-Shipyard-Signature with it)", markup=False)


@webhooks_app.command("list")
def list_(ctx: typer.Context) -> None:
    st = state(ctx)
    _show_subscribers(st, st.client.list_webhooks())


@webhooks_app.command("remove")
def remove(ctx: typer.Context, name: NameArg) -> None:
    """Remove a webhook with its cursor and dead letters."""
    st = state(ctx)
    st.client.delete_webhook(name)
    if st.json:
        emit_json({"deleted": name})
        return
    done(st, "removed", "webhook", name)


@webhooks_app.command("dead-letters")
def dead_letters(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this webhook's.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n")] = 100,
) -> None:
    """Events a webhook failed to deliver after its last attempt."""
    st = state(ctx)
    letters = st.client.list_dead_letters(subscriber=name, limit=limit)
    if st.json:
        emit_json(letters)
        return
    grid = table("id", "webhook", "seq", "action", "attempts", "error", "failed")
    for d in letters:
        grid.add_row(
            str(d.id),
            d.subscriber,
            str(d.seq),
            str(d.event.get("action")),
            str(d.attempts),
            d.error,
            when(d.created_at),
        )
    st.out.print(grid)


@webhooks_app.command("replay")
def replay(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="Only this webhook's dead letters.")] = None,
    ids: Annotated[list[int] | None, typer.Option("--id", help="Only these dead letters; repeat.")] = None,
) -> None:
    """Re-send dead letters; each one delivered is removed from the list."""
    st = state(ctx)
    results = st.client.replay_dead_letters(subscriber=name, ids=ids)
    if st.json:
        emit_json(results)
        return
    _show_deliveries(st, results)
    delivered = sum(r.ok for r in results)
    st.out.print(f"replayed {delivered} of {len(results)} dead letter(s)")
    if delivered < len(results):
        raise typer.Exit(1)
