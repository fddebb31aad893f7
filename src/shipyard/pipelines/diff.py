"""The difference between two pipeline runs: definition, params, and per step code, inputs, outputs, status, timing."""

from __future__ import annotations

from typing import Any

from shipyard.pipelines.entities import Change, PipelineRun, PipelineRunDiff, StepDiff, StepRun


def diff_runs(a: PipelineRun, b: PipelineRun) -> PipelineRunDiff:
    steps_a = {s.name: s for s in a.steps}
    steps_b = {s.name: s for s in b.steps}
    names = list(steps_a) + [n for n in steps_b if n not in steps_a]
    return PipelineRunDiff(
        a=a.id,
        b=b.id,
        name=_change(a.name, b.name),
        definition=_change(a.definition_digest, b.definition_digest),
        status=_change(a.status.value, b.status.value),
        params=_mapping_changes(a.params, b.params),
        steps=[_step_diff(name, steps_a.get(name), steps_b.get(name)) for name in names],
        duration_ms=Change(a=_duration(a), b=_duration(b)),
    )


def _step_diff(name: str, a: StepRun | None, b: StepRun | None) -> StepDiff:
    if a is None or b is None:
        return StepDiff(name=name, only_in="a" if b is None else "b")
    return StepDiff(
        name=name,
        status=_change(a.status.value, b.status.value),
        code_digest=_change(a.code_digest, b.code_digest),
        cache_key=_change(a.cache_key, b.cache_key),
        inputs=_mapping_changes(_input_identities(a.inputs), _input_identities(b.inputs)),
        outputs=_mapping_changes(
            {k: v.get("digest") for k, v in a.outputs.items()}, {k: v.get("digest") for k, v in b.outputs.items()}
        ),
        duration_ms=Change(a=a.duration_ms, b=b.duration_ms),
    )


def _input_identities(inputs: dict[str, Any]) -> dict[str, Any]:
    """What identifies each input: an upstream digest, a dataset version, or the value itself."""
    result: dict[str, Any] = {}
    for arg, source in inputs.items():
        if not isinstance(source, dict):
            result[arg] = source
        elif source.get("kind") == "output":
            result[arg] = source.get("digest")
        elif source.get("kind") == "dataset":
            result[arg] = source.get("version_id") or source.get("ref")
        else:
            result[arg] = source.get("value")
    return result


def _mapping_changes(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Change]:
    return {k: Change(a=a.get(k), b=b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def _change(a: Any, b: Any) -> Change | None:
    return None if a == b else Change(a=a, b=b)


def _duration(run: PipelineRun) -> int | None:
    return None if run.end_time is None else run.end_time - run.start_time
