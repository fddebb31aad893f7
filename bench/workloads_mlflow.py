"""MLflow side of the benchmark: ``python bench/workloads_mlflow.py WORKLOAD --home DIR [sizes]``.

Runs in the benchmark venv (bench/.venv-mlflow, never the project venv) on MLflow's embedded
default: a SQLite tracking/registry database ``sqlite:///DIR/mlflow.db`` and a local artifact
directory, and prints one JSON line. Variants: ``async`` and ``async-buffered`` (per_call with
``log_metric(..., synchronous=False)``, see :func:`per_call`) and ``no-infer`` (registry with
``pip_requirements`` given, so MLflow skips its requirement inference subprocess).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import common as c

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")
warnings.filterwarnings("ignore")

import mlflow  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import Metric, Param  # noqa: E402


def setup(home: str) -> str:
    """Point MLflow at SQLite in ``home`` and create the experiment; returns its id."""
    mlflow.set_tracking_uri(f"sqlite:///{Path(home) / 'mlflow.db'}")
    mlflow.set_registry_uri(f"sqlite:///{Path(home) / 'mlflow.db'}")
    exp = MlflowClient().get_experiment_by_name(c.EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    artifacts = (Path(home) / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    exp_id = mlflow.create_experiment(c.EXPERIMENT, artifact_location=artifacts.as_uri())
    return exp_id


def per_call(args) -> dict:
    """One ``mlflow.log_metric`` call per point; each run timed from its first call to ``end_run``.

    Default: synchronous (MLflow's default). Variant ``async``: ``synchronous=False`` and
    ``mlflow.flush_async_logging()`` before ``end_run``, so all points are stored when the timer stops;
    MLflow's async queue then still writes each queued call as its own batch from a pool of 10
    threads. Variant ``async-buffered``: the same with ``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS=1``,
    which makes the queue merge what arrived in each second into batches of up to 1000 points.
    """
    asynchronous = args.variant in ("async", "async-buffered")
    if args.variant == "async-buffered":  # merge queued points into batches (else one write per point)
        os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
    keys = c.metric_keys(args.metrics)
    values = c.step_values(args.steps, len(keys))
    exp_id = setup(args.home)
    mlflow.set_experiment(experiment_id=exp_id)
    elapsed = 0.0
    for r in range(args.runs):
        mlflow.start_run(run_name=f"run-{r}")
        start = time.perf_counter()
        for step in range(args.steps):
            row = values[step]
            for k, key in enumerate(keys):
                if asynchronous:
                    mlflow.log_metric(key, row[k], step=step, synchronous=False)
                else:
                    mlflow.log_metric(key, row[k], step=step)
        if asynchronous:
            mlflow.flush_async_logging()
        mlflow.end_run()
        elapsed += time.perf_counter() - start
    points = args.runs * args.steps * len(keys)
    return {
        "seconds": elapsed,
        "points": points,
        "stored": _stored_points(args.home),
        "rate": points / elapsed,
        "unit": "points/s",
    }


def batched(args) -> dict:
    """``MlflowClient.log_batch`` with ``--batch`` points per call; each run timed from its first call."""
    keys = c.metric_keys(args.metrics)
    values = c.step_values(args.steps, len(keys))
    exp_id = setup(args.home)
    client = MlflowClient()
    elapsed = 0.0
    calls = 0
    for r in range(args.runs):
        run = client.create_run(exp_id, run_name=f"run-{r}")
        rid = run.info.run_id
        start = time.perf_counter()
        buffer: list[Metric] = []
        for step in range(args.steps):
            row = values[step]
            stamp = int(time.time() * 1000)
            for k, key in enumerate(keys):
                buffer.append(Metric(key, row[k], stamp, step))
                if len(buffer) >= args.batch:
                    client.log_batch(rid, metrics=buffer)
                    calls += 1
                    buffer = []
        if buffer:
            client.log_batch(rid, metrics=buffer)
            calls += 1
        client.set_terminated(rid)
        elapsed += time.perf_counter() - start
    points = args.runs * args.steps * len(keys)
    return {
        "seconds": elapsed,
        "points": points,
        "stored": _stored_points(args.home),
        "calls": calls,
        "rate": points / elapsed,
        "unit": "points/s",
    }


def search(args) -> dict:
    """Populate ``--search-runs`` runs once per home (cached), then time ``MlflowClient.search_runs``."""
    exp_id = setup(args.home)
    client = MlflowClient()
    marker = Path(args.home) / "populated.json"
    if marker.exists():
        populated = json.loads(marker.read_text())
    else:
        c.progress(f"mlflow: populating {args.search_runs} runs ...")
        start = time.perf_counter()
        stamp = int(time.time() * 1000)
        for i, (params, metrics) in enumerate(c.search_rows(args.search_runs)):
            run = client.create_run(exp_id, run_name=f"run-{i}")
            client.log_batch(
                run.info.run_id,
                metrics=[Metric(k, v, stamp, 0) for k, v in metrics.items()],
                params=[Param(k, v) for k, v in params.items()],
            )
            if i and i % 1000 == 0:
                c.progress(f"mlflow: populated {i} runs ({time.perf_counter() - start:.0f}s)")
        populated = {"runs": args.search_runs, "seconds": time.perf_counter() - start}
        marker.write_text(json.dumps(populated))
    flt = f"metrics.{c.SEARCH_ORDER_KEY} > {c.SEARCH_FILTER_VALUE} AND params.model = '{c.SEARCH_MODEL}'"
    order = [f"metrics.{c.SEARCH_ORDER_KEY} DESC"]
    times = []
    runs = None
    for _ in range(args.search_repeat):
        seconds, runs = c.timed(
            lambda: client.search_runs([exp_id], filter_string=flt, order_by=order, max_results=c.SEARCH_PAGE)
        )
        times.append(seconds)
    got = [r.data.metrics[c.SEARCH_ORDER_KEY] for r in runs]
    correct = got == c.expected_search(populated["runs"])
    return {
        "seconds": c.median(times),
        "times": times,
        "first": times[0],
        "returned": len(got),
        "correct": correct,
        "populate_seconds": populated["seconds"],
        "populated_runs": populated["runs"],
        "filter": flt,
        "api": "MlflowClient.search_runs",
        "unit": "s",
    }


def registry(args) -> dict:
    """``--versions`` versions via mlflow.sklearn.log_model(registered_model_name=...) in a run each; alias; load."""
    import mlflow.pyfunc
    import mlflow.sklearn

    extra = {"pip_requirements": ["scikit-learn"]} if args.variant == "no-infer" else {}
    models, X = c.registry_models(args.versions)
    exp_id = setup(args.home)
    mlflow.set_experiment(experiment_id=exp_id)
    client = MlflowClient()
    start = time.perf_counter()
    for i, model in enumerate(models):
        with mlflow.start_run(run_name=f"train-{i}"):
            info = mlflow.sklearn.log_model(model, name="model", registered_model_name=c.MODEL_NAME, **extra)
    registered = time.perf_counter()
    version = int(info.registered_model_version)
    client.set_registered_model_alias(c.MODEL_NAME, c.ALIAS, str(version))
    aliased = time.perf_counter()
    loaded = mlflow.pyfunc.load_model(f"models:/{c.MODEL_NAME}@{c.ALIAS}")
    predictions = loaded.predict(X)
    end = time.perf_counter()
    correct = bool((predictions == models[-1].predict(X)).all()) and version == args.versions
    return {
        "seconds": end - start,
        "register_seconds": registered - start,
        "alias_seconds": aliased - registered,
        "load_predict_seconds": end - aliased,
        "versions": version,
        "correct": correct,
        "unit": "s",
    }


def _stored_points(home: str) -> int:
    import sqlite3

    with sqlite3.connect(Path(home) / "mlflow.db") as conn:
        return conn.execute("SELECT count(*) FROM metrics").fetchone()[0]


def main() -> None:
    args = c.parse_args()
    variants = {"per_call": {"default", "async", "async-buffered"}, "registry": {"default", "no-infer"}}
    allowed = variants.get(args.workload, {"default"})
    if args.variant not in allowed:
        raise SystemExit(f"mlflow {args.workload} has no variant {args.variant!r}")
    result = {"per_call": per_call, "batched": batched, "search": search, "registry": registry}[args.workload](args)
    result.update(
        tool="mlflow",
        variant=args.variant,
        workload=args.workload,
        versions=c.versions("mlflow", "numpy", "scikit-learn", "SQLAlchemy"),
    )
    c.emit(result)


if __name__ == "__main__":
    main()
