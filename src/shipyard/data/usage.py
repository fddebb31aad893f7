"""The edges of data lineage: which run, pipeline run, step run or model version read or wrote a dataset version.

Both functions work inside a caller's transaction or connection, so a service records lineage in
the same transaction as the change that caused it.
"""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from shipyard.core.time import now_ms
from shipyard.store import schema as t
from shipyard.store.database import Tx

CONSUMER_TYPES = ("run", "pipeline_run", "step_run", "model_version")
ROLES = ("input", "output")


def record_usage(tx: Tx, dataset_version_id: str, consumer_type: str, consumer_id: str, role: str = "input") -> bool:
    """Add one edge (idempotent); returns True when it is new, and journals it."""
    assert consumer_type in CONSUMER_TYPES and role in ROLES, (consumer_type, role)
    key = {
        "dataset_version_id": dataset_version_id,
        "consumer_type": consumer_type,
        "consumer_id": consumer_id,
        "role": role,
    }
    exists = tx.conn.execute(
        sa.select(sa.literal(1)).select_from(t.data_usages).where(*(t.data_usages.c[k] == v for k, v in key.items()))
    ).first()
    if exists:
        return False
    tx.conn.execute(t.data_usages.insert().values(**key, created_at=now_ms()))
    tx.journal("dataset_version.used", "dataset_version", dataset_version_id, {"after": key})
    return True


def dataset_versions_of(
    conn: sa.Connection, consumer_type: str, consumer_ids: Iterable[str], role: str | None = None
) -> list[str]:
    """Ids of the dataset versions the given consumers used (in ``role``, or any), oldest edge first."""
    ids = list(consumer_ids)
    if not ids:
        return []
    query = (
        sa.select(t.data_usages.c.dataset_version_id)
        .where(t.data_usages.c.consumer_type == consumer_type, t.data_usages.c.consumer_id.in_(ids))
        .order_by(t.data_usages.c.created_at)
    )
    if role is not None:
        query = query.where(t.data_usages.c.role == role)
    return list(dict.fromkeys(row[0] for row in conn.execute(query)))


def training_inputs_of_run(conn: sa.Connection, run_id: str) -> list[str]:
    """Dataset versions behind a tracking run: read by it, by its parent run, and — when it is a pipeline
    step's run — by any step of that pipeline run (the data is often loaded one step before training)."""
    parent = conn.execute(sa.select(t.runs.c.parent_run_id).where(t.runs.c.id == run_id)).scalar_one_or_none()
    run_ids = [run_id] + ([parent] if parent else [])
    step_rows = conn.execute(
        sa.select(t.step_runs.c.id, t.step_runs.c.pipeline_run_id).where(t.step_runs.c.run_id == run_id)
    ).all()
    pipeline_run_ids = {row.pipeline_run_id for row in step_rows}
    pipeline_run_ids |= set(
        conn.execute(sa.select(t.pipeline_runs.c.id).where(t.pipeline_runs.c.run_id.in_(run_ids))).scalars()
    )
    found = dataset_versions_of(conn, "run", run_ids, role="input")
    found += dataset_versions_of(conn, "step_run", [row.id for row in step_rows], role="input")
    found += dataset_versions_of(conn, "pipeline_run", sorted(pipeline_run_ids), role="input")
    return list(dict.fromkeys(found))


def version_refs(conn: sa.Connection, dataset_version_ids: Iterable[str]) -> dict[str, str]:
    """``{dataset_version_id: "NAME@N"}`` for the given ids."""
    ids = list(dataset_version_ids)
    if not ids:
        return {}
    rows = conn.execute(
        sa.select(t.dataset_versions.c.id, t.datasets.c.name, t.dataset_versions.c.version)
        .join(t.datasets, t.datasets.c.id == t.dataset_versions.c.dataset_id)
        .where(t.dataset_versions.c.id.in_(ids))
    )
    return {row.id: f"{row.name}@{row.version}" for row in rows}
