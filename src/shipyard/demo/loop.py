"""The demo's closed loop: the drift alert retrains, evaluates, reviews, canaries and promotes.

:func:`install_loop` writes the built-in ``closed-loop`` automations (docs/automations.md) before the
monitoring chapter fires its drift alert. :func:`run_closed_loop` then lets the automation engine
work through the chain of rules while a real inference server takes live traffic: retraining on
the drifted window's labelled rows, evaluation against the champion, the release policy's gate
(the two reviewers approve when the version lands in their queue, as they would in the
dashboard), a canary judged on live predictions, and the report. Each step prints as the firing
that the engine journaled.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from rich.console import Console

from shipyard.demo.pipeline import MODEL_NAME
from shipyard.demo.rollout import CANARY, ENDPOINT, _Traffic, inference_server

PIPELINE = "shipyard.demo.pipeline:retraining"
# The retrained model answers drifted rows differently from the champion by design: judge errors and
# latency strictly, prediction divergence loosely.
LOOP_CANARY = {**CANARY, "judge": {**CANARY["judge"], "divergence_threshold": 0.3}}


def install_loop(client: Any, base: str, dataset: str, target: str) -> list[Any]:
    """The closed loop for the demo model on its endpoint (saving the same rules again changes nothing)."""
    from shipyard.automation.recipes import install_closed_loop

    return install_closed_loop(
        client,
        model=MODEL_NAME,
        endpoint=ENDPOINT,
        pipeline=PIPELINE,
        params={"base": base},
        dataset=dataset,
        label_column=target,
        tolerance=0.05,
        strategy="canary",
        deploy_options=LOOP_CANARY,
    )


def run_closed_loop(client: Any, rows: pd.DataFrame, console: Console, timeout: float = 240.0) -> dict[str, Any]:
    """Run the automation engine until the loop has nothing left to do; returns what it did."""
    from shipyard.automation.engine import run_until_idle
    from shipyard.demo.governance import REVIEWERS, release

    console.print("\n[bold]The closed loop[/bold]: the drift alert sets the automations off")
    approved: set[int] = set()

    def reviewers_answer() -> None:
        """The reviewers approve what the loop put in their queue (in the dashboard: one click each)."""
        for version in client.list_versions(MODEL_NAME):
            if version.stage == "in_review" and "automation_review" in version.tags and version.version not in approved:
                approved.add(version.version)
                release(client, version.version)
                console.print(f"    review: {' and '.join(REVIEWERS)} approve {MODEL_NAME}/{version.version}")

    with inference_server(client) as url, _Traffic(url, rows.to_dict(orient="records")):
        outcome = run_until_idle(client, timeout=timeout, on_round=reviewers_answer)
    firings = sorted(outcome["firings"], key=lambda f: f.id)
    for firing in firings:
        console.print(f"  {firing.rule:<28} {firing.action:<15} {firing.status:<9} {_said(firing)}", soft_wrap=True)
    by_rule = {f.rule: f for f in firings}
    retrain = _result(by_rule.get("closed-loop-retrain"))
    deploy = _result(by_rule.get("closed-loop-deploy-approved") or by_rule.get("closed-loop-deploy"))
    status = client.get_deployment(deploy["deployment_id"]).status if deploy.get("deployment_id") else None
    serving = client.get_endpoint(ENDPOINT).stable.label
    console.print(f"  endpoint {ENDPOINT!r} now serves {serving}" + (" (timed out)" if outcome["timed_out"] else ""))
    return {
        "retraining_run": retrain.get("pipeline_run_id"),
        "version": deploy.get("version"),
        "deployment": status,
        "serving": serving,
        "rules": sorted(by_rule),
        "failed": [f.rule for f in firings if f.status == "failed"],
        "timed_out": outcome["timed_out"],
    }


def _result(firing: Any) -> dict[str, Any]:
    return (firing.result if firing is not None else None) or {}


def _said(firing: Any) -> str:
    """One line on what a firing did."""
    if firing.error:
        return f"error: {firing.error}"
    result = firing.result or {}
    if firing.action == "run_pipeline":
        run_id = str(result.get("pipeline_run_id", ""))[:8]
        return f"pipeline run {run_id} {result.get('status', '')} on {result.get('params', {}).get('dataset', '')}"
    if firing.action == "evaluate":
        verdict = "passed" if result.get("passed") else "lost"
        return f"{MODEL_NAME}/{result.get('version')}: {result.get('reason', '')} → {verdict}"
    if firing.action == "request_review":
        wanted = "review requested" if result.get("approval_required") else "no approval needed"
        policies = ", ".join(result.get("policies") or []) or "no policy"
        return f"{MODEL_NAME}/{result.get('version')}: {wanted} ({policies})"
    if firing.action == "deploy":
        return f"{result.get('strategy')} of {result.get('model')} on {result.get('endpoint')}"
    return str(result.get("message") or result)[:160]
