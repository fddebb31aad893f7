"""Dashboard pages: automations — the rules (current version, switch, YAML) and their recent firings.

``/automations`` lists every rule and the newest firings, each action with its status and links to
what it touched (pipeline runs, model versions, deployments); ``/automations/{name}`` shows one rule's
YAML at any stored version, its versions and its firings. Enabling and disabling call the JSON API.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.automation.rule_entities import AutomationFiring
from shipyard.automation.rules import DEPLOYING
from shipyard.core.errors import InvalidInput
from shipyard.ui.web import render, services_of

router = APIRouter()
FIRINGS_SHOWN = 100
STATUSES = ("running", "succeeded", "failed")


def links(firing: AutomationFiring) -> list[tuple[str, str]]:
    """What a firing's result names, as (label, dashboard path) pairs."""
    result = firing.result or {}
    out: list[tuple[str, str]] = []
    if result.get("pipeline_run_id"):
        out.append((f"pipeline run {str(result['pipeline_run_id'])[:8]}", f"/pipelines/{result['pipeline_run_id']}"))
    model, version = result.get("model"), result.get("version")
    if isinstance(model, str) and "/" in model and not model.startswith("models:/"):
        model, _, number = model.partition("/")
        version = version or (int(number) if number.isdigit() else None)
    if isinstance(model, str) and isinstance(version, int) and not model.startswith("models:/"):
        out.append((f"{model}/{version}", f"/models/{model}/{version}"))
    if result.get("endpoint"):
        label = f"deployment {str(result['deployment_id'])[:8]}" if result.get("deployment_id") else "endpoint"
        out.append((f"{label} on {result['endpoint']}", f"/deployments/{result['endpoint']}"))
    return out


def _firings(services: Any, rule: str | None, status: str | None) -> list[dict[str, Any]]:
    if status not in (None, "", *STATUSES):
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}", field="status")
    fired = services.automations.list_automation_firings(rule=rule, status=status or None, limit=FIRINGS_SHOWN)
    return [{"f": f, "links": links(f)} for f in fired]


@router.get("/automations", response_class=HTMLResponse)
def automations_page(request: Request, rule: str | None = None, status: str | None = None) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    rules = services.automations.list_automations()
    deploying = {r.name: any(a["action"] in DEPLOYING for a in r.actions) for r in rules}
    return render(
        request,
        "automations_list.html",
        rules=rules,
        deploying=deploying,
        firings=_firings(services, rule or None, status),
        rule_filter=rule or "",
        status_filter=status or "",
        statuses=STATUSES,
    )


@router.get("/automations/{name}", response_class=HTMLResponse)
def automation_page(request: Request, name: str, version: int | None = None) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    rule = services.automations.get_automation(name, version)
    versions = services.automations.list_automation_versions(name)
    return render(
        request,
        "automations_rule.html",
        rule=rule,
        versions=versions,
        deploying=any(a["action"] in DEPLOYING for a in rule.actions),
        firings=_firings(services, name, None),
    )
