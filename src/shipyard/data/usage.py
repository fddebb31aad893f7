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
