"""``@step`` and ``@pipeline``: mark functions as pipeline steps and as pipelines composing them.

Inside a ``@pipeline`` function a step call does not run the step: it adds a node to the DAG and
returns placeholders for its outputs (see :mod:`shipyard.pipelines.graph`). Outside a pipeline a
step is the plain function. Calling a ``@pipeline`` function runs it with the default executor.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from shipyard.core.errors import InvalidInput
from shipyard.core.names import check_name
from shipyard.pipelines.code import code_digest, reference_of
from shipyard.pipelines.graph import add_call, current_graph

DEFAULT_OUTPUT = "output"


@dataclass(frozen=True)
class StepOptions:
    retries: int = 0
    retry_backoff: float = 1.0  # seconds before the first retry; doubles for each further one
    timeout: float | None = None  # seconds per attempt
    cache: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.retries, int) or self.retries < 0:
            raise InvalidInput(f"retries must be an integer >= 0, got {self.retries!r}", field="retries")
        if not isinstance(self.retry_backoff, (int, float)) or self.retry_backoff < 0:
            raise InvalidInput(f"retry_backoff must be >= 0 seconds, got {self.retry_backoff!r}", field="retry_backoff")
        if self.timeout is not None and (not isinstance(self.timeout, (int, float)) or self.timeout <= 0):
            raise InvalidInput(f"timeout must be > 0 seconds, got {self.timeout!r}", field="timeout")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        return float(self.retry_backoff) * 2 ** (attempt - 1)


class Step:
    """A step function with its options, output names and code digest."""

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None, outputs: Sequence[str] | None, options: StepOptions
    ):
        if not callable(fn) or inspect.iscoroutinefunction(fn):
            raise InvalidInput(f"@step needs a plain function, got {fn!r}", field="step")
        self.fn = fn
        self.name = check_name(name or fn.__name__, "step name")
        self.options = options
        self.signature = inspect.signature(fn)
        self.outputs, self.output_types, self.multiple_outputs = _outputs_of(fn, outputs)
        self.code_digest = code_digest(fn)
        functools.update_wrapper(self, fn)

    @property
    def reference(self) -> str | None:
        """``module:qualname`` when the step can be imported back (worker processes then import it)."""
        return reference_of(self)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        graph = current_graph()
        if graph is None:
            return self.fn(*args, **kwargs)
        return add_call(graph, self, args, kwargs)

    def __repr__(self) -> str:
        return f"<step {self.name} outputs={list(self.outputs)}>"


class Pipeline:
    """A pipeline function: its arguments are the pipeline's JSON params; its step calls form the DAG."""

    def __init__(self, fn: Callable[..., Any], *, name: str | None, experiment: str | None):
        if not callable(fn):
            raise InvalidInput(f"@pipeline needs a function, got {fn!r}", field="pipeline")
        self.fn = fn
        self.name = check_name(name or fn.__name__, "pipeline name")
        self.experiment = experiment
        functools.update_wrapper(self, fn)

    @property
    def reference(self) -> str | None:
        """``module:qualname`` to import the pipeline again (reproduce and schedules use it)."""
        return reference_of(self, main_by_name=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the pipeline in-process with these params; returns the PipelineRun."""
        try:
            bound = inspect.signature(self.fn).bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InvalidInput(f"pipeline {self.name!r}: {exc}", field="params") from None
        return self.run(dict(bound.arguments))

    def run(self, params: dict[str, Any] | None = None, **options: Any) -> Any:
        from shipyard.pipelines.runner import run

        return run(self, params, **options)

    def __repr__(self) -> str:
        return f"<pipeline {self.name}>"


def step(
    fn: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    retries: int = 0,
    retry_backoff: float = 1.0,
    timeout: float | None = None,
    cache: bool = True,
) -> Any:
    """Decorate a function as a pipeline step: ``@step`` or ``@step(retries=2, timeout=60, outputs=["a", "b"])``."""
    options = StepOptions(retries=retries, retry_backoff=retry_backoff, timeout=timeout, cache=cache)

    def wrap(f: Callable[..., Any]) -> Step:
        return Step(f, name=name, outputs=outputs, options=options)

    return wrap(fn) if fn is not None else wrap


def pipeline(fn: Callable[..., Any] | None = None, *, name: str | None = None, experiment: str | None = None) -> Any:
    """Decorate a function composing steps as a pipeline; ``experiment`` holds its tracking runs (default: its name)."""

    def wrap(f: Callable[..., Any]) -> Pipeline:
        return Pipeline(f, name=name, experiment=experiment)

    return wrap(fn) if fn is not None else wrap


def _outputs_of(fn: Callable[..., Any], declared: Sequence[str] | None) -> tuple[tuple[str, ...], dict[str, Any], bool]:
    """Output names, their annotated types (where known) and whether the step returns several outputs.

    Names come from ``outputs=[...]``, else from a NamedTuple return annotation, else
    ``output_0, output_1…`` for a fixed-length ``tuple[...]`` annotation, else one output ``output``.
    """
    try:
        returns = typing.get_type_hints(fn).get("return", Any)
    except Exception:  # unresolvable forward references: no type checks, names still work
        returns = Any
    fields = getattr(returns, "_fields", None)
    hints = getattr(returns, "__annotations__", {}) if fields else {}
    args = typing.get_args(returns) if typing.get_origin(returns) is tuple else ()
    fixed_tuple = bool(args) and Ellipsis not in args
    if declared is not None:
        if isinstance(declared, str) or not declared:
            raise InvalidInput("outputs must be a non-empty list of names", field="outputs")
        names = tuple(check_name(n, "output name") for n in declared)
        if len(set(names)) != len(names):
            raise InvalidInput(f"output names repeat: {list(names)}", field="outputs")
        types = {}
        if fields and len(fields) == len(names):
            types = {n: hints.get(f, Any) for n, f in zip(names, fields, strict=True)}
        elif fixed_tuple and len(args) == len(names):
            types = dict(zip(names, args, strict=True))
        elif len(names) == 1:
            types = {names[0]: returns}
        return names, types, len(names) > 1
    if fields:
        return tuple(fields), {f: hints.get(f, Any) for f in fields}, True
    if fixed_tuple:
        names = tuple(f"output_{i}" for i in range(len(args)))
        return names, dict(zip(names, args, strict=True)), True
    return (DEFAULT_OUTPUT,), {DEFAULT_OUTPUT: returns}, False
