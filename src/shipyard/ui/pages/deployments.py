"""Dashboard pages of endpoints and rollouts: what each endpoint serves, its traffic split, and the
active deployment's evidence (canary steps, the judge's verdicts, shadow and A/B figures), its
history, and the operator's actions (promote, roll back, abort) for callers who may deploy.

Everything shown is what ``DeploymentService`` stores or computes (``deployment_status``,
``deployment_history``); the action buttons call the deploy API's own routes, and whether a button is
shown is decided from the same Operation (permission and scope) the server authorizes with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.api.operations import BY_NAME
from shipyard.core.errors import NotFound
from shipyard.core.time import now_ms
from shipyard.deploy.entities import Deployment, DeploymentStatus, Endpoint, JudgementRecord, Replica
from shipyard.deploy.options import DeployOptions
from shipyard.deploy.stats import CheckResult
from shipyard.services import Services
from shipyard.ui.charts import LAYOUT, line_figure
from shipyard.ui.web import Viewer, render, services_of

router = APIRouter()

MAX_ENDPOINTS = 200  # the list page shows at most this many endpoints
HISTORY = 25  # deployments listed on an endpoint's page
JUDGEMENTS = 30  # newest verdicts shown in full (the deployment keeps up to 500, the journal all)
REFRESH_SECONDS = 5
CANDIDATE_COLOR, BASELINE_COLOR = "#f58518", "#4c78a8"


@dataclass(frozen=True)
class Action:
    """One operator verb of the deploy API, as a button."""

    operation: str
    label: str
    css: str
    confirm: str
    done: str


ACTIONS = (
    Action("promote_deployment", "Promote", "btn", "Promote the candidate to all traffic now?", "Promoted."),
    Action("rollback_deployment", "Roll back", "btn danger", "Send all traffic back to the baseline?", "Rolled back."),
    Action("abort_deployment", "Abort", "btn secondary", "Stop this rollout without a verdict?", "Aborted."),
)


# ----------------------------------------------------------------------------------------------
# pages


@router.get("/deployments")
def deployments_page(request: Request) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    endpoints = services.deploy.list_endpoints()
    shown = endpoints[:MAX_ENDPOINTS]
    rows = [_endpoint_row(services, ep) for ep in shown]
    return render(request, "deployments_list.html", rows=rows, total=len(endpoints), shown=len(shown))


@router.get("/deployments/{endpoint}")
def endpoint_page(request: Request, endpoint: str, deployment: str | None = None) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    status = services.deploy.deployment_status(endpoint)  # NotFound for an unknown endpoint
    history = services.deploy.deployment_history(endpoint, limit=HISTORY)
    selected = _selected(services, status, deployment)
    active = selected is not None and status.endpoint.deployment_id == selected.id
    latest = selected is not None and status.deployment is not None and selected.id == status.deployment.id
    context: dict[str, Any] = {
        "endpoint": status.endpoint,
        "status": status,
        "selected": selected,
        "active": active,
        "latest": latest,
        "history": history,
        "split": traffic_split(status.endpoint, selected if active else None, status.replicas),
        "refresh": REFRESH_SECONDS if active else None,
        "actions": _actions(Viewer(services), status.endpoint, selected if active else None, history),
    }
    context["split_figure"] = _split_figure(context["split"])
    if selected is not None:
        context.update(_deployment_context(selected, status if latest else None))
    return render(request, "deployments_endpoint.html", **context)


# ----------------------------------------------------------------------------------------------
# the list


def _endpoint_row(services: Services, endpoint: Endpoint) -> dict[str, Any]:
    active = services.deploy.get_deployment(endpoint.deployment_id) if endpoint.deployment_id else None
    return {"endpoint": endpoint, "active": active, "split": traffic_split(endpoint, active, [])}


def traffic_split(endpoint: Endpoint, active: Deployment | None, replicas: list[Replica]) -> list[dict[str, Any]]:
    """Who answers live requests now: ``[{"label", "role", "share", "note"}]`` (shares sum to 1).

    A shadow candidate answers nobody (it gets copies); a rolling update splits by replicas replaced.
    """
    if active is None:
        return [{"label": endpoint.stable.label, "role": "stable", "share": 1.0, "note": ""}]
    base, cand = active.baseline.label, active.candidate.label
    if active.status == "loading":
        return [
            {"label": base, "role": "baseline", "share": 1.0, "note": ""},
            {"label": cand, "role": "candidate", "share": 0.0, "note": "loading"},
        ]
    if active.strategy == "shadow":
        sample = float(active.config.get("sample", 1.0))
        return [
            {"label": base, "role": "baseline", "share": 1.0, "note": ""},
            {"label": cand, "role": "shadow", "share": 0.0, "note": f"gets a copy of {sample:.0%} of requests"},
        ]
    if active.strategy == "rolling":
        live = [r for r in replicas if r.live]
        done = len(active.replicas.get("done", []))
        share = min(1.0, done / len(live)) if live else 0.0
        note = f"{done} of {len(live)} replicas replaced"
        return [
            {"label": base, "role": "baseline", "share": 1.0 - share, "note": ""},
            {"label": cand, "role": "candidate", "share": share, "note": note},
        ]
    weight = min(1.0, max(0.0, float(active.weight)))
    note = "the old slot stays warm" if active.strategy == "bluegreen" else ""
    return [
        {"label": base, "role": "baseline", "share": 1.0 - weight, "note": note},
        {"label": cand, "role": "candidate", "share": weight, "note": ""},
    ]


# ----------------------------------------------------------------------------------------------
# one endpoint


def _selected(services: Services, status: DeploymentStatus, deployment_id: str | None) -> Deployment | None:
    """The deployment the page details: the one asked for (of this endpoint), else the latest."""
    if not deployment_id:
        return status.deployment
    chosen = services.deploy.get_deployment(deployment_id)
    if chosen.endpoint != status.endpoint.name:
        raise NotFound(f"deployment {deployment_id!r} is not one of endpoint {status.endpoint.name!r}",
                       field="deployment")
    return chosen


def _actions(
    viewer: Viewer, endpoint: Endpoint, active: Deployment | None, history: list[Deployment]
) -> list[dict[str, Any]]:
    """The buttons this caller may use now: the deploy API's verbs that apply to the endpoint's state and
    that the caller's permission allows (read from the Operation the server authorizes with)."""
    buttons = []
    for action in ACTIONS:
        if not _applies(action.operation, endpoint, active, history):
            continue
        op = BY_NAME[("deploy", action.operation)]
        model = None
        if op.scope is not None and op.scope[0] == "model":
            model = (active.candidate if active else endpoint.stable).model_name
        if not viewer.can(op.required_permission, model=model):
            continue
        buttons.append({
            "id": "deploy-" + action.operation.split("_")[0],
            "label": action.label if active or action.operation != "rollback_deployment"
            else f"Roll back to {history[0].baseline.label}",
            "css": action.css,
            "path": "/api/v1" + op.path.format(endpoint=endpoint.name),
            "method": op.method,
            "confirm": action.confirm,
            "done": action.done,
        })
    return buttons


def _applies(operation: str, endpoint: Endpoint, active: Deployment | None, history: list[Deployment]) -> bool:
    if operation == "promote_deployment":
        return active is not None and active.status == "running"  # a loading candidate cannot be promoted yet
    if operation == "abort_deployment":
        return active is not None
    # rollback: of the active rollout, or (none active) of the promotion that put the current version in place
    if active is not None:
        return True
    last = history[0] if history else None
    return (
        last is not None
        and last.status == "promoted"
        and last.baseline.digest != last.candidate.digest
        and last.candidate.digest == endpoint.stable.digest
    )


def _split_figure(split: list[dict[str, Any]]) -> dict[str, Any]:
    colors = {"stable": BASELINE_COLOR, "baseline": BASELINE_COLOR, "candidate": CANDIDATE_COLOR, "shadow": "#bab0ac"}
    return {
        "data": [{
            "type": "pie",
            "hole": 0.55,
            "sort": False,
            "labels": [f"{s['role']}: {s['label']}" for s in split],
            "values": [round(100 * s["share"], 2) for s in split],
            "marker": {"colors": [colors[s["role"]] for s in split]},
            "textinfo": "percent",
            "hovertemplate": "%{label}<br>%{value}% of requests<extra></extra>",
        }],
        "layout": {**LAYOUT, "height": 240, "title": {"text": "Live traffic"}, "showlegend": True},
    }


def _deployment_context(d: Deployment, status: DeploymentStatus | None) -> dict[str, Any]:
    """What the page shows of one deployment; ``status`` (live figures) only for the latest one."""
    judgements = list(reversed(d.judgements[-JUDGEMENTS:]))
    context: dict[str, Any] = {
        "steps": canary_steps(d) if d.strategy == "canary" else [],
        "judgements": [_judgement_view(j) for j in judgements],
        "judgement_count": len(d.judgements),
        "weights_figure": _weights_figure(d) if d.strategy in ("canary", "ab") and d.judgements else None,
        "variants": [],
        "current": None,
        "shadow": None,
        "ab": _ab_view(d) if d.strategy == "ab" else None,
    }
    if status is not None:
        context["variants"] = _variant_rows(status)
        if status.judgement is not None and d.status in ("loading", "running"):
            context["current"] = {
                "verdict": status.judgement.verdict,
                "summary": status.judgement.summary,
                "checks": [check_row(c) for c in status.judgement.checks],
            }
        if status.shadow is not None:
            shadow = status.shadow
            context["shadow"] = {
                "compared": shadow.compared,
                "agreement_rate": shadow.agreement_rate,
                "mean_abs_diff": shadow.mean_abs_diff,
                "verdict": shadow.judgement.verdict if shadow.judgement else None,
                "summary": shadow.judgement.summary if shadow.judgement else "",
                "checks": [check_row(c) for c in shadow.judgement.checks] if shadow.judgement else [],
            }
    return context


def canary_steps(d: Deployment) -> list[dict[str, Any]]:
    """The canary's judged steps then the promotion, each done, current or to come."""
    # Parsed as the controller parses them: a stored default of [5, 25, 50, 100] means three judged steps.
    steps = DeployOptions.model_validate(d.config).steps if d.config else []
    rows = []
    for i, pct in enumerate([*steps, 100.0]):
        final = i == len(steps)
        if d.status == "promoted":
            state = "done"
        elif d.status in ("loading", "running"):
            state = "done" if i < d.step else "current" if i == d.step and d.status == "running" else "to come"
        else:
            state = "done" if i < d.step else "stopped" if i == d.step else "skipped"
        verdicts = [j.verdict for j in d.judgements if j.step == i]
        rows.append({
            "number": i + 1,
            "percent": pct,
            "label": "promotion" if final else f"step {i + 1}",
            "state": state,
            "looks": len(verdicts),
            "last_verdict": verdicts[-1] if verdicts else "",
        })
    return rows


def _weights_figure(d: Deployment) -> dict[str, Any]:
    """The candidate's share of traffic at each look of the judge (a step function of time)."""
    points = [(j.at, 100 * j.weight) for j in d.judgements]
    # the line runs on to the end (or to now, at the current weight, while the rollout is in progress)
    points.append((d.finished_at if d.finished_at is not None else now_ms(), 100.0 * d.weight))
    x = [_iso(at) for at, _ in points]
    y = [w for _, w in points]
    figure = line_figure([{"name": "candidate %", "x": x, "y": y}], title="Candidate's share of traffic",
                         y_title="% of requests", height=240)
    figure["data"][0]["line"] = {"shape": "hv", "color": CANDIDATE_COLOR}
    figure["layout"]["yaxis"]["range"] = [0, 105]
    return figure


def _iso(ms: int) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _judgement_view(j: JudgementRecord) -> dict[str, Any]:
    return {
        "at": j.at,
        "step": j.step + 1,
        "weight": j.weight,
        "verdict": j.verdict,
        "action": j.action,
        "summary": j.summary,
        "alpha": j.alpha,
        "checks": [check_row(c) for c in j.checks],
        "sequential": j.sequential.model_dump() if j.sequential else None,
    }


def check_row(c: CheckResult) -> dict[str, Any]:
    """One check's evidence as the table shows it: baseline and candidate figures side by side (every
    ``baseline_X`` / ``candidate_X`` pair of its details), the estimate, interval, p-value and the rest."""
    details = dict(c.details)
    pairs = []
    for key in list(details):
        if key.startswith("baseline_") and "candidate_" + key[9:] in details:
            name = key[9:]
            pairs.append((name, details.pop(key), details.pop("candidate_" + name)))
    level = details.pop("ci_level", None)
    return {
        "name": c.name,
        "verdict": c.verdict,
        "message": c.message,
        "n_baseline": c.n_baseline,
        "n_candidate": c.n_candidate,
        "baseline": [(name, _fmt(b)) for name, b, _ in pairs],
        "candidate": [(name, _fmt(cv)) for name, _, cv in pairs],
        "estimate": _fmt(c.estimate),
        "ci": f"[{_fmt(c.ci_low)}, {_fmt(c.ci_high)}]" if c.ci_low is not None and c.ci_high is not None else "",
        "ci_level": f"{level:.1%}" if isinstance(level, int | float) else "",
        "p_value": "" if c.p_value is None else f"{c.p_value:.3g}",
        "threshold": _fmt(c.threshold),
        "other": [(k, _fmt(v)) for k, v in details.items()],
    }


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value[:12]) + (", …" if len(value) > 12 else "") + "]"
    return str(value)


def _variant_rows(status: DeploymentStatus) -> list[dict[str, Any]]:
    """Live figures per variant, with latency deltas against the baseline."""
    base = next((v for v in status.variants if v.variant == "baseline"), None)
    rows = []
    for v in status.variants:
        row = v.model_dump()
        for q in ("latency_p50_ms", "latency_p99_ms"):
            mine, theirs = getattr(v, q), getattr(base, q) if base else None
            row[q + "_delta"] = mine - theirs if v is not base and mine is not None and theirs is not None else None
        rows.append(row)
    return rows


def _ab_view(d: Deployment) -> dict[str, Any] | None:
    """The A/B test's latest sequential result (and its options)."""
    latest = next((j for j in reversed(d.judgements) if j.sequential is not None), None)
    return {
        "metric": d.config.get("metric", "reward"),
        "split": d.config.get("split"),
        "alpha": d.config.get("alpha"),
        "higher_is_better": d.config.get("higher_is_better", True),
        "result": latest.sequential.model_dump() if latest and latest.sequential else None,
    }
