"""What a rule can do: each action is a function of the services and its (rendered) arguments.

Every action returns a JSON-able result that the firing stores and journals; later rules react to
those journal entries (``automation.action_succeeded`` with ``payload.action`` and
``payload.result``), which is how the closed loop chains one step to the next. Actions call the
services directly — the same code paths as the SDK and the API, journaled the same way.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from shipyard.automation.entities import Event
from shipyard.core.errors import InvalidInput, NotFound

log = logging.getLogger("shipyard.automations")
ActionFn = Callable[[Any, dict[str, Any], Event], dict[str, Any]]
REVIEW_TAG = "automation_review"  # set on versions an automation submitted for review


def _int(value: Any, field: str) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InvalidInput(f"{field} must be a whole number, not {value!r}", field=field) from None
    if number < 1:
        raise InvalidInput(f"{field} must be ≥ 1", field=field)
    return number


def _text(value: Any, field: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput(f"{field} is empty after rendering", field=field)
    return str(value)


# -- run_pipeline -------------------------------------------------------------------------------------


def run_pipeline(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    """Run a pipeline (``package.module:function``) to the end, in this process, with the embedded client."""
    from shipyard.pipelines import run as run_a_pipeline

    pipeline = _text(args.get("pipeline"), "pipeline")
    params = args.get("params") or {}
    if isinstance(params, str):  # a template that rendered to JSON
        try:
            params = json.loads(params)
        except ValueError:
            raise InvalidInput("params must be a mapping", field="params") from None
    if not isinstance(params, Mapping):
        raise InvalidInput("params must be a mapping", field="params")
    params = dict(params)
    client = services.monitoring.embedded_client()
    if args.get("window_param"):
        if event.entity_type != "alert":
            raise InvalidInput("window_param needs an alert event (on: alert.fired)", field="window_param")
        params[str(args["window_param"])] = services.monitoring.alert_window_dataset(event.entity_id)
    try:
        result = run_a_pipeline(
            pipeline,
            params,
            executor=str(args.get("executor") or "inprocess"),
            no_cache=not args.get("cache", False),  # a cache hit would register nothing: the loop would stop
            client=client,
        )
    except Exception as exc:
        run_id = getattr(exc, "pipeline_run_id", None)
        message = f"pipeline {pipeline} failed: {type(exc).__name__}: {exc}"
        raise ActionFailed(message, {"pipeline_run_id": run_id}) from exc
    return {"pipeline": pipeline, "pipeline_run_id": result.id, "status": result.status.value, "params": params}


# -- evaluate ------------------------------------------------------------------------------------------


def evaluate(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    """Evaluate a version and the model's alias (default ``champion``) on one dataset version; the
    candidate passes when its metric is at most ``tolerance`` worse than the champion's."""
    model = _text(args.get("model"), "model")
    version = _int(args.get("version"), "version")
    dataset = services.data.resolve_version(_text(args.get("dataset"), "dataset")).ref
    label_column = _text(args.get("label_column"), "label_column")
    against = str(args.get("against") or "champion")
    tolerance = float(args.get("tolerance") or 0.0)
    higher = args.get("higher_is_better", True)
    higher = higher if isinstance(higher, bool) else str(higher).lower() not in ("false", "0", "no")
    evaluations = services.evaluations
    candidate = evaluations.evaluate_version(model, version, dataset, label_column)
    metrics = candidate.result.get("metrics", {})
    metric = str(args.get("metric") or ("accuracy" if "accuracy" in metrics else "r2"))
    if metric not in metrics:
        raise InvalidInput(f"metric {metric!r} is not among {', '.join(sorted(metrics))}", field="metric")
    out: dict[str, Any] = {
        "model": model,
        "version": version,
        "dataset": dataset,
        "metric": metric,
        "candidate": metrics[metric],
        "against": against,
    }
    try:
        champion = services.registry.get_version_by_alias(model, against)
    except NotFound:
        return {**out, "champion": None, "passed": True, "reason": f"no {against} yet: nothing to beat"}
    if champion.version == version:
        return {**out, "champion_version": version, "champion": metrics[metric], "passed": True, "reason": "is it"}
    baseline = evaluations.evaluate_version(model, champion.version, dataset, label_column).result["metrics"]
    value = baseline.get(metric)
    delta = (metrics[metric] - value) if higher else (value - metrics[metric])
    passed = bool(delta >= -tolerance)
    return {
        **out,
        "champion_version": champion.version,
        "champion": value,
        "delta": delta,
        "tolerance": tolerance,
        "passed": passed,
        "reason": f"{metric} {metrics[metric]:.4g} vs {against} {value:.4g}",
    }


# -- request_review: the policy gate ----------------------------------------------------------------


def request_review(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    """The governance gate: with no policy applying to the version there is nobody to ask and the
    result says ``approval_required: false``; otherwise the version is submitted for review (the
    review gate's rules must pass) and the loop continues on its ``version.approved`` event."""
    model = _text(args.get("model"), "model")
    version = _int(args.get("version"), "version")
    governance = services.governance
    stage, policies = governance.applying_policies(model, version)
    if not policies:
        return {"model": model, "version": version, "approval_required": False, "stage": stage, "policies": []}
    labels = [p.label for p in policies]
    if stage == "approved":
        return {"model": model, "version": version, "approval_required": False, "stage": "approved", "policies": labels}
    services.registry.set_version_tags(model, version, {REVIEW_TAG: "pending"})
    status = governance.submit_for_review(model, version, comment=args.get("comment") or "submitted by an automation")
    return {
        "model": model,
        "version": version,
        "approval_required": True,
        "stage": status.stage,
        "required": status.required,
        "policies": labels,
    }


# -- deploy, promote, rollback ------------------------------------------------------------------------


def deploy(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    endpoint = _text(args.get("endpoint"), "endpoint")
    model = _text(args.get("model"), "model")
    if args.get("version") is not None and not model.startswith("models:/"):
        model = f"models:/{model}/{_int(args['version'], 'version')}"
    options = args.get("options") or {}
    if not isinstance(options, Mapping):
        raise InvalidInput("options must be a mapping", field="options")
    strategy = str(args.get("strategy") or "canary")
    deploy_service = services.deploy
    try:
        deploy_service.get_endpoint(endpoint)
    except NotFound:  # a new endpoint simply starts serving the model
        deploy_service.ensure_endpoint(endpoint, model)
        return {"endpoint": endpoint, "model": model, "strategy": "direct", "deployment_id": None, "created": True}
    d = deploy_service.create_deployment(endpoint, model, strategy, dict(options))
    return {
        "endpoint": endpoint,
        "model": d.candidate.label,
        "version": d.candidate.version,
        "strategy": d.strategy,
        "deployment_id": d.id,
        "baseline": d.baseline.label,
    }


def promote(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    d = services.deploy.promote_deployment(_text(args.get("endpoint"), "endpoint"), args.get("reason"))
    return {"endpoint": d.endpoint, "deployment_id": d.id, "status": d.status, "candidate": d.candidate.label}


def rollback(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    d = services.deploy.rollback_deployment(_text(args.get("endpoint"), "endpoint"), args.get("reason"))
    return {"endpoint": d.endpoint, "deployment_id": d.id, "status": d.status, "candidate": d.candidate.label}


# -- notify --------------------------------------------------------------------------------------------


def notify(services: Any, args: dict[str, Any], event: Event) -> dict[str, Any]:
    """Log the message, and POST it (with the event) to ``url`` with retries when one is given."""
    message = str(args.get("message") or "")
    log.info("automation: %s", message)
    url = args.get("url")
    if not url:
        return {"message": message, "delivered": "log"}
    from shipyard.monitoring.notify import post_with_retries

    body = json.dumps({"message": message, "event": event.model_dump()}, default=str).encode()
    outcome = post_with_retries(
        str(url),
        lambda: (body, {"content-type": "application/json", "user-agent": "shipyard-automations"}),
        retries=int(args.get("retries") or 3),
    )
    if not outcome.get("ok"):
        raise ActionFailed(f"notify {url} failed: {outcome.get('error') or outcome}", {"url": url, **outcome})
    return {"message": message, "delivered": url, "attempts": outcome.get("attempts")}


class ActionFailed(Exception):
    """An action that failed with a partial result worth keeping (the pipeline run that failed…)."""

    def __init__(self, message: str, result: dict[str, Any] | None = None):
        super().__init__(message)
        self.result = result or {}


ACTIONS: dict[str, ActionFn] = {
    "run_pipeline": run_pipeline,
    "evaluate": evaluate,
    "request_review": request_review,
    "deploy": deploy,
    "promote": promote,
    "rollback": rollback,
    "notify": notify,
}
