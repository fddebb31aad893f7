"""``shipyard automations …``: rules as versioned YAML, their firings, the closed-loop recipe, the engine.

See docs/automations.md.
"""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.automation.rule_entities import AutomationFiring, AutomationRule
from shipyard.cli.output import State, done, emit_json, state, table, when
from shipyard.core.errors import InvalidInput

app = typer.Typer(no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="Rule name.")]


def _show_rules(st: State, rules: list[AutomationRule]) -> None:
    if st.json:
        emit_json(rules)
        return
    grid = table("name", "version", "enabled", "on", "where", "do", "updated")
    for r in rules:
        grid.add_row(
            r.name,
            str(r.version),
            "yes" if r.enabled else "no",
            ", ".join(r.on),
            r.where_text or "-",
            ", ".join(a["action"] for a in r.actions),
            when(r.updated_at),
        )
    st.out.print(grid)


def _show_firings(st: State, firings: list[AutomationFiring]) -> None:
    if st.json:
        emit_json(firings)
        return
    grid = table("id", "rule", "v", "seq", "event", "action", "status", "result / error", "started", "ms")
    for f in firings:
        detail = f.error or json.dumps(f.result or {}, default=str)
        grid.add_row(
            str(f.id),
            f.rule,
            str(f.rule_version),
            str(f.seq),
            f.event_action,
            f"{f.action_index}:{f.action}",
            f.status,
            detail[:120],
            when(f.started_at),
            "" if f.duration_ms is None else str(f.duration_ms),
        )
    st.out.print(grid)


@app.command("save")
def save(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The rule's YAML file ('-' for stdin).", allow_dash=True)],
    name: Annotated[str | None, typer.Option("--name", help="The rule's name, when the YAML has none.")] = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Save it disabled.")] = False,
) -> None:
    """Save a rule: a new rule, or version N+1 when the YAML changed (old versions are kept)."""
    import sys

    st = state(ctx)
    text = sys.stdin.read() if str(file) == "-" else file.read_text(encoding="utf-8")
    rule = st.client.save_automation(text, name=name, enabled=False if disabled else None)
    if st.json:
        emit_json(rule)
        return
    done(st, "saved", "automation", rule.name, f"version {rule.version}, {'enabled' if rule.enabled else 'disabled'}")


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Rules at their current versions."""
    st = state(ctx)
    _show_rules(st, st.client.list_automations())


@app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[int | None, typer.Option("--version", "-v", help="A stored version (default: current).")] = None,
    versions: Annotated[bool, typer.Option("--versions", help="List every version instead.")] = False,
) -> None:
    """A rule's YAML (current or given version), or its versions."""
    st = state(ctx)
    if versions:
        _show_rules(st, st.client.list_automation_versions(name))
        return
    rule = st.client.get_automation(name, version)
    if st.json:
        emit_json(rule)
        return
    state_text = "enabled" if rule.enabled else "disabled"
    st.out.print(f"# {rule.name} version {rule.version} of {rule.latest}, {state_text}", markup=False)
    st.out.print(rule.text.rstrip(), markup=False, highlight=False)


@app.command("enable")
def enable(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    rule = st.client.enable_automation(name)
    emit_json(rule) if st.json else done(st, "enabled", "automation", rule.name)


@app.command("disable")
def disable(ctx: typer.Context, name: NameArg) -> None:
    st = state(ctx)
    rule = st.client.disable_automation(name)
    emit_json(rule) if st.json else done(st, "disabled", "automation", rule.name)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg) -> None:
    """Delete a rule and its versions (its firings stay)."""
    st = state(ctx)
    st.client.delete_automation(name)
    emit_json({"deleted": name}) if st.json else done(st, "deleted", "automation", name)


@app.command("firings")
def firings(
    ctx: typer.Context,
    rule: Annotated[str | None, typer.Option("--rule", "-r", help="Only this rule's firings.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="running, succeeded or failed.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="At most this many, newest first.")] = 50,
) -> None:
    """Firings, newest first: each action of each rule fired by an event, with its outcome."""
    st = state(ctx)
    _show_firings(st, st.client.automation_firings(rule, status=status, limit=limit))


@app.command("recipe")
def recipe(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The recipe: closed-loop.")],
    model: Annotated[str, typer.Option("--model", help="The registered model the loop retrains.")],
    endpoint: Annotated[str, typer.Option("--endpoint", help="The endpoint new versions roll out to.")],
    pipeline: Annotated[str, typer.Option("--pipeline", help="The retraining pipeline (package.module:function).")],
    strategy: Annotated[str, typer.Option("--strategy", help="canary or shadow (judged automatically).")] = "canary",
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Evaluate each new version against the champion on it.")
    ] = None,
    label_column: Annotated[str, typer.Option("--label-column", help="The dataset's label column.")] = "target",
    monitor: Annotated[str | None, typer.Option("--monitor", help="Only this monitor's drift alerts.")] = None,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="A pipeline parameter KEY=VALUE (JSON values); repeat.")
    ] = None,
    window_param: Annotated[
        str, typer.Option("--window-param", help="The pipeline parameter given the alert window's rows ('' for none).")
    ] = "dataset",
    tolerance: Annotated[float, typer.Option("--tolerance", help="How much worse than the champion passes.")] = 0.0,
    options: Annotated[
        str | None, typer.Option("--options", help="The strategy's options as JSON, e.g. '{\"steps\": [10, 50]}'.")
    ] = None,
    notify_url: Annotated[str | None, typer.Option("--notify-url", help="POST the loop's reports here.")] = None,
) -> None:
    """Write a built-in rule set. closed-loop: drift alert → retrain → evaluate → policy gate → deploy → notify."""
    st = state(ctx)
    params: dict[str, Any] = {}
    for item in param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param takes KEY=VALUE, not {item!r}", field="param")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    try:
        deploy_options = json.loads(options) if options else None
    except ValueError as exc:
        raise InvalidInput(f"--options is not JSON: {exc}", field="options") from None
    rules = st.client.install_recipe(
        model,
        endpoint,
        pipeline,
        recipe=name,
        strategy=strategy,
        dataset=dataset,
        label_column=label_column,
        monitor=monitor,
        params=params,
        window_param=window_param or None,
        tolerance=tolerance,
        deploy_options=deploy_options,
        notify_url=notify_url,
    )
    if st.json:
        emit_json(rules)
        return
    for r in rules:
        done(st, "saved", "automation", r.name, f"version {r.version}")


@app.command("run")
def run(
    ctx: typer.Context,
    transport: Annotated[str, typer.Option("--transport", help="inprocess (default) or redis.")] = "inprocess",
    interval: Annotated[float, typer.Option("--interval", help="Seconds between rounds.")] = 0.5,
    once: Annotated[bool, typer.Option("--once", help="Handle what is pending, then exit.")] = False,
    redis_url: Annotated[
        str | None, typer.Option("--redis-url", envvar="SHIPYARD_REDIS_URL", help="Redis (redis://127.0.0.1:6379/0).")
    ] = None,
) -> None:
    """Run the automation engine (the `automations` subscriber) until stopped, or one round with --once."""
    from shipyard.automation.engine import TRANSPORTS, AutomationRunner

    st = state(ctx)
    if transport not in TRANSPORTS:
        raise InvalidInput(f"--transport must be one of {', '.join(TRANSPORTS)}", field="transport")
    if interval <= 0:
        raise InvalidInput("--interval must be positive", field="interval")
    if st.client.is_remote:
        if transport == "redis" or not once:
            raise InvalidInput(
                "the engine runs beside the store: run it where the server runs (without --uri); "
                "against a server, --once runs one in-process round there",
                field="transport",
            )
        result = st.client.run_automations()
        _finish_round(st, result["events"], [AutomationFiring(**f) for f in result["firings"]])
        return
    services = st.client._backend.services  # type: ignore[union-attr]
    runner = AutomationRunner(services, transport, interval, redis_url=redis_url)
    if once:
        since = services.automations.last_firing_id()
        handled = runner.run_once()
        _finish_round(st, handled, services.automations.list_automation_firings(after_id=since, limit=1000))
        runner.close()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    if not st.json:
        st.err.print(f"automations: running over {transport} every {interval:g}s; Ctrl-C to stop")
    try:
        while not stop["now"]:
            since = services.automations.last_firing_id()
            try:
                runner.run_once()
            except Exception as exc:  # unacknowledged events come again; claimed actions do not repeat
                st.err.print(f"automation round failed: {exc}", markup=False)
            fired = services.automations.list_automation_firings(after_id=since, limit=1000)
            if fired:
                _show_firings(st, fired[::-1])
            time.sleep(interval)
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()


def _finish_round(st: State, handled: int, fired: list[AutomationFiring]) -> None:
    if st.json:
        emit_json({"events": handled, "firings": fired})
        return
    st.err.print(f"{handled} event(s) handled, {len(fired)} action(s) fired", markup=False)
    if fired:
        _show_firings(st, fired[::-1])
