"""Built-in rule sets. ``closed-loop``: drift → retrain → evaluate → policy gate → deploy → judge → notify.

The loop is a chain of small rules, each reacting to the journal entry the previous step wrote, so
every step is journaled, visible in the firings, and restartable on its own:

1. ``{prefix}-retrain``: ``alert.fired`` on a drift metric of the model's monitor → ``run_pipeline``
   (the alert window's labelled rows become a dataset version passed as ``window_param``);
2. ``{prefix}-evaluate``: ``version.registered`` for the model → ``evaluate`` against the champion on
   ``dataset`` (without a dataset this step is left out and the gate reacts to the registration);
3. ``{prefix}-gate``: the evaluation passed → ``request_review``: no applying policy means no approval
   is needed; otherwise the version goes to review and the loop waits for ``version.approved``;
4. ``{prefix}-deploy`` (no approval needed) and ``{prefix}-deploy-approved`` (``version.approved`` of a
   version the gate submitted) → ``deploy`` with ``strategy`` (canary or shadow, judged automatically);
5. ``{prefix}-report``: the deployment promoted, rolled back, failed or aborted → ``notify``;
   ``{prefix}-rejected`` and ``{prefix}-failed`` report an evaluation that lost or a failed step.

The judge inside the deployment controller promotes or rolls back; serving replicas run it.
"""

from __future__ import annotations

import json
from typing import Any

from shipyard.core.errors import InvalidInput
from shipyard.core.names import check_name

RECIPES = ("closed-loop",)
LOOP_STRATEGIES = ("canary", "shadow", "bluegreen", "direct")


def _j(value: Any) -> str:
    """A YAML flow value (JSON is YAML)."""
    return json.dumps(value)


def render(recipe: str, **options: Any) -> list[str]:
    if recipe != "closed-loop":
        raise InvalidInput(f"unknown recipe {recipe!r} (one of {', '.join(RECIPES)})", field="recipe")
    return closed_loop(**options)


def closed_loop(
    model: str,
    endpoint: str,
    pipeline: str,
    *,
    strategy: str = "canary",
    dataset: str | None = None,
    label_column: str = "target",
    monitor: str | None = None,
    params: dict[str, Any] | None = None,
    window_param: str | None = "dataset",
    metric: str | None = None,
    tolerance: float = 0.0,
    deploy_options: dict[str, Any] | None = None,
    notify_url: str | None = None,
    prefix: str = "closed-loop",
) -> list[str]:
    """The YAML texts of the closed loop's rules (see the module's docstring)."""
    for value, field in ((model, "model"), (endpoint, "endpoint"), (prefix, "prefix")):
        check_name(value, field)
    if not isinstance(pipeline, str) or ":" not in pipeline:
        raise InvalidInput("pipeline is package.module:function", field="pipeline")
    if strategy not in LOOP_STRATEGIES:
        raise InvalidInput(f"strategy must be one of {', '.join(LOOP_STRATEGIES)}", field="strategy")
    if params is not None and not isinstance(params, dict):
        raise InvalidInput("params must be a mapping", field="params")
    options = dict(deploy_options or {})
    if strategy == "shadow":
        options.setdefault("auto", True)  # the loop runs unattended: the judge decides
    on_monitor = f"payload.monitor == {_j(monitor)}" if monitor else f"context.monitor.model == {_j(model)}"
    retrain_args = {"pipeline": pipeline, "params": params or {}}
    if window_param:
        retrain_args["window_param"] = window_param
    notify = {"url": notify_url} if notify_url else {}
    texts = [
        f"""name: {prefix}-retrain
description: A drift alert on {model}'s monitor retrains it with {pipeline} on the drifted window's rows.
on: alert.fired
where: {on_monitor} and context.alert.metric startswith "drift."
do:
  - run_pipeline: {_j(retrain_args)}
"""
    ]
    registered = f"context.model.name == {_j(model)} and payload.after.version exists"
    if dataset:
        evaluate = {"model": model, "version": "{{ payload.after.version }}", "dataset": dataset,
                    "label_column": label_column, "tolerance": tolerance}  # fmt: skip
        if metric:
            evaluate["metric"] = metric
        texts.append(
            f"""name: {prefix}-evaluate
description: Each new version of {model} is evaluated against the champion on {dataset}.
on: version.registered
where: {registered}
do:
  - evaluate: {_j(evaluate)}
"""
        )
        gate_on = "automation.action_succeeded"
        gate_where = f'payload.rule == "{prefix}-evaluate" and payload.result.passed == true'
        gate_version = "{{ payload.result.version }}"
        texts.append(
            f"""name: {prefix}-rejected
description: A retrained version that does worse than the champion stops here.
on: automation.action_succeeded
where: payload.rule == "{prefix}-evaluate" and payload.result.passed == false
do:
  - notify: {
                _j(
                    {
                        "message": "{{ payload.result.model }}/{{ payload.result.version }} not deployed: "
                        "{{ payload.result.reason }}",
                        **notify,
                    }
                )
            }
"""
        )
    else:
        gate_on, gate_where, gate_version = "version.registered", registered, "{{ payload.after.version }}"
    texts.append(
        f"""name: {prefix}-gate
description: The governance gate; with a policy that asks for approvals the version goes to review.
on: {gate_on}
where: {gate_where}
do:
  - request_review: {_j({"model": model, "version": gate_version, "comment": "retrained by the closed loop"})}
"""
    )
    deploy = {"endpoint": endpoint, "model": model, "strategy": strategy, "options": options}
    texts.append(
        f"""name: {prefix}-deploy
description: No approval needed - {strategy} on {endpoint}; the judge promotes or rolls back.
on: automation.action_succeeded
where: payload.rule == "{prefix}-gate" and payload.result.approval_required == false
do:
  - deploy: {_j({**deploy, "version": "{{ payload.result.version }}"})}
"""
    )
    texts.append(
        f"""name: {prefix}-deploy-approved
description: A version the gate sent to review was approved - {strategy} on {endpoint}.
on: version.approved
where: context.model.name == {_j(model)} and context.version.tags.automation_review exists
do:
  - deploy: {_j({**deploy, "version": "{{ payload.version }}"})}
"""
    )
    texts.append(
        f"""name: {prefix}-report
description: The rollout on {endpoint} finished.
on: [deployment.promoted, deployment.rolled_back, deployment.failed, deployment.aborted]
where: payload.endpoint == {_j(endpoint)}
do:
  - notify: {
            _j(
                {
                    "message": "{{ payload.candidate }} on {{ payload.endpoint }}: {{ action }} "
                    "({{ payload.outcome }})",
                    **notify,
                }
            )
        }
"""
    )
    texts.append(
        f"""name: {prefix}-failed
description: A step of the loop failed.
on: automation.action_failed
where: payload.rule startswith "{prefix}-"
do:
  - notify: {_j({"message": "{{ payload.rule }}: {{ payload.action }} failed: {{ payload.error }}", **notify})}
"""
    )
    return texts


def install_closed_loop(client: Any, model: str, endpoint: str, pipeline: str, **options: Any) -> list[Any]:
    """Write the closed loop's rules through a :class:`shipyard.Client` (embedded or remote); returns them.

    Options: ``strategy`` (canary | shadow | …), ``dataset`` and ``label_column`` (evaluation against
    the champion), ``monitor``, ``params`` and ``window_param`` (the pipeline's), ``metric``,
    ``tolerance``, ``deploy_options`` (the strategy's), ``notify_url``, ``prefix``."""
    return client.install_recipe(model, endpoint, pipeline, recipe="closed-loop", **options)
