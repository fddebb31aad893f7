"""The DAG of a pipeline, built by tracing its function: calling a step inside records a node and returns placeholders.

Values only flow forward from step to step, so a traced graph cannot contain a cycle. Everything
is checked while tracing — missing or unexpected inputs, unknown outputs, values that are neither
step outputs, dataset references nor JSON — so a bad pipeline fails before anything runs.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import canonical_json, hash_bytes
from shipyard.pipelines.refs import DatasetRef

if TYPE_CHECKING:
    from shipyard.pipelines.decorators import Pipeline, Step


@dataclass(frozen=True)
class OutputRef:
    """A placeholder for one output of one step node, returned when a step is called inside a pipeline."""

    step: str
    output: str

    def __repr__(self) -> str:
        return f"<output {self.output!r} of step {self.step!r}>"

    def __bool__(self) -> bool:
        raise InvalidInput(
            f"the output {self.output!r} of step {self.step!r} is not known while the pipeline is built; "
            "branch inside a step instead",
            field="pipeline",
        )

    def __iter__(self) -> Iterator[Any]:
        raise InvalidInput(
            f"step {self.step!r} has one output; declare several with @step(outputs=[...]) to unpack it",
            field="pipeline",
        )


class StepOutputs(tuple):
    """The outputs of a multi-output step call: index them, unpack them, or read them by name."""

    step: str

    def __new__(cls, step: str, refs: list[OutputRef]) -> StepOutputs:
        obj = super().__new__(cls, refs)
        obj.step = step
        return obj

    def __getattr__(self, name: str) -> OutputRef:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            for ref in tuple.__iter__(self):
                if ref.output == key:
                    return ref
            names = ", ".join(r.output for r in tuple.__iter__(self))
            raise InvalidInput(f"step {self.step!r} has no output {key!r} (outputs: {names})", field="pipeline")
        return tuple.__getitem__(self, key)


@dataclass
class StepNode:
    name: str
    step: Step
    # argument name → OutputRef | DatasetRef | JSON value
    inputs: dict[str, Any]
    outputs: tuple[str, ...]

    @property
    def upstream(self) -> list[str]:
        return list(dict.fromkeys(v.step for v in self.inputs.values() if isinstance(v, OutputRef)))

    def structure(self) -> dict[str, Any]:
        """The node without the values passed to it: values are inputs of a run, not of the definition."""
        inputs: dict[str, Any] = {}
        for arg, value in self.inputs.items():
            if isinstance(value, OutputRef):
                inputs[arg] = {"kind": "output", "step": value.step, "output": value.output}
            elif isinstance(value, DatasetRef):
                inputs[arg] = {"kind": "dataset"}
            else:
                inputs[arg] = {"kind": "value"}
        return {
            "name": self.name,
            "function": self.step.reference or self.step.fn.__qualname__,
            "code_digest": self.step.code_digest,
            "inputs": inputs,
            "outputs": list(self.outputs),
            "options": self.step.options.as_dict(),
        }


@dataclass
class PipelineGraph:
    name: str
    target: str | None
    params: dict[str, Any]
    nodes: dict[str, StepNode] = field(default_factory=dict)  # in call order, which is a topological order

    def structure(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "target": self.target,
            "params": sorted(self.params),
            "steps": [node.structure() for node in self.nodes.values()],
        }

    @property
    def digest(self) -> str:
        return definition_digest(self.structure())

    def downstream_of(self, name: str) -> list[str]:
        """Every node that depends, directly or not, on ``name``."""
        found: list[str] = []
        frontier = {name}
        for node in self.nodes.values():  # call order is topological, one pass suffices
            if any(up in frontier for up in node.upstream):
                frontier.add(node.name)
                found.append(node.name)
        return found


def definition_digest(structure: dict[str, Any]) -> str:
    return hash_bytes(canonical_json(structure))


# ------------------------------------------------------------------------------------------------
# Tracing

_tracing: contextvars.ContextVar[PipelineGraph | None] = contextvars.ContextVar("shipyard_pipeline", default=None)


def current_graph() -> PipelineGraph | None:
    return _tracing.get()


@contextmanager
def _tracing_into(graph: PipelineGraph) -> Iterator[None]:
    token = _tracing.set(graph)
    try:
        yield
    finally:
        _tracing.reset(token)


def trace(pipe: Pipeline, params: dict[str, Any] | None) -> PipelineGraph:
    """Bind ``params`` to the pipeline function's arguments and call it, recording each step call."""
    bound = bind_params(pipe, params or {})
    graph = PipelineGraph(name=pipe.name, target=pipe.reference, params=bound)
    with _tracing_into(graph):
        pipe.fn(**bound)
    if not graph.nodes:
        raise InvalidInput(f"pipeline {pipe.name!r} calls no steps", field="target")
    return graph


def bind_params(pipe: Pipeline, params: dict[str, Any]) -> dict[str, Any]:
    """Params with defaults applied; unknown, missing or non-JSON params are refused before anything runs."""
    if not isinstance(params, dict):
        raise InvalidInput("pipeline params must be a mapping of name to value", field="params")
    signature = inspect.signature(pipe.fn)
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
    known = [n for n, p in signature.parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD]
    unknown = sorted(set(params) - set(known))
    if unknown and not accepts_any:
        raise InvalidInput(
            f"pipeline {pipe.name!r} has no parameter {unknown[0]!r} (parameters: {', '.join(known) or 'none'})",
            field="params",
        )
    try:
        bound = signature.bind(**params)
    except TypeError as exc:
        raise InvalidInput(f"pipeline {pipe.name!r}: {exc}", field="params") from None
    bound.apply_defaults()
    values = dict(bound.arguments)
    for key, value in list(values.items()):
        if signature.parameters[key].kind is inspect.Parameter.VAR_KEYWORD:
            values.pop(key)
            values.update(value)
    for key, value in values.items():
        check_json(value, f"pipeline {pipe.name!r} parameter {key!r}", "params")
    return values


def check_json(value: Any, what: str, field_name: str) -> None:
    """Refuse values that do not survive a JSON round trip unchanged (sets, objects, tuples inside dicts…)."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{what} is not JSON-serialisable: {exc}", field=field_name) from None
    if not _same(json.loads(text), value):
        raise InvalidInput(f"{what} does not survive JSON unchanged ({type(value).__name__})", field=field_name)


def _same(a: Any, b: Any) -> bool:
    if isinstance(b, tuple):
        b = list(b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def add_call(graph: PipelineGraph, step: Step, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Record a call of ``step`` in ``graph``; returns an OutputRef, or StepOutputs for several outputs."""
    name = step.name
    n = 2
    while name in graph.nodes:  # the same step called twice gets a numbered node
        name = f"{step.name}_{n}"
        n += 1
    try:
        bound = step.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidInput(f"step {name!r}: {exc}", field="pipeline") from None
    bound.apply_defaults()
    inputs: dict[str, Any] = {}
    for arg, value in bound.arguments.items():
        if isinstance(value, StepOutputs):
            raise InvalidInput(
                f"step {name!r} input {arg!r} got all outputs of step {value.step!r}; pass one of them "
                f"({', '.join(r.output for r in tuple.__iter__(value))})",
                field="pipeline",
            )
        if isinstance(value, OutputRef):
            if value.step not in graph.nodes:
                raise InvalidInput(f"step {name!r} input {arg!r} comes from another pipeline", field="pipeline")
        elif not isinstance(value, DatasetRef):
            _refuse_nested_refs(value, name, arg)
            check_json(value, f"step {name!r} input {arg!r}", "pipeline")
        inputs[arg] = value
    node = StepNode(name=name, step=step, inputs=inputs, outputs=step.outputs)
    graph.nodes[name] = node
    refs = [OutputRef(name, output) for output in step.outputs]
    if step.multiple_outputs:
        return StepOutputs(name, refs)
    return refs[0]


def _refuse_nested_refs(value: Any, step: str, arg: str) -> None:
    if isinstance(value, (list, tuple)):
        for item in value:
            _refuse_nested_refs(item, step, arg)
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_nested_refs(item, step, arg)
    elif isinstance(value, (OutputRef, DatasetRef)):
        raise InvalidInput(
            f"step {step!r} input {arg!r} nests a step output or dataset inside a collection; "
            "pass it as its own argument",
            field="pipeline",
        )
