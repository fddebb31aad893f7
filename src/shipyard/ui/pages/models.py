"""Dashboard pages: the model registry — models, one model's versions, and everything about one version.

The version page is where governance happens: its lifecycle stage, the review with Approve / Reject
buttons (shown only to a caller with ``review`` on the model; the server still decides, and refuses
the version's author or submitter), the latest policy decision rule by rule, evaluations, signatures,
the model card and the lineage graph (dataset versions → pipeline run → training run → version →
endpoints). Every figure comes from the services; nothing here changes state.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.core.context import current_actor
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.governance.inventory import InventoryItem
from shipyard.governance.lifecycle import STAGES
from shipyard.governance.lifecycle_entities import ReviewStatus
from shipyard.registry.entities import ModelVersion
from shipyard.services import Services
from shipyard.ui.charts import dag_figure
from shipyard.ui.web import render, services_of

router = APIRouter()

MAX_VERSIONS_SHOWN = 500  # a model's page lists its newest versions; older ones are reached by URL
MAX_DECISIONS_SHOWN = 20
# The card is self-contained HTML: shown in a sandboxed frame, and served with a CSP that forbids scripts.
CARD_CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
COLORS = {"dataset": "#54a24b", "pipeline": "#f58518", "run": "#4c78a8", "version": "#b279a2", "endpoint": "#e45756"}


# --------------------------------------------------------------------------------------------------
# /models


@router.get("/models")
def models_list(request: Request, q: str = "", risk: str = "", status: str = "") -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    risk = risk.strip()
    items = services.inventory.model_inventory(name_like=q.strip() or None, risk_tier=risk or None)
    if status:
        items = [i for i in items if i.status == status]
    return render(request, "models_list.html", items=items, q=q, risk=risk, status=status)


# --------------------------------------------------------------------------------------------------
# /models/{name}


@router.get("/models/{name}")
def model_detail(request: Request, name: str) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read", model=name)
    model = services.registry.get_model(name)  # NotFound → 404 page
    item = services.inventory.model_overview(name)
    versions = list(reversed(item.versions))[:MAX_VERSIONS_SHOWN]
    stages = {stage: sum(1 for v in item.versions if v.stage == stage) for stage in STAGES}
    return render(
        request,
        "models_detail.html",
        model=model,
        item=item,
        versions=versions,
        hidden_versions=max(0, len(item.versions) - MAX_VERSIONS_SHOWN),
        stages=stages,
    )


# --------------------------------------------------------------------------------------------------
# /models/{name}/{version}


@router.get("/models/{name}/{version}")
def version_detail(request: Request, name: str, version: str) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read", model=name)
    number = _version_number(version)
    mv = services.registry.get_version(name, number)
    item = services.inventory.model_overview(name)
    review = services.governance.review_status(name, number)
    decisions = services.governance.list_policy_decisions(name, number)
    run = _source_run(services, mv)
    lineage = _lineage(services, mv, item, run)
    return render(
        request,
        "models_version.html",
        mv=mv,
        item=item,
        run=run,
        review=review,
        vote=_vote_state(services, review),
        history=services.governance.list_reviews(name, number),
        decision=decisions[-1] if decisions else None,
        decisions=list(reversed(decisions))[:MAX_DECISIONS_SHOWN],
        evaluations=services.evaluations.list_evaluations(name, number),
        signature=services.audit.verify_version_signature(name, number),
        card_html=services.evaluations.render_model_card(name, number, "html"),
        lineage=lineage,
        lineage_figure=dag_figure(lineage.nodes, lineage.edges) if lineage.nodes else None,
        api=f"/api/v1/models/{name}/versions/{number}",
    )


@router.get("/models/{name}/{version}/card")
def version_card(request: Request, name: str, version: str) -> HTMLResponse:
    """The model card alone, as the card renderer writes it (opened in its own tab)."""
    services = services_of(request)
    services.access.require("read", model=name)
    html = services.evaluations.render_model_card(name, _version_number(version), "html")
    return HTMLResponse(html, headers={"content-security-policy": CARD_CSP, "x-content-type-options": "nosniff"})


def _version_number(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 2**31 - 1:
        raise InvalidInput(f"version must be a positive whole number, not {text!r}", field="version")
    return int(text)


def _source_run(services: Services, mv: ModelVersion) -> Any:
    if not mv.source_run_id:
        return None
    try:
        return services.tracking.get_run(mv.source_run_id)
    except NotFound:  # the run was deleted: the version keeps its id
        return None


# --------------------------------------------------------------------------------------------------
# who may vote, as the page explains it (the server decides again when the button is pressed)


@dataclass
class VoteState:
    can_review: bool  # holds the review permission on the model: the buttons are shown
    open: bool  # the version is in review
    reason: str | None = None  # why this caller may not vote now (buttons disabled), or None


def _vote_state(services: Services, review: ReviewStatus) -> VoteState:
    me = current_actor()
    state = VoteState(
        can_review=services.access.has_permission(me, "review", model=review.model),
        open=review.stage == "in_review",
    )
    if not state.open:
        state.reason = f"the version is {review.stage}; only a version in review takes votes"
    elif me == review.author:
        state.reason = "you registered this version: the author may not review it (separation of duties)"
    elif me == review.submitter:
        state.reason = "you submitted this version for review: the submitter may not review it (separation of duties)"
    elif any(r.reviewer == me and r.decision != "submit" for r in review.reviews):
        state.reason = "you already voted in this review round (one vote per reviewer)"
    elif me not in review.may_approve:
        state.reason = "the approver rule of the applying policies does not include you (role or group)"
    return state


# --------------------------------------------------------------------------------------------------
# lineage: dataset versions → pipeline run → training run → model version → endpoints


@dataclass
class Lineage:
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[tuple[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # the same nodes as a table: kind, label, link, note

    def add(self, node_id: str, kind: str, label: str, link: str | None, note: str = "") -> None:
        self.nodes.append({"id": node_id, "label": label, "color": COLORS[kind], "hover": f"{kind}: {label} {note}"})
        self.rows.append({"id": node_id, "kind": kind, "label": label, "link": link, "note": note})


def _lineage(services: Services, mv: ModelVersion, item: InventoryItem, run: Any) -> Lineage:
    graph = Lineage()
    datasets = []
    for ref in mv.data_refs:
        note = ""
        try:
            found = services.data.resolve_version(ref)
            note = f"{found.row_count if found.row_count is not None else '?'} rows, {found.digest[:19]}…"
        except (NotFound, InvalidInput):
            note = "no longer readable (deleted or erased)"
        node = f"dataset:{ref}"
        graph.add(node, "dataset", ref, "/datasets/" + ref.replace("@", "/", 1), note)
        datasets.append(node)
    upstream = datasets
    pipeline = _pipeline_of(services, mv.source_run_id)
    if pipeline is not None:
        step, prun = pipeline
        node = f"pipeline:{prun.id}"
        graph.add(
            node,
            "pipeline",
            f"pipeline {prun.name}",
            f"/pipelines/{prun.id}",
            f"run {prun.id[:8]}, step {step.name}, {prun.status.value}",
        )
        graph.edges += [(d, node) for d in upstream]
        upstream = [node]
    if mv.source_run_id:
        node = f"run:{mv.source_run_id}"
        label = f"run {run.name}" if run is not None else f"run {mv.source_run_id[:8]}"
        note = f"{mv.source_run_id[:8]}, {run.status.value}" if run is not None else "deleted"
        graph.add(node, "run", label, f"/runs/{mv.source_run_id}", note)
        graph.edges += [(u, node) for u in upstream]
        upstream = [node]
    me = f"version:{mv.version}"
    graph.add(me, "version", f"{mv.model_name}/{mv.version}", None, f"{mv.stage}, {mv.digest[:19]}…")
    graph.edges += [(u, me) for u in upstream]
    for endpoint in _serving(services, mv, item):
        node = f"endpoint:{endpoint['name']}"
        graph.add(
            node, "endpoint", f"endpoint {endpoint['name']}", f"/deployments/{endpoint['name']}", endpoint["role"]
        )
        graph.edges.append((me, node))
    return graph


def _pipeline_of(services: Services, run_id: str | None) -> tuple[Any, Any] | None:
    if not run_id:
        return None
    try:
        step = services.pipelines.get_step_run_by_run_id(run_id)
        return step, services.pipelines.get_pipeline_run(step.pipeline_run_id)
    except NotFound:  # trained outside a pipeline
        return None


def _serving(services: Services, mv: ModelVersion, item: InventoryItem) -> list[dict[str, str]]:
    """Endpoints serving this version: as their stable version, or as the candidate of a live rollout."""
    found = []
    for endpoint in item.endpoints:
        if endpoint["version"] == mv.version:
            found.append({"name": endpoint["name"], "role": "stable version"})
        elif endpoint.get("deployment_id"):
            try:
                deployment = services.deploy.get_deployment(endpoint["deployment_id"])
            except NotFound:
                continue
            if deployment.candidate.model_name == mv.model_name and deployment.candidate.version == mv.version:
                role = f"{deployment.strategy} candidate ({deployment.phase})"
                found.append({"name": endpoint["name"], "role": role})
    return found
