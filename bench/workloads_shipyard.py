"""Shipyard side of the benchmark: ``python bench/workloads_shipyard.py WORKLOAD --home DIR [sizes]``.

Runs in the project venv on an embedded store (``Client(home=DIR)``: SQLite + local artifact
files) and prints one JSON line. ``bench/run.py`` drives it; see docs/benchmarks.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import common as c

import shipyard
from shipyard import Client


def per_call(args) -> dict:
    """One ``log_metric`` call per point; each run timed from its first call until ``end_run`` returns.

    ``log_metric`` queues the point and a background thread writes batches; ``end_run`` flushes
    the queue, so every point is stored when the run's timer stops. Run creation is not timed.
    """
    keys = c.metric_keys(args.metrics)
    values = c.step_values(args.steps, len(keys))
    client = Client(home=args.home)
    exp = client.create_experiment(c.EXPERIMENT)
    elapsed = 0.0
    for r in range(args.runs):
        run = client.create_run(exp.id, f"run-{r}")
        rid = run.id
        start = time.perf_counter()
        for step in range(args.steps):
            row = values[step]
            for k, key in enumerate(keys):
                client.log_metric(rid, key, row[k], step)
        client.end_run(rid)
        elapsed += time.perf_counter() - start
    points = args.runs * args.steps * len(keys)
    stored = _stored_points(client, exp.id)
    client.close()
    return {"seconds": elapsed, "points": points, "stored": stored, "rate": points / elapsed, "unit": "points/s"}


def batched(args) -> dict:
    """``log_batch`` with ``--batch`` points per call; each run timed from its first call to ``end_run``.

    By default ``log_batch`` validates the points and hands them to the same background queue as
    ``log_metric`` (``end_run`` flushes it); variant ``sync`` passes ``synchronous=True``, one
    transaction per call like MLflow's ``MlflowClient.log_batch``.
    """
    sync = args.variant == "sync"
    keys = c.metric_keys(args.metrics)
    values = c.step_values(args.steps, len(keys))
    client = Client(home=args.home)
    exp = client.create_experiment(c.EXPERIMENT)
    elapsed = 0.0
    calls = 0
    for r in range(args.runs):
        run = client.create_run(exp.id, f"run-{r}")
        rid = run.id
        start = time.perf_counter()
        buffer: list[tuple[str, float, int]] = []
        for step in range(args.steps):
            row = values[step]
            for k, key in enumerate(keys):
                buffer.append((key, row[k], step))
                if len(buffer) >= args.batch:
                    client.log_batch(rid, metrics=buffer, synchronous=sync)
                    calls += 1
                    buffer = []
        if buffer:
            client.log_batch(rid, metrics=buffer, synchronous=sync)
            calls += 1
        client.end_run(rid)
        elapsed += time.perf_counter() - start
    points = args.runs * args.steps * len(keys)
    stored = _stored_points(client, exp.id)
    client.close()
    return {
        "seconds": elapsed,
        "points": points,
        "stored": stored,
        "calls": calls,
        "rate": points / elapsed,
        "unit": "points/s",
    }


def search(args) -> dict:
    """Populate ``--search-runs`` runs once per home (cached), then time ``search_runs`` repeatedly."""
    client = Client(home=args.home)
    marker = Path(args.home) / "populated.json"
    if marker.exists():
        populated = json.loads(marker.read_text())
    else:
        c.progress(f"shipyard: populating {args.search_runs} runs ...")
        start = time.perf_counter()
        exp = client.create_experiment(c.EXPERIMENT)
        for i, (params, metrics) in enumerate(c.search_rows(args.search_runs)):
            run = client.create_run(exp.id, f"run-{i}", capture_environment=False)
            client.log_batch(run.id, metrics=[(k, v, 0) for k, v in metrics.items()], params=params)
        populated = {"runs": args.search_runs, "seconds": time.perf_counter() - start}
        marker.write_text(json.dumps(populated))
    flt = f"metrics.{c.SEARCH_ORDER_KEY} > {c.SEARCH_FILTER_VALUE} and params.model = '{c.SEARCH_MODEL}'"
    order = [f"metrics.{c.SEARCH_ORDER_KEY} DESC"]
    times = []
    page = None
    for _ in range(args.search_repeat):
        seconds, page = c.timed(
            lambda: client.search_runs([c.EXPERIMENT], filter=flt, order_by=order, max_results=c.SEARCH_PAGE)
        )
        times.append(seconds)
    got = [r.metrics[c.SEARCH_ORDER_KEY] for r in page.runs]
    correct = got == c.expected_search(populated["runs"])
    client.close()
    return {
        "seconds": c.median(times),
        "times": times,
        "first": times[0],
        "returned": len(got),
        "correct": correct,
        "populate_seconds": populated["seconds"],
        "populated_runs": populated["runs"],
        "filter": flt,
        "api": "Client.search_runs",
        "unit": "s",
    }


def registry(args) -> dict:
    """``--versions`` versions via log_model(registered_model_name=...) in a run each; alias; load; predict."""
    models, X = c.registry_models(args.versions)
    client = Client(home=args.home)
    exp = client.create_experiment(c.EXPERIMENT)
    start = time.perf_counter()
    version = None
    for i, model in enumerate(models):
        run = client.create_run(exp.id, f"train-{i}")
        version = client.log_model(run.id, model, "model", registered_model_name=c.MODEL_NAME)
        client.end_run(run.id)
    registered = time.perf_counter()
    client.set_alias(c.MODEL_NAME, c.ALIAS, version.version)
    aliased = time.perf_counter()
    loaded = client.load_model(f"models:/{c.MODEL_NAME}@{c.ALIAS}")
    predictions = loaded.predict(X)
    end = time.perf_counter()
    correct = bool((predictions == models[-1].predict(X)).all()) and version.version == args.versions
    client.close()
    return {
        "seconds": end - start,
        "register_seconds": registered - start,
        "alias_seconds": aliased - registered,
        "load_predict_seconds": end - aliased,
        "versions": version.version,
        "correct": correct,
        "unit": "s",
    }


def _stored_points(client: Client, exp_id: str) -> int:
    """Count the stored points straight from the database (a correctness check, not timed)."""
    import sqlalchemy as sa

    services = client._backend.services
    with services.db.read() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM metrics")).scalar_one()


def main() -> None:
    args = c.parse_args()
    allowed = {"batched": {"default", "sync"}}.get(args.workload, {"default"})
    if args.variant not in allowed:
        raise SystemExit(f"shipyard {args.workload} has no variant {args.variant!r}")
    result = {"per_call": per_call, "batched": batched, "search": search, "registry": registry}[args.workload](args)
    result.update(
        tool="shipyard",
        variant=args.variant,
        workload=args.workload,
        versions=c.versions("shipyard", "numpy", "scikit-learn", "SQLAlchemy"),
        module=str(Path(shipyard.__file__).parent),
    )
    c.emit(result)


if __name__ == "__main__":
    main()
