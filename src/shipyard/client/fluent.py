"""Module-level helpers that MLflow users find familiar: ``shipyard.start_run()``, ``log_param`` …

They act on one process-wide default :class:`Client` and a stack of active runs, so
``with shipyard.start_run(): shipyard.log_metric("loss", 0.1)`` just works. A run that leaves
its ``with`` block through an exception ends FAILED (KILLED on Ctrl-C), otherwise FINISHED.
"""

from __future__ import annotations

import atexit
import os
import threading
from typing import Any

from shipyard.client.client import Client
from shipyard.core.errors import InvalidInput
from shipyard.tracking.entities import Run, RunPage, RunStatus

_lock = threading.RLock()
_client: Client | None = None
_run_stack: list[ActiveRun] = []
_experiment: str | None = None


class ActiveRun:
    def __init__(self, client: Client, run: Run):
        self.client = client
        self.info = run

    @property
    def id(self) -> str:
        return self.info.id

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc_type is None:
            status = RunStatus.FINISHED
        elif issubclass(exc_type, KeyboardInterrupt):
            status = RunStatus.KILLED
        else:
            status = RunStatus.FAILED
        end_run(status)


def get_client() -> Client:
    global _client
    with _lock:
        if _client is None:
            _client = Client()
        return _client


def set_client(client: Client | None) -> None:
    """Use ``client`` for the module-level helpers (None: build a fresh one from the environment)."""
    global _client
    with _lock:
        _client = client


def set_experiment(name: str) -> str:
    """Runs started afterwards go to experiment ``name`` (created when missing)."""
    global _experiment
    experiment = get_client().get_or_create_experiment(name)
    _experiment = experiment.name
    return experiment.id


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    nested: bool = False,
    tags: dict[str, str] | None = None,
    description: str | None = None,
    run_id: str | None = None,
) -> ActiveRun:
    client = get_client()
    with _lock:
        if run_id is not None:
            active = ActiveRun(client, client.get_run(run_id))
            _run_stack.append(active)
            return active
        if _run_stack and not nested:
            raise InvalidInput(f"run {_run_stack[-1].id} is already active; end it or pass nested=True", field="nested")
        parent = _run_stack[-1].id if _run_stack and nested else None
        exp = experiment or _experiment or os.environ.get("SHIPYARD_EXPERIMENT")
        if exp is not None and experiment is None:
            exp = client.get_or_create_experiment(exp).id
        run = client.create_run(exp, name, description=description, parent_run_id=parent, tags=tags)
        active = ActiveRun(client, run)
        _run_stack.append(active)
        return active


def active_run() -> ActiveRun | None:
    return _run_stack[-1] if _run_stack else None


def _run_id() -> str:
    if not _run_stack:
        start_run()
    return _run_stack[-1].id


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> Run | None:
    with _lock:
        if not _run_stack:
            return None
        active = _run_stack.pop()
    return active.client.end_run(active.id, status)


def log_param(key: str, value: Any) -> None:
    get_client().log_param(_run_id(), key, value)


def log_params(params: dict[str, Any]) -> None:
    get_client().log_params(_run_id(), params)


def log_metric(key: str, value: float, step: int = 0) -> None:
    get_client().log_metric(_run_id(), key, value, step)


def log_metrics(metrics: dict[str, float], step: int = 0) -> None:
    get_client().log_metrics(_run_id(), metrics, step)


def set_tag(key: str, value: str) -> None:
    get_client().set_tag(_run_id(), key, value)


def set_tags(tags: dict[str, str]) -> None:
    get_client().set_tags(_run_id(), tags)


def log_artifact(local_path: str, artifact_path: str | None = None):
    return get_client().log_artifact(_run_id(), local_path, artifact_path)


def log_artifacts(local_dir: str, artifact_path: str | None = None):
    return get_client().log_artifacts(_run_id(), local_dir, artifact_path)


def log_dict(value: dict[str, Any], artifact_path: str):
    return get_client().log_dict(_run_id(), value, artifact_path)


def log_model(model: Any, artifact_path: str = "model", **kwargs: Any):
    return get_client().log_model(_run_id(), model, artifact_path, **kwargs)


def register_model(source: Any, name: str, **kwargs: Any):
    """Register ``source`` as the next version of ``name``. A model object is first logged to the active
    run (under ``models/NAME``), so the version knows its run and, through it, its data and pipeline."""
    active = active_run()
    if active is not None and not isinstance(source, (str, os.PathLike)):
        kwargs.setdefault("artifact_path", f"models/{name}")
        return get_client().log_model(active.id, source, registered_model_name=name, **kwargs)
    return get_client().register_model(source, name, **kwargs)


def load_model(uri: str):
    return get_client().load_model(uri)


def set_alias(name: str, alias: str, version: int):
    return get_client().set_alias(name, alias, version)


def search_runs(
    experiments: list[str] | None = None,
    filter: str | None = None,
    order_by: list[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> RunPage:
    return get_client().search_runs(experiments, filter, order_by, max_results, page_token)


def log_dataset(source: Any, name: str, **kwargs: Any):
    """Register a dataset version from a path, DataFrame or Table.

    It is recorded as an output of the active run, if any, and of the pipeline step and pipeline
    run being executed, if any.
    """
    from shipyard.core.context import current_consumers

    active = active_run()
    if active is not None:
        kwargs.setdefault("run_id", active.id)
    client = get_client()
    version = client.log_dataset(source, name=name, **kwargs)
    for consumer_type, consumer_id in dict.fromkeys(current_consumers()):
        client.record_dataset_usage(version.ref, consumer_type, consumer_id, "output")
    return version


def load_dataset(ref: str, **kwargs: Any):
    """Load ``NAME@VERSION`` (pandas by default), recorded as an input of the active run and pipeline step."""
    from shipyard.core.context import current_consumers

    active = active_run()
    consumers = list(kwargs.pop("consumers", ())) + list(current_consumers())
    consumers += [("run", active.id)] if active else []
    return get_client().load_dataset(ref, consumers=consumers, **kwargs)


def set_seed(seed: int) -> dict[str, int]:
    """Seed Python's and NumPy's generators and record the seed with the run (active or next)."""
    from shipyard.tracking.environment import set_seed as seed_everything

    seeds = seed_everything(seed)
    client = get_client()
    client.seeds.update(seeds)
    if _run_stack:
        client.set_tag(
            _run_stack[-1].id, "shipyard.seeds", ",".join(f"{k}={v}" for k, v in sorted(client.seeds.items()))
        )
    return seeds


def flush() -> None:
    if _client is not None:
        _client.flush()


@atexit.register
def _end_open_runs() -> None:
    # A script that exits without ending its runs: mark them FINISHED (MLflow does the same).
    while _run_stack:
        try:
            end_run()
        except Exception:
            break


def log_predictions(df: Any, model: str, **kwargs: Any) -> list[str]:
    """Log predictions scored offline into the prediction log (see ``Client.log_predictions``)."""
    return get_client().log_predictions(df, model, **kwargs)


def record_labels(labels: Any) -> Any:
    """Ground truth by prediction id (see ``Client.record_labels``)."""
    return get_client().record_labels(labels)
