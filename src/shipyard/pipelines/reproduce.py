"""``shipyard reproduce models:/NAME/N``: re-run the pipeline that built a model version and compare.

The version's source run leads to its pipeline step, the step to its pipeline run, and the run to
the recorded definition (the pipeline's import reference) and params. The pipeline runs again with
the cache off, in reproduction mode (models are logged to the new runs but nothing is registered),
and the new model's tree digest is compared with the version's: equal means bit-identical. If not,
the report lists the metrics that differ and by how much, the steps whose outputs first diverged,
and the steps whose code changed since the original run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from shipyard.core.context import reproduction
from shipyard.core.errors import InvalidInput, NotFound


class MetricDifference(BaseModel):
    step: str
    metric: str
    original: float | None
    reproduced: float | None
    difference: float | None


class Reproduction(BaseModel):
    model_uri: str
    original_digest: str
    reproduced_digest: str | None
    identical: bool
    original_pipeline_run_id: str
    reproduced_pipeline_run_id: str
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    step: str  # the step whose run registered the model
    diverged_outputs: list[str] = Field(default_factory=list)  # "step.output" whose digest changed
    code_changes: list[str] = Field(default_factory=list)  # steps whose code digest changed
    metric_differences: list[MetricDifference] = Field(default_factory=list)


def _model_path(client: Any, run_id: str, digest: str) -> str:
    """Where in the step's run the registered model tree was logged."""
    for artifact in client.list_artifacts(run_id):
        if artifact.is_tree and artifact.digest == digest:
            return artifact.path
    raise NotFound(
        f"the model tree {digest} is not among the artifacts of its source run {run_id}; "
        "register models from a step with shipyard.log_model / shipyard.register_model to make them reproducible",
        field="model",
    )


def _metric_differences(client: Any, original: Any, reproduced: Any) -> list[MetricDifference]:
    differences: list[MetricDifference] = []
    by_name = {s.name: s for s in reproduced.steps}
    for step in original.steps:
        twin = by_name.get(step.name)
        if twin is None or step.run_id is None or twin.run_id is None:
            continue
        before = client.get_run(step.run_id).metrics
        after = client.get_run(twin.run_id).metrics
        for key in sorted(set(before) | set(after)):
            a, b = before.get(key), after.get(key)
            if a == b or (a is not None and b is not None and math.isnan(a) and math.isnan(b)):
                continue
            delta = b - a if a is not None and b is not None else None
            differences.append(MetricDifference(step=step.name, metric=key, original=a, reproduced=b, difference=delta))
    return differences


def _diverged_outputs(original: Any, reproduced: Any) -> list[str]:
    by_name = {s.name: s for s in reproduced.steps}
    diverged: list[str] = []
    for step in original.steps:
        twin = by_name.get(step.name)
        for output, value in sorted(step.outputs.items()):
            other = (twin.outputs.get(output) if twin else None) or {}
            if value.get("digest") != other.get("digest"):
                diverged.append(f"{step.name}.{output}")
    return diverged


def reproduce(
    client: Any, model_uri: str, *, executor: str = "inprocess", progress: Callable[[Any], None] | None = None
) -> Reproduction:
    """Re-run the pipeline behind ``model_uri``; ``progress`` is called with each step run as it ends."""
    from shipyard.pipelines import run

    version = client.resolve_model(model_uri)
    pinned = f"models:/{version.model_name}/{version.version}"
    if version.source_run_id is None:
        raise InvalidInput(f"{pinned} has no source run, so there is nothing to re-run", field="model")
    try:
        step_run = client.get_step_run_by_run_id(version.source_run_id)
    except NotFound:
        raise InvalidInput(
            f"{pinned} was not registered from a pipeline step (run {version.source_run_id}); "
            "only pipeline-built models can be reproduced",
            field="model",
        ) from None
    original = client.get_pipeline_run(step_run.pipeline_run_id)
    definition = client.get_pipeline_definition(original.definition_digest)
    target = definition.structure.get("target")
    if not target:
        raise InvalidInput(
            f"pipeline run {original.id} was defined in __main__ or a local scope, so it cannot be imported again",
            field="model",
        )
    model_path = _model_path(client, version.source_run_id, version.digest)

    with reproduction():
        try:
            reproduced = run(
                target, params=dict(original.params), executor=executor, no_cache=True, client=client, progress=progress
            )
        except Exception as exc:
            run_id = getattr(exc, "pipeline_run_id", None)
            if run_id is None:
                raise
            reproduced = client.get_pipeline_run(run_id)
    if reproduced.run_id is not None:  # so the re-run is recognisable among the pipeline's runs
        client.set_tags(reproduced.run_id, {"shipyard.reproduction_of": pinned})
    new_step = next((s for s in reproduced.steps if s.name == step_run.name), None)
    new_digest = None
    if new_step is not None and new_step.run_id is not None:
        for artifact in client.list_artifacts(new_step.run_id):
            if artifact.path == model_path:
                new_digest = artifact.digest
    new_definition = client.get_pipeline_definition(reproduced.definition_digest)
    old_code = {s["name"]: s["code_digest"] for s in definition.structure.get("steps", [])}
    new_code = {s["name"]: s["code_digest"] for s in new_definition.structure.get("steps", [])}
    return Reproduction(
        model_uri=pinned,
        original_digest=version.digest,
        reproduced_digest=new_digest,
        identical=new_digest == version.digest,
        original_pipeline_run_id=original.id,
        reproduced_pipeline_run_id=reproduced.id,
        target=target,
        params=dict(original.params),
        step=step_run.name,
        diverged_outputs=_diverged_outputs(original, reproduced),
        code_changes=sorted(n for n in set(old_code) | set(new_code) if old_code.get(n) != new_code.get(n)),
        metric_differences=_metric_differences(client, original, reproduced),
    )
