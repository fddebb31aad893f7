"""The prediction log: records go through a background writer to Parquet segments and back via DuckDB."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore
from shipyard.serving.prediction_log import PredictionLog, list_segments, read_predictions
from shipyard.store import Database
from shipyard.store.migrate import alembic_config, current_revision, head_revision
from shipyard.store.schema import journal, prediction_segments

T0 = 1_700_000_000_000


@pytest.fixture(params=["sqlite", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else f"sqlite:///{tmp_path / 'db.sqlite'}"
    database = Database(uri)
    yield database
    database.dispose()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "artifacts")


def _plog(db: Database, artifacts: ArtifactStore, **kwargs) -> PredictionLog:
    kwargs.setdefault("flush_interval", 3600.0)  # tests write with explicit flush()
    return PredictionLog(db, artifacts, **kwargs)


def _record(plog: PredictionLog, request_id: str, n: int = 2, **kwargs) -> bool:
    args = {
        "endpoint": "churn",
        "model": "churn-model",
        "version": 1,
        "variant": "blue",
        "request_id": request_id,
        "inputs": [{"age": 30 + i, "plan": "pro", "active": True} for i in range(n)],
        "outputs": [0.25 * i for i in range(n)],
        "latency_ms": 3.5,
        "routing": {"rule": "canary", "weight": 0.1},
        "ts": T0,
    }
    args.update(kwargs)
    return plog.record(**args)


def test_records_round_trip(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts)
    assert _record(plog, "r1", n=3)
    assert _record(plog, "r2", n=1, ts=T0 + 5, outputs=[{"label": "yes"}], routing=None, variant=None)
    assert plog.flush(timeout=30)
    stats = plog.stats
    assert stats["recorded"] == 4 and stats["written_rows"] == 4 and stats["segments"] == 1
    assert stats["dropped"] == 0 and stats["errors"] == 0 and stats["queued"] == 0

    df = read_predictions(db, artifacts, endpoint="churn")
    assert list(df["prediction_id"]) == ["r1-0", "r1-1", "r1-2", "r2-0"]
    assert list(df["row"]) == [0, 1, 2, 0]
    for column in ("request_id", "endpoint", "model", "version", "variant", "ts", "latency_ms", "routing"):
        assert column in df.columns
    assert list(df["model"].unique()) == ["churn-model"] and list(df["version"].unique()) == [1]
    assert json.loads(df["inputs"][1]) == {"age": 31, "plan": "pro", "active": True}
    assert list(df["in.age"]) == [30.0, 31.0, 32.0, 30.0]
    assert list(df["in.plan"]) == ["pro"] * 4
    assert list(df["prediction"][:3]) == [0.0, 0.25, 0.5]
    assert df["prediction"].isna()[3] and json.loads(df["output"][3]) == {"label": "yes"}
    assert json.loads(df["routing"][0]) == {"rule": "canary", "weight": 0.1}
    assert df["routing"].isna()[3] and df["variant"].isna()[3]
    assert list(df["ts"]) == [T0, T0, T0, T0 + 5]
    plog.close()


def test_segments_split_by_endpoint_version_and_size(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts, segment_rows=3)
    for i in range(4):
        _record(plog, f"a{i}", n=2)  # 8 rows of churn v1 → segments of 3, 3, 2
    _record(plog, "b", n=1, version=2)
    _record(plog, "c", n=1, endpoint="fraud", model="fraud-model")
    assert plog.flush(timeout=30)
    segments = list_segments(db)
    by_key: dict[tuple, list[int]] = {}
    for s in segments:
        by_key.setdefault((s["endpoint"], s["model_name"], s["model_version"]), []).append(s["rows"])
    assert sorted(by_key[("churn", "churn-model", 1)]) == [2, 3, 3]
    assert by_key[("churn", "churn-model", 2)] == [1]
    assert by_key[("fraud", "fraud-model", 1)] == [1]
    assert plog.stats["segments"] == 5 and plog.stats["written_rows"] == 10

    assert len(read_predictions(db, artifacts, endpoint="churn")) == 9
    assert list(read_predictions(db, artifacts, model="churn-model", version=2)["prediction_id"]) == ["b-0"]
    assert list(read_predictions(db, artifacts, endpoint="fraud")["prediction_id"]) == ["c-0"]
    assert len(read_predictions(db, artifacts)) == 10
    plog.close()


def test_time_range_filters_segments_and_rows(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts)
    for i in range(5):
        _record(plog, f"r{i}", n=1, ts=T0 + 1000 * i)
        assert plog.flush(timeout=30)  # one segment per request, so segments are pruned too
    _record(plog, "late", n=1, ts=T0 + 10_000)
    _record(plog, "early", n=1, ts=T0 - 10_000)
    assert plog.flush(timeout=30)  # one segment spanning [T0-10s, T0+10s]

    df = read_predictions(db, artifacts, since=T0 + 1000, until=T0 + 3000)
    assert list(df["prediction_id"]) == ["r1-0", "r2-0"]  # since inclusive, until exclusive
    assert list(read_predictions(db, artifacts, since=T0 + 4000)["prediction_id"]) == ["r4-0", "late-0"]
    assert list(read_predictions(db, artifacts, until=T0)["prediction_id"]) == ["early-0"]
    assert len(list_segments(db, since=T0 + 1000, until=T0 + 3000)) == 3  # r1, r2 and the wide one
    empty = read_predictions(db, artifacts, endpoint="nobody")
    assert empty.empty and "prediction_id" in empty.columns
    plog.close()


class BlockingStore(ArtifactStore):
    """put_bytes waits until the test opens the gate, so the writer is stuck mid-write."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.entered = threading.Event()
        self.gate = threading.Event()

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        self.entered.set()
        assert self.gate.wait(60)
        return super().put_bytes(data)


def test_full_queue_sheds_and_counts_without_blocking(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store = BlockingStore(tmp_path / "artifacts")
    plog = _plog(db, store, max_queue=5, segment_rows=2)
    assert _record(plog, "r0", n=2)  # reaches segment_rows: the writer starts and blocks in put_bytes
    assert store.entered.wait(30)
    assert _record(plog, "r1", n=2)
    assert not _record(plog, "r2", n=2)  # 4 held + 2 > 5: shed whole
    assert _record(plog, "r3", n=1)
    assert not _record(plog, "r4", n=1)
    assert plog.stats["dropped"] == 3 and plog.stats["recorded"] == 5 and plog.stats["queued"] == 5

    store.gate.set()
    assert plog.flush(timeout=30)
    assert plog.stats["written_rows"] == 5 and plog.stats["queued"] == 0
    assert _record(plog, "r5", n=1)  # room again
    plog.close()
    assert not _record(plog, "after-close", n=2)  # closed: shed, counted, no exception
    assert plog.stats["dropped"] == 5
    ids = list(read_predictions(db, store)["prediction_id"])
    assert ids == ["r0-0", "r0-1", "r1-0", "r1-1", "r3-0", "r5-0"]
    db.dispose()


class FailingStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.failing = True

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        if self.failing:
            raise OSError("disk on fire")
        return super().put_bytes(data)


def test_failing_store_counts_errors_and_retries(db: Database, tmp_path: Path) -> None:
    store = FailingStore(tmp_path / "artifacts")
    plog = _plog(db, store, max_queue=4)
    assert _record(plog, "r0", n=2)
    assert not plog.flush(timeout=30)  # the write failed; the rows are kept
    stats = plog.stats
    assert stats["errors"] == 1 and stats["written_rows"] == 0 and stats["queued"] == 2
    assert _record(plog, "r1", n=2)
    assert not _record(plog, "r2", n=1)  # failed rows still count against max_queue: shed
    assert list_segments(db) == []

    store.failing = False
    assert plog.flush(timeout=30)  # retried
    assert plog.stats["written_rows"] == 4 and plog.stats["errors"] == 1 and plog.stats["dropped"] == 1
    assert list(read_predictions(db, store)["prediction_id"]) == ["r0-0", "r0-1", "r1-0", "r1-1"]
    plog.close()


def test_record_never_raises_on_bad_input(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts)
    assert not plog.record(  # type: ignore[arg-type]
        endpoint="e", model="m", version=1, variant=None, request_id="x", inputs=None, outputs=[], latency_ms=1.0
    )
    assert _record(plog, "odd", n=1, inputs=[{"blob": object(), "nested": {"a": [1, 2]}}], outputs=[[0.7]])
    assert plog.flush(timeout=30)
    df = read_predictions(db, artifacts)
    assert list(df["prediction_id"]) == ["odd-0"] and df["prediction"][0] == 0.7
    assert "in.blob" not in df.columns and json.loads(df["inputs"][0])["nested"] == {"a": [1, 2]}
    assert plog.stats["dropped"] == 1
    plog.close()


def test_close_flushes_and_journals(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts)
    _record(plog, "r0", n=3)
    _record(plog, "r1", n=1, version=2)
    assert plog.close(timeout=30)
    assert plog.stats["written_rows"] == 4 and plog.stats["segments"] == 2
    with db.read() as conn:
        entries = conn.execute(
            sa.select(journal).where(journal.c.action == "prediction_segment.written").order_by(journal.c.seq)
        ).all()
        rows = conn.execute(sa.select(prediction_segments)).all()
    assert len(entries) == 2 and {e.entity_id for e in entries} == {r.id for r in rows}
    assert all(e.entity_type == "prediction_segment" and e.actor == "prediction-log" for e in entries)
    after = {e.payload["after"]["model_version"]: e.payload["after"] for e in entries}
    assert after[1]["rows"] == 3 and after[1]["digest"].startswith("sha256:") and after[1]["first_ts"] == T0
    assert artifacts.has(after[2]["digest"])


class SignallingStore(ArtifactStore):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.written = threading.Event()

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        result = super().put_bytes(data)
        self.written.set()
        return result


def test_interval_writes_without_explicit_flush(tmp_path: Path) -> None:
    """A small group is written once its oldest row is flush_interval old, with no flush() call."""
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store = SignallingStore(tmp_path / "artifacts")
    plog = PredictionLog(db, store, flush_interval=0.05)
    _record(plog, "r0", n=1)
    assert store.written.wait(30)
    assert plog.close(timeout=30)
    assert plog.stats["written_rows"] == 1 and plog.stats["segments"] == 1
    db.dispose()


def test_reads_through_arrow_for_remote_stores(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store = ArtifactStore(f"memory://prediction-log-{uuid.uuid4().hex}")
    assert not store.is_local
    plog = _plog(db, store)
    _record(plog, "a", n=1, inputs=[{"x": 1}])
    assert plog.flush(timeout=30)
    _record(plog, "b", n=1, inputs=[{"x": "text", "y": 2}], ts=T0 + 1)  # conflicting type across segments
    assert plog.close(timeout=30)
    df = read_predictions(db, store)
    assert list(df["prediction_id"]) == ["a-0", "b-0"]
    assert {"in.x", "in.y"} <= set(df.columns)
    db.dispose()


def test_migration_from_0002_to_0003(tmp_path: Path) -> None:
    from alembic import command

    uri = f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(uri)
    cfg = alembic_config()
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")
    assert current_revision(db.engine) == "0002"
    assert not sa.inspect(db.engine).has_table("prediction_segments")
    db.dispose()

    db = Database(uri)  # opening an old database migrates it
    assert current_revision(db.engine) == head_revision()
    inspector = sa.inspect(db.engine)
    assert inspector.has_table("prediction_segments")
    assert {ix["name"] for ix in inspector.get_indexes("prediction_segments")} == {
        "ix_prediction_segments_endpoint_first_ts",
        "ix_prediction_segments_model_name_model_version",
    }
    db.dispose()


def test_migration_matches_schema(db: Database) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from shipyard.store.schema import metadata

    with db.engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    mine = [d for d in diffs if "prediction_segments" in repr(d)]
    assert mine == []


def test_unloggable_request_is_shed_not_wedged(db: Database, artifacts: ArtifactStore) -> None:
    plog = _plog(db, artifacts, max_queue=3)
    assert _record(plog, "bad", n=2, latency_ms="slow")  # accepted cheaply, rejected by the writer
    assert _record(plog, "big", n=1, inputs=[{"huge": 10**400}], outputs=[10**400])
    assert plog.flush(timeout=30)
    assert plog.stats["dropped"] == 2 and plog.stats["queued"] == 0 and plog.stats["errors"] == 0
    df = read_predictions(db, artifacts)
    assert list(df["prediction_id"]) == ["big-0"] and df["prediction"].isna()[0] and "in.huge" not in df.columns
    assert _record(plog, "ok", n=3)  # the room came back
    plog.close()
