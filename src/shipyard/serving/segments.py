"""The prediction log's index in the store: one row per Parquet segment, written through the service
layer so a remote inference server registers its segments over the API like an embedded one."""

from __future__ import annotations

import sqlalchemy as sa
from pydantic import BaseModel

from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import normalize_digest
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.store.database import Database
from shipyard.store.schema import prediction_segments

ACTOR = "prediction-log"


class PredictionSegment(BaseModel):
    id: str
    endpoint: str
    model_name: str
    model_version: int
    digest: str
    rows: int
    first_ts: int
    last_ts: int
    created_at: int


class PredictionSegmentService:
    def __init__(self, db: Database):
        self.db = db

    def record_segment(
        self,
        endpoint: str,
        model_name: str,
        model_version: int,
        digest: str,
        rows: int,
        first_ts: int,
        last_ts: int,
    ) -> PredictionSegment:
        """Index a Parquet segment already stored in the artifact store (journaled)."""
        check_name(endpoint, "endpoint name")
        digest = normalize_digest(digest)
        if rows < 1 or first_ts > last_ts:
            raise InvalidInput("a segment holds at least one row and first_ts <= last_ts", field="rows")
        values = {
            "id": new_id(),
            "endpoint": endpoint,
            "model_name": model_name,
            "model_version": int(model_version),
            "digest": digest,
            "rows": int(rows),
            "first_ts": int(first_ts),
            "last_ts": int(last_ts),
            "created_at": now_ms(),
        }
        with self.db.write(ACTOR) as tx:
            tx.conn.execute(prediction_segments.insert().values(**values))
            payload = {k: v for k, v in values.items() if k not in ("id", "created_at")}
            tx.journal("prediction_segment.written", "prediction_segment", values["id"], {"after": payload})
        return PredictionSegment(**values)

    def list_segments(
        self,
        endpoint: str | None = None,
        model: str | None = None,
        version: int | None = None,
        since: int | None = None,
        until: int | None = None,
    ) -> list[PredictionSegment]:
        """Segments that may hold predictions of the selection in ``[since, until)`` (epoch ms)."""
        t = prediction_segments
        query = sa.select(t).order_by(t.c.first_ts, t.c.created_at)
        if endpoint is not None:
            query = query.where(t.c.endpoint == endpoint)
        if model is not None:
            query = query.where(t.c.model_name == model)
        if version is not None:
            query = query.where(t.c.model_version == int(version))
        if since is not None:
            query = query.where(t.c.last_ts >= int(since))
        if until is not None:
            query = query.where(t.c.first_ts < int(until))
        with self.db.read() as conn:
            return [PredictionSegment(**row._mapping) for row in conn.execute(query)]
