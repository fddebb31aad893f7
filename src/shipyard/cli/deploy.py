"""``shipyard deploy …`` (rollouts to endpoints) and ``shipyard feedback`` (outcomes by prediction id)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.output import State, emit_json, key_values, number, state, table, when
from shipyard.core.errors import InvalidInput
from shipyard.deploy.entities import Deployment, DeploymentStatus, JudgementRecord

app = typer.Typer(no_args_is_help=True)
EndpointArg = Annotated[str, typer.Argument(help="Endpoint name.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", "-r", help="Why (recorded in the journal).")]


def _percent_list(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(f"--steps takes percentages like 5,25,50,100, not {text!r}", field="steps") from None


@app.command("create")
def create(
    ctx: typer.Context,
    endpoint: EndpointArg,
    model: Annotated[str, typer.Option("--model", "-m", help="Model URI to roll out, e.g. models:/churn/3.")],
    strategy: Annotated[
        str, typer.Option("--strategy", "-s", help="direct, bluegreen, canary, shadow, ab or rolling.")
    ] = "canary",
    steps: Annotated[str | None, typer.Option("--steps", help="Canary traffic steps in %, e.g. 5,25,50,100.")] = None,
    step_seconds: Annotated[
        float | None, typer.Option("--step-seconds", help="Minimum step duration and judging interval.")
    ] = None,
    min_samples: Annotated[
        int | None, typer.Option("--min-samples", help="Requests per variant before the judge decides.")
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", help="Sticky routing key: a header name, or field:NAME of the body.")
    ] = None,
    split: Annotated[float | None, typer.Option("--split", help="A/B: candidate's share of keys, in %.")] = None,
    metric: Annotated[str | None, typer.Option("--metric", help="A/B: the feedback metric to compare.")] = None,
    max_samples: Annotated[int | None, typer.Option("--max-samples", help="A/B: stop with no difference.")] = None,
    sample: Annotated[float | None, typer.Option("--sample", help="Shadow: share of requests copied (0-1].")] = None,
    hold_seconds: Annotated[
        float | None, typer.Option("--hold-seconds", help="Blue-green: keep the old slot warm this long.")
    ] = None,
    max_unavailable: Annotated[int | None, typer.Option("--max-unavailable", help="Rolling: replicas at once.")] = None,
    max_surge: Annotated[int | None, typer.Option("--max-surge", help="Rolling: extra replicas at once.")] = None,
    smoke_file: Annotated[
        Path | None, typer.Option("--smoke-file", help="JSON/CSV/Parquet inputs every replica must predict.")
    ] = None,
    manual: Annotated[bool, typer.Option("--manual", help="Judge, but wait for deploy promote/rollback.")] = False,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="Any other option as k=JSON, e.g. judge={...}.")
    ] = None,
    override: Annotated[
        str | None, typer.Option("--override", help="Admin only: the justification to deploy despite policy.")
    ] = None,
) -> None:
    """Roll a model version out to an endpoint (a new endpoint just starts serving it)."""
    st = state(ctx)
    options: dict[str, Any] = {}
    for pair in option or []:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise InvalidInput(f"--option takes k=JSON, not {pair!r}", field="option")
        try:
            options[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            options[name.strip()] = raw
    given = {
        "steps": _percent_list(steps),
        "step_seconds": step_seconds,
        "key": key,
        "split": split,
        "metric": metric,
        "max_samples": max_samples,
        "sample": sample,
        "hold_seconds": hold_seconds,
        "max_unavailable": max_unavailable,
        "max_surge": max_surge,
    }
    options.update({k: v for k, v in given.items() if v is not None})
    if min_samples is not None:
        options.setdefault("judge", {})["min_samples"] = min_samples
    if manual:
        options["auto"] = False
    if smoke_file is not None:
        if not smoke_file.is_file():
            raise InvalidInput(f"smoke file {str(smoke_file)!r} does not exist", field="smoke_file")
        options["smoke_file"] = st.client.artifacts.put_file(str(smoke_file))[0]
    deployment = st.client.deploy(endpoint, model, strategy, override_justification=override, **options)
    _show_deployment(st, deployment)


@app.command("status")
def status(
    ctx: typer.Context,
    endpoint: EndpointArg,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Refresh until the rollout finishes.")] = False,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between refreshes.")] = 2.0,
) -> None:
    """The endpoint, its current rollout, live figures per variant and the judge's evidence."""
    st = state(ctx)
    while True:
        report = st.client.deployment_status(endpoint)
        _show_status(st, report)
        if not watch or report.deployment is None or not report.deployment.active:
            return
        time.sleep(interval)


@app.command("promote")
def promote(ctx: typer.Context, endpoint: EndpointArg, reason: ReasonOpt = None) -> None:
    """Finish the rollout now: the candidate takes all traffic."""
    st = state(ctx)
    _show_deployment(st, st.client.promote_deployment(endpoint, reason))


@app.command("rollback")
def rollback(ctx: typer.Context, endpoint: EndpointArg, reason: ReasonOpt = None) -> None:
    """Send all traffic back to the baseline (or, with nothing in progress, undo the last promotion)."""
    st = state(ctx)
    _show_deployment(st, st.client.rollback_deployment(endpoint, reason))


@app.command("abort")
def abort(ctx: typer.Context, endpoint: EndpointArg, reason: ReasonOpt = None) -> None:
    """Stop the rollout without a verdict; the baseline keeps all traffic."""
    st = state(ctx)
    _show_deployment(st, st.client.abort_deployment(endpoint, reason))


@app.command("history")
def history(
    ctx: typer.Context,
    endpoint: EndpointArg,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=1000, help="How many rollouts.")] = 20,
) -> None:
    """The endpoint's rollouts, newest first, with their outcome."""
    st = state(ctx)
    deployments = st.client.deployment_history(endpoint, limit)
    if st.json:
        emit_json(deployments)
        return
    grid = table("deployment", "strategy", "from", "to", "status", "started", "finished", "outcome")
    for d in deployments:
        grid.add_row(
            d.id,
            d.strategy,
            d.baseline.label,
            d.candidate.label,
            d.status,
            when(d.created_at),
            when(d.finished_at),
            d.outcome or d.phase,
        )
    st.out.print(grid)


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Endpoints and what they serve."""
    st = state(ctx)
    endpoints = st.client.list_endpoints()
    if st.json:
        emit_json(endpoints)
        return
    grid = table("endpoint", "serves", "rollout in progress", "revision", "updated")
    for e in endpoints:
        grid.add_row(e.name, e.stable.label, e.deployment_id or "", str(e.revision), when(e.updated_at))
    st.out.print(grid)


def feedback(
    ctx: typer.Context,
    pairs: Annotated[
        list[str] | None, typer.Argument(help="PREDICTION_ID=VALUE pairs (or use --file).", metavar="[ID=VALUE]...")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", "-m", help="Metric the values are of.")] = "reward",
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="JSON Lines of {prediction_id, value[, metric]} (or label).")
    ] = None,
    label: Annotated[
        bool,
        typer.Option("--label", "-l", help="The values are ground-truth labels (classes or numbers) for monitoring."),
    ] = False,
) -> None:
    """Report outcomes by prediction id: business metrics (the judge and A/B tests use them) or, with
    --label, ground truth for monitoring (accepted days later; sending again replaces)."""
    st = state(ctx)
    items: list[dict[str, Any]] = []
    for pair in pairs or []:
        pid, sep, raw = pair.partition("=")
        if not sep or not pid:
            shape = "PREDICTION_ID=LABEL" if label else "PREDICTION_ID=NUMBER"
            raise InvalidInput(f"feedback takes {shape}, not {pair!r}", field="pairs")
        if label:
            items.append({"prediction_id": pid, "label": _label_value(raw)})
            continue
        try:
            items.append({"prediction_id": pid, "value": float(raw)})
        except ValueError:
            raise InvalidInput(f"feedback takes PREDICTION_ID=NUMBER, not {pair!r}", field="pairs") from None
    if file is not None:
        if not file.is_file():
            raise InvalidInput(f"file {str(file)!r} does not exist", field="file")
        for number_, line in enumerate(file.read_text().splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise InvalidInput(f"{file}:{number_}: not JSON ({exc.msg})", field="file") from None
    if label:
        receipt = st.client.record_labels(items)
        if st.json:
            emit_json(receipt)
            return
        st.out.print(f"recorded {receipt.accepted} label(s) ({receipt.replaced} replaced an earlier one)")
        if receipt.unknown_count:
            st.err.print(
                f"{receipt.unknown_count} id(s) match no logged prediction (stored, and matched if it shows up): "
                + ", ".join(receipt.unknown[:5])
                + (" ..." if receipt.unknown_count > 5 else "")
            )
        return
    result = st.client.record_feedback(items, metric)
    if st.json:
        emit_json(result)
        return
    st.out.print(f"recorded {result.accepted} feedback value(s) for metric {metric!r}")
    if result.unknown:
        st.err.print(
            f"{len(result.unknown)} id(s) were not routed by a rollout (stored anyway): "
            + ", ".join(result.unknown[:5])
            + (" ..." if len(result.unknown) > 5 else "")
        )


def _label_value(raw: str) -> Any:
    """A label from the command line: a number when it reads as one (``1``, ``0.5``), else the text."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return raw
    return value if isinstance(value, int | float | bool) else raw


# ----------------------------------------------------------------------------------------------
# rendering


def _show_deployment(st: State, d: Deployment) -> None:
    if st.json:
        emit_json(d)
        return
    key_values(
        st,
        [
            ("deployment", d.id),
            ("endpoint", d.endpoint),
            ("strategy", d.strategy),
            ("baseline", d.baseline.label),
            ("candidate", d.candidate.label),
            ("status", d.status),
            ("phase", d.phase),
            ("candidate traffic", f"{d.weight:.0%}" if d.strategy in ("canary", "ab") else ""),
            ("outcome", d.outcome or ""),
        ],
    )
    if d.judgements:
        _show_judgements(st, d.judgements[-5:])


def _show_judgements(st: State, judgements: list[JudgementRecord]) -> None:
    grid = table("when", "step", "verdict", "action", "evidence")
    for j in judgements:
        grid.add_row(when(j.at), str(j.step + 1), j.verdict, j.action, j.summary)
    st.out.print(grid)
    last = judgements[-1]
    if last.checks:
        checks = table("check", "verdict", "estimate", "CI", "p-value", "threshold", "n (base/cand)", "detail")
        for c in last.checks:
            ci = f"[{number(c.ci_low)}, {number(c.ci_high)}]" if c.ci_low is not None else ""
            checks.add_row(
                c.name,
                c.verdict,
                number(c.estimate),
                ci,
                number(c.p_value),
                number(c.threshold),
                f"{c.n_baseline}/{c.n_candidate}",
                c.message,
            )
        st.out.print(checks)
    if last.sequential is not None:
        s = last.sequential
        st.out.print(
            f"sequential test (mSPRT): {s.decision}, always-valid p={number(s.p_value)}, "
            f"difference {number(s.estimate)} [{number(s.ci_low)}, {number(s.ci_high)}], "
            f"n={s.n_baseline}/{s.n_candidate}"
        )


def _show_status(st: State, report: DeploymentStatus) -> None:
    if st.json:
        emit_json(report)
        return
    e = report.endpoint
    st.out.print(f"endpoint {e.name}: serves {e.stable.label} (revision {e.revision})")
    if report.deployment is not None:
        _show_deployment(st, report.deployment)
    if report.variants:
        grid = table("variant", "model", "requests", "errors", "error rate", "p50 ms", "p99 ms", "feedback")
        for v in report.variants:
            fb = ", ".join(f"{k}: {m['mean']:.4g} (n={int(m['n'])})" for k, m in v.feedback.items())
            grid.add_row(
                v.variant,
                v.model,
                str(v.requests),
                str(v.errors),
                number(v.error_rate),
                number(v.latency_p50_ms),
                number(v.latency_p99_ms),
                fb,
            )
        st.out.print(grid)
    if report.shadow is not None:
        s = report.shadow
        st.out.print(
            f"shadow: {s.compared} answers compared, agreement {number(s.agreement_rate)}, "
            f"mean |difference| {number(s.mean_abs_diff)}"
        )
        if s.judgement is not None:
            st.out.print(f"judge now: {s.judgement.summary}")
    elif report.judgement is not None and report.deployment is not None and report.deployment.active:
        st.out.print(f"judge now: {report.judgement.summary}")
    if report.replicas:
        grid = table("replica", "pid", "revision", "serving", "versions", "last heartbeat")
        for r in report.replicas:
            grid.add_row(
                r.id,
                str(r.pid),
                str(r.revision),
                ", ".join(d[7:19] for d in r.serving),
                ", ".join(f"{d[7:19]}: {s}" for d, s in r.versions.items()),
                when(r.heartbeat_at) + ("" if r.live else " (gone)"),
            )
        st.out.print(grid)
