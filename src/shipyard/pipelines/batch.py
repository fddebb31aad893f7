"""Batch inference: score a dataset version with a registered model on Dask, write a new dataset version.

The dataset's files are split into partitions (one per file, or per group of Parquet row groups),
and each partition is a Dask task: the worker builds its own Client from the caller's settings,
loads the model (digest-verified, cached per worker process), reads its slice from the artifact
store, predicts, and stores the scored slice as a Parquet object. No bytes pass through the
scheduler, so the work scales with the cluster. The caller then registers the scored files as a
new dataset version whose parent is the input and whose producing run records the model version
— lineage to both.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shipyard.core.errors import InvalidInput
from shipyard.core.names import check_name

EXPERIMENT = "batch-scoring"
TABULAR = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}
ROWS_PER_PARTITION = 250_000
EXECUTORS = ("dask", "inprocess")


@dataclass(frozen=True)
class Partition:
    index: int
    path: str  # the file's path inside the dataset tree
    digest: str
    fmt: str
    row_groups: tuple[int, ...] | None = None  # Parquet row groups of this slice (None: the whole file)


class BatchResult(BaseModel):
    model_uri: str
    input_ref: str
    output_ref: str
    run_id: str
    rows: int
    partitions: int
    executor: str


# -- the task each worker runs --------------------------------------------------------------

_worker_state: dict[str, Any] = {}


def _worker_client(settings: dict[str, Any]) -> Any:
    from shipyard import Client

    key = repr(sorted(settings.items()))
    if _worker_state.get("key") != key:
        _worker_state.clear()
        _worker_state["key"] = key
        _worker_state["client"] = Client(
            settings["remote_uri"], home=settings["home"], store_uri=settings["store_uri"],
            artifact_uri=settings["artifact_uri"],
        )  # fmt: skip
    return _worker_state["client"]


def _worker_model(client: Any, digest: str) -> Any:
    from shipyard.registry.flavors import load_model

    models = _worker_state.setdefault("models", {})
    if digest not in models:
        models[digest] = load_model(client.materialize_model(digest))
    return models[digest]


def read_partition(client: Any, part: Partition) -> Any:
    import pandas as pd
    import pyarrow.parquet as pq

    data = client.artifacts.read_bytes(part.digest)
    if part.fmt == "parquet":
        parquet = pq.ParquetFile(io.BytesIO(data))
        table = parquet.read_row_groups(list(part.row_groups)) if part.row_groups is not None else parquet.read()
        return table.to_pandas()
    if part.fmt == "csv":
        return pd.read_csv(io.BytesIO(data))
    return pd.read_json(io.BytesIO(data), lines=True)


def score_partition(
    settings: dict[str, Any], model_digest: str, part: Partition, prediction_column: str, proba: bool
) -> dict[str, Any]:
    """Score one partition; returns the stored Parquet object of the scored rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    client = _worker_client(settings)
    model = _worker_model(client, model_digest)
    frame = read_partition(client, part)
    scored = frame.copy()
    scored[prediction_column] = model.predict(frame)
    if proba:
        if not hasattr(model, "predict_proba"):
            raise InvalidInput("the model has no predict_proba; drop --proba", field="proba")
        probabilities = model.predict_proba(frame)
        for i in range(probabilities.shape[1]):
            scored[f"{prediction_column}_proba_{i}"] = probabilities[:, i]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(scored, preserve_index=False), buffer, compression="zstd")
    digest, size = client.artifacts.put_bytes(buffer.getvalue())
    return {"index": part.index, "digest": digest, "size": size, "rows": len(scored)}


# -- the caller's side -----------------------------------------------------------------------


def plan_partitions(client: Any, tree_digest: str, rows_per_partition: int = ROWS_PER_PARTITION) -> list[Partition]:
    """One partition per tabular file; Parquet files are cut at row-group boundaries."""
    import pyarrow.parquet as pq

    from shipyard.artifacts import read_manifest

    parts: list[Partition] = []
    for rel, entry in sorted(read_manifest(client.artifacts, tree_digest)["entries"].items()):
        fmt = TABULAR.get(Path(rel).suffix.lower())
        if fmt is None:
            continue
        if fmt != "parquet":
            parts.append(Partition(len(parts), rel, entry["digest"], fmt))
            continue
        metadata = pq.ParquetFile(io.BytesIO(client.artifacts.read_bytes(entry["digest"]))).metadata
        group: list[int] = []
        rows = 0
        for index in range(metadata.num_row_groups):
            group.append(index)
            rows += metadata.row_group(index).num_rows
            if rows >= rows_per_partition:
                parts.append(Partition(len(parts), rel, entry["digest"], fmt, tuple(group)))
                group, rows = [], 0
        if group or metadata.num_row_groups == 0:
            parts.append(Partition(len(parts), rel, entry["digest"], fmt, tuple(group) if group else None))
    if not parts:
        raise InvalidInput("the dataset has no tabular files (Parquet, CSV or JSON lines) to score", field="dataset")
    return parts


def _settings_of(client: Any) -> dict[str, Any]:
    s = client.settings
    return {
        "home": str(s.home),
        "store_uri": None if s.is_remote else s.store_uri,
        "artifact_uri": None if s.is_remote else s.artifact_uri,
        "remote_uri": s.remote_uri,
    }


def _run_tasks(
    tasks: list[tuple[Any, ...]], executor: str, address: str | None, progress: Callable[[int, int], None] | None
) -> list[dict[str, Any]]:
    if executor == "inprocess":
        results = []
        for done, task in enumerate(tasks, 1):
            results.append(score_partition(*task))
            if progress is not None:
                progress(done, len(tasks))
        return results
    from distributed import Client as DaskClient
    from distributed import LocalCluster, as_completed

    cluster = None
    if address is None:
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    dask = DaskClient(address or cluster)
    try:
        futures = [dask.submit(score_partition, *task, pure=False) for task in tasks]
        results = []
        for done, future in enumerate(as_completed(futures), 1):
            results.append(future.result())
            if progress is not None:
                progress(done, len(tasks))
        return results
    finally:
        dask.close()
        if cluster is not None:
            cluster.close()


def batch_score(
    client: Any,
    model_uri: str,
    dataset: str,
    output: str,
    *,
    executor: str = "dask",
    address: str | None = None,
    prediction_column: str = "prediction",
    proba: bool = False,
    rows_per_partition: int = ROWS_PER_PARTITION,
    progress: Callable[[int, int], None] | None = None,
) -> BatchResult:
    """Score ``dataset`` (``NAME@VERSION``) with ``model_uri`` and register the result as dataset ``output``."""
    from shipyard.artifacts import materialize_tree, put_manifest

    if executor not in EXECUTORS:
        raise InvalidInput(f"executor must be {' or '.join(EXECUTORS)}, not {executor!r}", field="executor")
    check_name(output, "output dataset name")
    version = client.resolve_model(model_uri)
    source = client.get_dataset(dataset)
    parts = plan_partitions(client, source.digest, rows_per_partition)
    pinned_model = f"models:/{version.model_name}/{version.version}"
    experiment = client.get_or_create_experiment(EXPERIMENT)
    run = client.create_run(experiment.id, f"score-{source.name}-with-{version.model_name}")
    try:
        client.log_params(
            run.id, {"model": pinned_model, "model_digest": version.digest, "input": source.ref, "executor": executor}
        )
        client.record_dataset_usage(source.ref, "run", run.id, "input")
        settings = _settings_of(client)
        tasks = [(settings, version.digest, part, prediction_column, proba) for part in parts]
        results = sorted(_run_tasks(tasks, executor, address, progress), key=lambda r: r["index"])
        width = max(5, len(str(len(results))))
        tree = put_manifest(
            client.artifacts, {f"part-{r['index']:0{width}d}.parquet": (r["digest"], r["size"]) for r in results}
        )
        with tempfile.TemporaryDirectory(prefix="shipyard-scored-") as tmp:
            materialize_tree(client.artifacts, tree.digest, tmp, link=True)
            scored = client.log_dataset(
                tmp,
                name=output,
                description=f"{source.ref} scored by {pinned_model}",
                parents=[source.ref],
                run_id=run.id,
            )
        rows = sum(r["rows"] for r in results)
        client.log_metrics(run.id, {"rows": rows, "partitions": len(parts)})
        client.set_tags(run.id, {"shipyard.batch.output": scored.ref, "shipyard.batch.model": pinned_model})
        client.end_run(run.id)
    except BaseException:
        client.end_run(run.id, "FAILED")
        raise
    return BatchResult(
        model_uri=pinned_model,
        input_ref=source.ref,
        output_ref=scored.ref,
        run_id=run.id,
        rows=rows,
        partitions=len(parts),
        executor=executor,
    )
