"""Writing test runs straight into the store tables, and searching them."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from shipyard.store import Database
from shipyard.store.schema import experiments, latest_metrics, params, runs, tags
from shipyard.tracking.search import build_search_query


@dataclass
class RunRow:
    """One run as the tests describe it; ``insert_runs`` writes it into the store tables."""

    id: str
    name: str = "run"
    status: str = "FINISHED"
    user: str = "alice"
    start_time: int = 1_000
    end_time: int | None = None
    parent_run_id: str | None = None
    description: str | None = None
    lifecycle: str = "active"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def new_experiment(db: Database) -> str:
    experiment_id = uuid.uuid4().hex
    with db.write() as tx:
        tx.conn.execute(
            experiments.insert().values(id=experiment_id, name=f"exp-{experiment_id}", created_at=0, updated_at=0)
        )
    return experiment_id


def insert_runs(db: Database, experiment_id: str, rows: Sequence[RunRow]) -> None:
    """Insert runs (parents before children, as the foreign key wants) with their values."""
    ordered = sorted(rows, key=lambda r: r.parent_run_id is not None)
    run_rows = [
        {
            "id": r.id,
            "experiment_id": experiment_id,
            "parent_run_id": r.parent_run_id,
            "name": r.name,
            "description": r.description,
            "status": r.status,
            "user": r.user,
            "start_time": r.start_time,
            "end_time": r.end_time,
            "lifecycle": r.lifecycle,
        }
        for r in ordered
    ]
    metric_rows = [
        {
            "run_id": r.id,
            "key": k,
            "value": None if math.isnan(v) else v,
            "is_nan": math.isnan(v),
            "step": 0,
            "timestamp": 0,
        }
        for r in rows
        for k, v in r.metrics.items()
    ]
    param_rows = [{"run_id": r.id, "key": k, "value": v} for r in rows for k, v in r.params.items()]
    tag_rows = [
        {"entity_type": "run", "entity_id": r.id, "key": k, "value": v} for r in rows for k, v in r.tags.items()
    ]
    with db.write() as tx:
        tx.conn.execute(runs.insert(), run_rows)
        for table, table_rows in ((latest_metrics, metric_rows), (params, param_rows), (tags, tag_rows)):
            if table_rows:
                tx.conn.execute(table.insert(), table_rows)


def search(
    db: Database,
    experiment_id: str | list[str] | None,
    filter_text: str | None = None,
    order_by: list[str] | None = None,
    include_deleted: bool = False,
) -> list[str]:
    ids = [experiment_id] if isinstance(experiment_id, str) else experiment_id
    query = build_search_query(ids, filter_text, order_by, include_deleted)
    with db.read() as conn:
        return list(conn.execute(query).scalars())
