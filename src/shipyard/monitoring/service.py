"""The monitoring service: monitors over the prediction log, ground truth by prediction id, stored
windows as time series, alert rules with their alerts, and retraining triggers.

A run (:meth:`MonitoringService.run_monitor`) cuts the complete windows since the monitor's cursor
(aligned time windows, or N predictions), computes each one's profile and metrics
(:mod:`shipyard.monitoring.compute`), recomputes earlier windows whose labels arrived since, then
judges the alert rules. Every state change is journaled in its own transaction: monitor.created,
monitor.ran, labels.recorded, alert_rule.created/deleted, alert.fired/acknowledged/resolved/triggered.

Longer windows (a report's ``1d``, a rule's ``window``) merge the stored window profiles rather
than re-reading raw rows, so their cost does not grow with traffic.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore
from shipyard.core.errors import InvalidInput, NotFound
from shipyard.core.ids import new_id
from shipyard.core.names import check_name, check_text
from shipyard.core.settings import Settings
from shipyard.core.time import now_ms
from shipyard.monitoring import compute, notify, rules
from shipyard.monitoring.compute import LABEL, Context
from shipyard.monitoring.drift import compare
from shipyard.monitoring.entities import (
    SEVERITIES,
    Alert,
    AlertRule,
    LabelReceipt,
    MetricSeries,
    Monitor,
    MonitorReport,
    MonitorRun,
    SeriesPoint,
    WindowResult,
)
from shipyard.monitoring.profiles import Profile, ReferenceBins
from shipyard.monitoring.windows import parse_duration_ms, parse_window, time_windows
from shipyard.store import schema as t
from shipyard.store.database import Database

log = logging.getLogger("shipyard.monitoring")
Source = Callable[[], Iterable[pd.DataFrame]]  # reads a window's rows, in batches, each time it is called

GRACE_MS = 5_000  # a window is computed once it ended this long ago (the log flushes every ~2 s)
LABEL_HORIZON_MS = 30 * 86_400_000  # labels later than this no longer change stored windows
MAX_SEGMENTS = 20  # per segment column, the most frequent values get their own series
ID_CHUNK = 900  # ids per IN (...) query: below SQLite's variable limit
HISTORY_WINDOWS = 200  # earlier windows a rule sees (dynamic history, longer rule windows)
TRACKED_SEGMENTS = 100  # per segment column, values tracked while streaming (the top MAX_SEGMENTS are kept)
BATCH_ROWS = 100_000  # rows per batch read from the log
LOG_SEGMENTS = ("version", "variant", "endpoint")  # segment_by may name these log columns too

DEFAULT_OPTIONS: dict[str, Any] = {
    "method": None,  # drift metric per kind (see drift.py); a name or {column: name}
    "thresholds": None,  # calibrated on the reference unless given
    "tests": False,  # add p-values (KS / chi-squared)
    "multivariate": "on_drift",  # always | on_drift | never
    "estimate": True,
    "importance": True,
    "grace_ms": GRACE_MS,
    "backfill": "7d",  # how far back the first run looks in the prediction log
}


class MonitoringService:
    def __init__(self, db: Database, artifacts: ArtifactStore, settings: Settings):
        self.db = db
        self.artifacts = artifacts
        self.settings = settings
        self._client_obj: Any = None
        self._models: dict[str, Any] = {}
        self._samples: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def embedded_client(self) -> Any:
        """An embedded :class:`~shipyard.client.Client` over this store, for what the SDK already does
        well (load a dataset, a model; run a pipeline). The server runs it too, so both modes run the
        same code. One per service, created on first use and closed by :meth:`close`; other services
        (evaluations) use it the same way rather than opening their own."""
        with self._lock:
            if self._client_obj is None:
                from shipyard.client import Client

                s = self.settings
                self._client_obj = Client("", home=s.home, store_uri=s.store_uri, artifact_uri=s.artifact_uri)
            return self._client_obj

    def close(self) -> None:
        with self._lock:
            if self._client_obj is not None:
                self._client_obj.close()
                self._client_obj = None

    # ------------------------------------------------------------------------------------------ monitors

    def create_monitor(
        self,
        name: str,
        endpoint: str | None = None,
        model: str | None = None,
        reference: str | None = None,
        window: str = "1h",
        columns: list[str] | None = None,
        segment_by: list[str] | None = None,
        label_column: str | None = None,
        task: str | None = None,
        schedule_seconds: float | None = None,
        options: dict[str, Any] | None = None,
    ) -> Monitor:
        """Watch an endpoint's predictions (or a model's, batch-logged included) against a reference.

        ``model`` is ``NAME`` (every version; the latest one's lineage is the reference) or
        ``NAME/3`` / ``models:/NAME@alias`` (that version). ``reference`` defaults to the training
        data in the version's lineage; see :mod:`shipyard.monitoring.reference`.
        """
        from shipyard.monitoring.reference import build_reference, sample_to_bytes

        check_name(name, "monitor name")
        if (endpoint is None) == (model is None):
            raise InvalidInput("give an endpoint or a model to monitor (one of them)", field="endpoint")
        spec = parse_window(window)
        if schedule_seconds is not None and not (schedule_seconds > 0):
            raise InvalidInput("schedule_seconds must be positive", field="schedule_seconds")
        opts = {**DEFAULT_OPTIONS, **(options or {})}
        if opts["multivariate"] not in ("always", "on_drift", "never"):
            raise InvalidInput("options.multivariate is always, on_drift or never", field="options.multivariate")
        parse_duration_ms(str(opts["backfill"]), "options.backfill")
        segment_by = list(segment_by or [])
        with self.db.read() as conn:
            if conn.execute(sa.select(t.monitors.c.id).where(t.monitors.c.name == name)).first():
                from shipyard.core.errors import AlreadyExists

                raise AlreadyExists(f"monitor {name!r} already exists")
        client = self.embedded_client()
        model_name, pinned, version = self._resolve_model(client, endpoint, model)
        loaded = self._load_model(client, version)
        ref = build_reference(
            client,
            version,
            loaded,
            reference,
            list(columns) if columns is not None else None,
            label_column,
            task,
            lambda since, until: self._read(endpoint, model_name, pinned, since, until),
        )
        bad = [c for c in segment_by if not isinstance(c, str) or not c]
        if bad:
            raise InvalidInput("segment_by takes input column names", field="segment_by")
        digest, _ = self.artifacts.put_bytes(sample_to_bytes(ref.sample))
        now = now_ms()
        values = {
            "id": new_id(),
            "name": name,
            "endpoint": endpoint,
            "model": model_name,
            "version": pinned,
            "task": ref.task,
            "reference": {**ref.spec, "version": version.version, "sample": digest, "classes": ref.classes},
            "window": spec,
            "columns": ref.columns,
            "segment_by": segment_by,
            "options": opts,
            "bins": ref.bins.to_dict(),
            "reference_profile": ref.profile.to_dict(),
            "schedule_seconds": schedule_seconds,
            "cursor": {},
            "last_run_at": None,
            "created_at": now,
            "updated_at": now,
        }
        with self.db.write() as tx:
            tx.conn.execute(t.monitors.insert().values(**values, created_by=tx.actor))
            tx.journal(
                "monitor.created",
                "monitor",
                values["id"],
                {
                    k: values[k]
                    for k in ("name", "endpoint", "model", "version", "task", "reference", "window", "columns")
                },
            )
        return self.get_monitor(name)

    def _resolve_model(self, client: Any, endpoint: str | None, model: str | None) -> tuple[str, int | None, Any]:
        if endpoint is not None:
            with self.db.read() as conn:
                row = conn.execute(sa.select(t.endpoints).where(t.endpoints.c.name == endpoint)).first()
            if row is None:
                raise NotFound(f"endpoint {endpoint!r} does not exist")
            version = client.get_version(row.model_name, row.model_version)
            return row.model_name, None, version
        assert model is not None
        text = model[len("models:/") :] if model.startswith("models:/") else model
        if "/" in text or "@" in text:
            version = client._backend.services.registry.resolve(f"models:/{text}")
            return version.model_name, version.version, version
        versions = client.list_versions(text)
        if not versions:
            raise NotFound(f"model {text!r} has no versions")
        # every version is watched; the reference is the lineage of the newest version that has one
        newest = sorted(versions, key=lambda v: -v.version)
        return text, None, next((v for v in newest if v.data_refs), newest[0])

    def _load_model(self, client: Any, version: Any) -> Any:
        key = version.digest
        if key not in self._models:
            try:
                self._models[key] = client.load_model(version.uri)
            except Exception as exc:  # monitoring works without the model, minus estimates and importances
                log.warning("monitor: cannot load %s (%s); no estimate or importances", version.uri, exc)
                self._models[key] = None
        return self._models[key]

    def get_monitor(self, name: str) -> Monitor:
        with self.db.read() as conn:
            return _monitor(self._monitor_row(conn, name))

    def list_monitors(self) -> list[Monitor]:
        with self.db.read() as conn:
            return [_monitor(r) for r in conn.execute(sa.select(t.monitors).order_by(t.monitors.c.name))]

    def delete_monitor(self, name: str) -> None:
        """Delete a monitor with its windows, rules and alerts (the journal keeps the record)."""
        with self.db.write() as tx:
            row = self._monitor_row(tx.conn, name)
            rule_ids = sa.select(t.alert_rules.c.id).where(t.alert_rules.c.monitor_id == row.id)
            tx.conn.execute(t.alerts.delete().where(t.alerts.c.rule_id.in_(rule_ids)))
            tx.conn.execute(t.alert_rules.delete().where(t.alert_rules.c.monitor_id == row.id))
            tx.conn.execute(t.monitor_windows.delete().where(t.monitor_windows.c.monitor_id == row.id))
            tx.conn.execute(t.monitors.delete().where(t.monitors.c.id == row.id))
            tx.journal("monitor.deleted", "monitor", row.id, {"name": name})

    def _monitor_row(self, conn: sa.Connection, name: str) -> sa.Row:
        """A monitor by name, or by the endpoint it watches when exactly one monitor watches it."""
        row = conn.execute(sa.select(t.monitors).where(t.monitors.c.name == name)).first()
        if row is None:
            watching = conn.execute(sa.select(t.monitors).where(t.monitors.c.endpoint == name)).all()
            if len(watching) == 1:
                return watching[0]
            raise NotFound(
                f"monitor {name!r} does not exist"
                + (f" ({len(watching)} monitors watch endpoint {name!r}: name one)" if watching else "")
            )
        return row

    # ------------------------------------------------------------------------------------------ reading

    def _read(
        self, endpoint: str | None, model: str, version: int | None, since: int | None, until: int | None
    ) -> pd.DataFrame:
        from shipyard.serving.prediction_log import read_predictions

        frame = read_predictions(self.db, self.artifacts, endpoint, model, version, since, until)
        if "variant" in frame.columns and len(frame):
            frame = frame[frame["variant"].fillna("") != "shadow"]  # shadow answers were never served
        return frame.reset_index(drop=True)

    def _batches(
        self, row: sa.Row, since: int | None, until: int | None, columns: list[str] | None = None
    ) -> Iterator[pd.DataFrame]:
        """A window's served rows in batches (bounded memory), shadow copies left out."""
        from shipyard.serving.prediction_log import iter_predictions

        wanted = None if columns is None else [*columns, "variant"]
        skip = None if columns is not None else ["inputs"]  # the JSON copy of the inputs: in.<name> has them
        for batch in iter_predictions(
            self.db, self.artifacts, row.endpoint, row.model, row.version, since, until, BATCH_ROWS, wanted, skip
        ):
            if "variant" in batch.columns:
                batch = batch[batch["variant"].fillna("") != "shadow"]
            if len(batch):
                yield batch.reset_index(drop=True)

    def _labels(self, conn: sa.Connection, ids: Iterable[str]) -> dict[str, Any]:
        ids = list(ids)
        found: dict[str, Any] = {}
        c = t.prediction_labels.c
        for i in range(0, len(ids), ID_CHUNK):
            chunk = ids[i : i + ID_CHUNK]
            for pid, label in conn.execute(sa.select(c.prediction_id, c.label).where(c.prediction_id.in_(chunk))):
                found[pid] = json.loads(label)
        return found

    def _with_labels(self, frame: pd.DataFrame) -> pd.DataFrame:
        if frame.empty:
            frame = frame.copy()
            frame[LABEL] = pd.Series(dtype=object)
            return frame
        # A label may name the row (``<request id>-<row>``) or, for a one-row request, the request: the
        # id the server answered with (X-Prediction-Id), which is what callers have at hand.
        single = frame["request_id"].map(frame["request_id"].value_counts()) == 1
        with self.db.read() as conn:
            labels = self._labels(conn, list(frame["prediction_id"]) + list(frame.loc[single, "request_id"]))
        frame = frame.copy()
        by_row = frame["prediction_id"].map(labels)
        by_request = frame["request_id"].map(labels).where(single)
        frame[LABEL] = by_row.where(by_row.notna(), by_request)
        return frame

    def _context(self, row: sa.Row) -> Context:
        from shipyard.monitoring.reference import sample_from_bytes

        bins = ReferenceBins.from_dict(row.bins)
        reference = Profile.from_dict(row.reference_profile, bins)
        digest = row.reference.get("sample")
        sample = None
        if digest:
            if digest not in self._samples:
                self._samples[digest] = sample_from_bytes(self.artifacts.read_bytes(digest))
            sample = self._samples[digest]
        client = self.embedded_client()
        model = None
        try:
            version = client.get_version(row.model, row.version or row.reference.get("version"))
            model = self._load_model(client, version)
        except Exception as exc:
            log.info("monitor %s: model unavailable (%s)", row.name, exc)
        return Context(
            task=row.task,
            columns=list(row.columns),
            bins=bins,
            reference=reference,
            options={**DEFAULT_OPTIONS, **row.options},
            classes=list(row.reference.get("classes") or []),
            sample=sample,
            model=model,
        )

    # Profiles are stored as compressed blobs (a 25-column profile is ~200 KB of JSON, mostly quantile
    # sketches), the window row keeps the digest: the database stays small and merges read only blobs.
    def _put_profile(self, profile: Profile) -> dict[str, Any]:
        import zlib

        data = zlib.compress(json.dumps(profile.to_dict(), separators=(",", ":")).encode(), 6)
        digest, _ = self.artifacts.put_bytes(data)
        return {"blob": digest, "rows": profile.rows}

    def _get_profile(self, stored: dict[str, Any], bins: ReferenceBins) -> Profile:
        import zlib

        if "blob" not in stored:
            return Profile.from_dict(stored, bins)
        return Profile.from_dict(json.loads(zlib.decompress(self.artifacts.read_bytes(stored["blob"]))), bins)

    # ------------------------------------------------------------------------------------------ runs

    def run_monitor(self, name: str, now: int | None = None) -> MonitorRun:
        """Compute the windows completed since the last run, recompute windows whose labels arrived
        since, and judge the alert rules. Safe to call at any time; a run with nothing new is cheap."""
        now = now_ms() if now is None else int(now)
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
        ctx = self._context(row)
        grace = int(ctx.options.get("grace_ms", GRACE_MS))
        cursor = dict(row.cursor)
        computed: list[WindowResult] = []
        new_windows = self._due_windows(row, cursor, now - grace)
        for start, end, frame in new_windows:
            computed.extend(self._compute_and_store(row, ctx, start, end, frame))
        labels_since = cursor.get("labels_at")
        cursor["labels_at"] = now_ms()  # labels stored from here on are the next run's to apply
        relabelled = self._relabel(row, ctx, now, labels_since, {(w.start, w.end) for w in computed})
        self._match_labels(now)
        fired, resolved = self._judge_rules(row, now)
        with self.db.write() as tx:
            tx.conn.execute(
                t.monitors.update()
                .where(t.monitors.c.id == row.id)
                .values(cursor=cursor, last_run_at=now, updated_at=now)
            )
            tx.journal(
                "monitor.ran",
                "monitor",
                row.id,
                {
                    "windows": len(new_windows),
                    "relabelled": sum(1 for w in relabelled if w.segment == ""),
                    "alerts_fired": fired,
                    "alerts_resolved": resolved,
                },
            )
        windows = computed + relabelled
        relabelled_count = sum(1 for w in relabelled if w.segment == "")
        if new_windows or relabelled:
            message = f"{len(new_windows)} new window(s), {relabelled_count} relabelled"
        else:
            message = "no complete window since the last run"
        return MonitorRun(
            monitor=name,
            windows=windows,
            relabelled=relabelled_count,
            alerts_fired=fired,
            alerts_resolved=resolved,
            message=message,
        )

    def _due_windows(self, row: sa.Row, cursor: dict[str, Any], ready: int) -> list[tuple[int, int, Source]]:
        """The complete windows after the cursor, each with a way to read its rows; moves ``cursor``."""
        from shipyard.serving.prediction_log import list_segments

        spec = row.window
        if spec["kind"] == "time":
            first = cursor.get("next")
            if first is None:
                segments = list_segments(self.db, row.endpoint, row.model, row.version)
                if not segments:
                    return []
                # the first run looks back at most `backfill` (default 7 days), not the log's whole past
                first = max(min(s["first_ts"] for s in segments), ready - self._backfill_ms(row))
            out: list[tuple[int, int, Source]] = []
            for start, end in time_windows(int(first), ready, int(spec["ms"])):
                out.append((start, end, self._time_source(row, start, end)))
                cursor["next"] = end
            return out
        # N predictions: the rows after the cursor (ts, prediction id), in log order, in full chunks
        size = int(spec["rows"])
        after_ts = cursor.get("ts")
        since = after_ts if after_ts is not None else ready - self._backfill_ms(row)
        frame = self._read(row.endpoint, row.model, row.version, since, ready)
        if after_ts is not None and len(frame):
            later = (frame["ts"] > after_ts) | (
                (frame["ts"] == after_ts) & (frame["prediction_id"] > cursor.get("prediction_id", ""))
            )
            frame = frame[later].reset_index(drop=True)
        out = []
        for i in range(0, len(frame) - size + 1, size):
            chunk = frame.iloc[i : i + size].reset_index(drop=True)
            start, end = int(chunk["ts"].iloc[0]), int(chunk["ts"].iloc[-1]) + 1
            out.append((start, end, _frame_source(chunk)))
            cursor["ts"], cursor["prediction_id"] = int(chunk["ts"].iloc[-1]), str(chunk["prediction_id"].iloc[-1])
        return out

    def _backfill_ms(self, row: sa.Row) -> int:
        return parse_duration_ms(str({**DEFAULT_OPTIONS, **row.options}["backfill"]), "options.backfill")

    def _time_source(self, row: sa.Row, start: int, end: int) -> Source:
        return lambda: self._batches(row, start, end)

    def _window_source(self, row: sa.Row, start: int, end: int) -> Source:
        """A stored window's rows again: by time for time windows; a count window's first N rows."""
        if row.window["kind"] == "time":
            return self._time_source(row, start, end)
        frame = self._read(row.endpoint, row.model, row.version, start, end).head(int(row.window["rows"]))
        return _frame_source(frame)

    def _compute_and_store(
        self,
        row: sa.Row,
        ctx: Context,
        start: int,
        end: int,
        source: Source,
        earlier: dict[str, Any] | None = None,
    ) -> list[WindowResult]:
        """Stream the window once into accumulators (all rows, and each segment value), then store."""
        overall = compute.WindowAccumulator(ctx, full=True)
        segments: dict[str, dict[str, compute.WindowAccumulator]] = {c: {} for c in row.segment_by}
        for batch in source():
            batch = self._with_labels(batch)
            overall.add(batch)
            for column, accs in segments.items():
                values = batch.get(compute.INPUT_PREFIX + column)
                if values is None and column in LOG_SEGMENTS:
                    values = batch.get(column)  # the log's own columns: per version, variant, endpoint
                if values is None:
                    continue
                keys = values.astype(str).where(values.notna())
                for value, part in batch.groupby(keys, sort=False):
                    acc = accs.get(value)
                    if acc is None:
                        if len(accs) >= TRACKED_SEGMENTS:
                            continue  # beyond the tracked values: counted in the overall window only
                        acc = accs[value] = compute.WindowAccumulator(ctx, full=False)
                    acc.add(part)
        previous = None
        if overall.labelled_count >= compute.MIN_CONCEPT_LABELS:
            previous = self._previous_labelled(row, ctx, start)
        parts: list[tuple[str, compute.WindowAccumulator]] = [("", overall)]
        for column, accs in segments.items():
            top = sorted(accs.items(), key=lambda kv: -kv[1].rows)[:MAX_SEGMENTS]
            parts.extend((f"{column}={value}", acc) for value, acc in top)
        results = []
        now = now_ms()
        stored = []
        for segment, acc in parts:
            full = segment == ""
            profile, metrics, labelled = acc.result(previous if full else None, earlier if full else None)
            values = {
                "monitor_id": row.id,
                "segment": segment,
                "start": start,
                "end": end,
                "rows": acc.rows,
                "labelled": labelled,
                "profile": self._put_profile(profile),
                "metrics": metrics,
                "computed_at": now,
            }
            stored.append(values)
            results.append(_window(row.name, values))
        with self.db.write() as tx:
            w = t.monitor_windows.c
            tx.conn.execute(t.monitor_windows.delete().where(w.monitor_id == row.id, w.start == start, w.end == end))
            tx.conn.execute(t.monitor_windows.insert(), stored)
        return results

    def _previous_labelled(self, row: sa.Row, ctx: Context, start: int) -> pd.DataFrame | None:
        """The labelled rows of the stored window just before ``start`` (for the change detectors)."""
        w = t.monitor_windows.c
        with self.db.read() as conn:
            before = conn.execute(
                sa.select(w.start, w.end)
                .where(w.monitor_id == row.id, w.segment == "", w.start < start)
                .order_by(w.start.desc())
                .limit(1)
            ).first()
        if before is None:
            return None
        acc = compute.WindowAccumulator(ctx, full=False, labels_only=True)
        for batch in self._window_source(row, before.start, before.end)():
            acc.add(self._with_labels(batch))
        return acc.labelled()

    def _relabel(
        self, row: sa.Row, ctx: Context, now: int, since: int | None, skip: set[tuple[int, int]]
    ) -> list[WindowResult]:
        """Recompute the stored windows (within the label horizon) holding predictions whose labels
        arrived since the last run."""
        if since is None:
            return []
        with self.db.read() as conn:
            c = t.prediction_labels.c
            new_ids = set(conn.execute(sa.select(c.prediction_id).where(c.received_at >= since)).scalars())
            w = t.monitor_windows.c
            windows = conn.execute(
                sa.select(w.start, w.end, w.metrics)
                .where(w.monitor_id == row.id, w.segment == "", w.end > now - LABEL_HORIZON_MS)
                .order_by(w.start)
            ).all()
        if not new_ids or not windows:
            return []
        hits = [
            batch.loc[batch["prediction_id"].isin(new_ids) | batch["request_id"].isin(new_ids), "ts"].to_numpy()
            for batch in self._batches(row, windows[0].start, windows[-1].end, ["prediction_id", "request_id", "ts"])
        ]
        ts = np.concatenate(hits) if hits else np.empty(0, dtype="int64")
        if not len(ts):
            return []
        out: list[WindowResult] = []
        for start, end, earlier in windows:
            if (start, end) in skip or not ((ts >= start) & (ts < end)).any():
                continue
            out.extend(self._compute_and_store(row, ctx, start, end, self._window_source(row, start, end), earlier))
        return out

    # ------------------------------------------------------------------------------------------ series

    def list_windows(
        self,
        name: str,
        segment: str | None = "",
        since: int | None = None,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[WindowResult]:
        """Stored windows, oldest first (``segment=None``: every segment)."""
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
            rows = conn.execute(self._window_query(row.id, segment, since, until).limit(limit)).mappings().all()
        return [_window(name, dict(r)) for r in rows]

    def recent_windows(self, name: str, limit: int = 200, segment: str = "") -> list[WindowResult]:
        """The newest ``limit`` stored windows, oldest first (the dashboard charts the recent past
        without reading a long history)."""
        w = t.monitor_windows.c
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
            query = (
                sa.select(t.monitor_windows)
                .where(w.monitor_id == row.id, w.segment == segment)
                .order_by(w.start.desc())
                .limit(max(1, int(limit)))
            )
            rows = conn.execute(query).mappings().all()
        return [_window(row.name, dict(r)) for r in reversed(rows)]

    def _window_query(self, monitor_id: str, segment: str | None, since: int | None, until: int | None) -> Any:
        w = t.monitor_windows.c
        query = sa.select(t.monitor_windows).where(w.monitor_id == monitor_id)
        if segment is not None:
            query = query.where(w.segment == segment)
        if since is not None:
            query = query.where(w.end > since)
        if until is not None:
            query = query.where(w.start < until)
        return query.order_by(w.start, w.segment)

    def metric_series(
        self, name: str, metric: str, segment: str = "", since: int | None = None, until: int | None = None
    ) -> MetricSeries:
        """One metric (a dotted path, e.g. ``performance.accuracy``, ``drift.columns.x.value``) over
        the stored windows, for charts; windows without it have ``value`` None ("no data", not zero)."""
        windows = self.list_windows(name, segment, since, until, limit=100_000)
        points = [
            SeriesPoint(
                start=w.start,
                end=w.end,
                value=rules.metric_value(w.metrics, metric),
                rows=w.rows,
                labelled=w.labelled,
            )
            for w in windows
        ]
        return MetricSeries(monitor=name, metric=metric, segment=segment, points=points)

    def merged_window(self, name: str, since: int, until: int, segment: str = "") -> WindowResult:
        """A longer window merged from the stored ones in ``[since, until)``: drift is recomputed on
        the merged profile; performance and health figures are averaged weighted by labelled rows /
        rows (exact for accuracy-like rates and counts, approximate for F1 and AUC)."""
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
            rows = conn.execute(self._window_query(row.id, segment, since, until)).mappings().all()
        return self._merge(row, [dict(r) for r in rows if r["start"] >= since and r["end"] <= until], since, until)

    def _merge(self, row: sa.Row, windows: list[dict[str, Any]], since: int, until: int) -> WindowResult:
        bins = ReferenceBins.from_dict(row.bins)
        reference = Profile.from_dict(row.reference_profile, bins)
        merged = Profile.empty(bins)
        for w in windows:
            merged = merged.merge(self._get_profile(w["profile"], bins))
        total = sum(w["rows"] for w in windows)
        labelled = sum(w["labelled"] for w in windows)
        metrics: dict[str, Any] = {"rows": total}
        if total == 0:
            metrics["status"] = "no data"
        else:
            opts = {**DEFAULT_OPTIONS, **row.options}
            drift = compare(reference, merged, method=opts.get("method"), threshold=opts.get("thresholds"))
            metrics["drift"] = compute.drift_summary(drift, list(row.columns))
            metrics["labels"] = {"labelled": labelled, "coverage": labelled / total}
            wrong = [(w["metrics"].get("labels") or {}).get("mismatched") for w in windows]
            wrong = [m for m in wrong if m]
            if wrong:
                metrics["labels"]["mismatched"] = {
                    "count": sum(m["count"] for m in wrong),
                    "examples": sorted({e for m in wrong for e in m["examples"]})[:5],
                    "reason": wrong[-1]["reason"],
                }
            for group, weight in (("performance", "labelled"), ("estimate", "rows"), ("health", "rows")):
                averaged = _weighted(windows, group, weight)
                if averaged:
                    metrics[group] = averaged
            if "health" in metrics:
                metrics["health"]["rows"] = total
        values = {
            "segment": windows[0]["segment"] if windows else "",
            "start": since,
            "end": until,
            "rows": total,
            "labelled": labelled,
            "metrics": metrics,
            "computed_at": now_ms(),
        }
        return _window(row.name, values)

    # ------------------------------------------------------------------------------------------ labels

    def record_labels(self, items: list[dict[str, Any]]) -> LabelReceipt:
        """Ground truth by prediction id: ``[{"prediction_id": ..., "label": ...}]``, accepted whenever it
        arrives. Idempotent per id (sending again replaces the label). Ids with no logged prediction
        are stored, counted and listed (``unknown``), and matched later if the prediction shows up."""
        if not isinstance(items, list) or not items:
            raise InvalidInput("give a non-empty list of {prediction_id, label} items", field="items")
        labels: dict[str, str] = {}
        for i, item in enumerate(items):
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("prediction_id"), str)
                or not item["prediction_id"]
            ):
                raise InvalidInput(f"item {i} needs a string 'prediction_id'", field=f"items[{i}].prediction_id")
            label = item.get("label", item.get("value"))
            if label is None or isinstance(label, dict | list):
                raise InvalidInput(
                    f"item {i} needs a 'label' that is a class (string, integer, boolean) or a number",
                    field=f"items[{i}].label",
                )
            if isinstance(label, float) and not np.isfinite(label):
                raise InvalidInput(f"item {i}: the label must be finite", field=f"items[{i}].label")
            if len(item["prediction_id"]) > 64:
                raise InvalidInput(f"item {i}: prediction ids are at most 64 characters", field=f"items[{i}]")
            labels[item["prediction_id"]] = json.dumps(label)
        known = self._logged_ids(list(labels))
        now = now_ms()
        c = t.prediction_labels.c
        replaced = 0
        with self.db.write() as tx:
            existing = set()
            ids = list(labels)
            for i in range(0, len(ids), ID_CHUNK):
                chunk = ids[i : i + ID_CHUNK]
                existing |= set(tx.conn.execute(sa.select(c.prediction_id).where(c.prediction_id.in_(chunk))).scalars())
            for pid, label in labels.items():
                values = {"label": label, "matched": pid in known, "received_at": now}
                if pid in existing:
                    replaced += 1
                    tx.conn.execute(t.prediction_labels.update().where(c.prediction_id == pid).values(**values))
                else:
                    tx.conn.execute(t.prediction_labels.insert().values(prediction_id=pid, **values))
            unknown = sorted(set(labels) - known)
            tx.journal(
                "labels.recorded",
                "labels",
                str(now),
                {"count": len(labels), "replaced": replaced, "unknown": len(unknown)},
            )
        return LabelReceipt(accepted=len(labels), replaced=replaced, unknown=unknown[:1000], unknown_count=len(unknown))

    def list_unknown_labels(self, limit: int = 100) -> list[str]:
        """Prediction ids that received a label but match no logged prediction (yet)."""
        c = t.prediction_labels.c
        with self.db.read() as conn:
            query = sa.select(c.prediction_id).where(c.matched.is_(False)).order_by(c.received_at).limit(limit)
            return list(conn.execute(query).scalars())

    def _logged_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` the prediction log holds: a DuckDB scan of the id column of the segments
        written within the label horizon (by when they were written, so backfilled logs count)."""
        import duckdb

        s = t.prediction_segments.c
        with self.db.read() as conn:
            segments = [
                {"digest": d}
                for d in conn.execute(sa.select(s.digest).where(s.created_at >= now_ms() - LABEL_HORIZON_MS)).scalars()
            ]
        if not segments or not ids:
            return set()
        digests = list(dict.fromkeys(s["digest"] for s in segments))
        con = duckdb.connect()
        try:
            con.register("wanted", pd.DataFrame({"prediction_id": ids}))
            if self.artifacts.is_local:
                paths = [self.artifacts.local_path(d) for d in digests]
                source = "read_parquet($paths, union_by_name = true)"
                params: dict[str, Any] = {"paths": paths}
            else:
                import io

                import pyarrow.parquet as pq

                tables = []
                for i, digest in enumerate(digests):
                    con.register(
                        f"s{i}",
                        pq.read_table(
                            io.BytesIO(self.artifacts.read_bytes(digest)), columns=["prediction_id", "request_id"]
                        ),
                    )
                    tables.append(f"SELECT prediction_id, request_id FROM s{i}")
                source, params = "(" + " UNION ALL ".join(tables) + ")", {}
            # a label names a row, or (the id the server answered with) the request
            sql = (
                f"WITH logged AS (SELECT prediction_id, request_id FROM {source}) "
                "SELECT prediction_id FROM wanted WHERE prediction_id IN (SELECT prediction_id FROM logged) "
                "OR prediction_id IN (SELECT request_id FROM logged)"
            )
            return {r[0] for r in con.execute(sql, params).fetchall()}
        finally:
            con.close()

    def _match_labels(self, now: int) -> None:
        """Unmatched labels whose prediction has since been logged become matched."""
        pending = self.list_unknown_labels(limit=10_000)
        if not pending:
            return
        found = self._logged_ids(pending)
        if found:
            c = t.prediction_labels.c
            with self.db.write() as tx:
                for i in range(0, len(found), ID_CHUNK):
                    chunk = list(found)[i : i + ID_CHUNK]
                    tx.conn.execute(t.prediction_labels.update().where(c.prediction_id.in_(chunk)).values(matched=True))

    # ------------------------------------------------------------------------------------------ rules

    def create_alert_rule(
        self,
        name: str,
        monitor: str,
        metric: str,
        condition: str | dict[str, Any],
        window: str | None = None,
        min_samples: int = 100,
        severity: str = "warning",
        owner: str | None = None,
        runbook: str | None = None,
        fire_after: int = 1,
        resolve_after: int = 2,
        channels: list[Any] | None = None,
        trigger: dict[str, Any] | None = None,
    ) -> AlertRule:
        """An alert rule on one metric of a monitor's windows (see docs/monitoring.md for the metric
        names). ``trigger={"pipeline": "pkg.module:function", "params": {...}, "data_param": "data"}``
        launches that pipeline when the alert fires, with the window's data as a dataset version."""
        check_name(name, "rule name")
        if not isinstance(metric, str) or not metric.strip():
            raise InvalidInput("metric must be a dotted metric name like drift.share", field="metric")
        cond = rules.parse_condition(condition)
        if window is not None:
            parse_duration_ms(window, "window")
        if not isinstance(min_samples, int) or min_samples < 0:
            raise InvalidInput("min_samples must be a non-negative integer", field="min_samples")
        if severity not in SEVERITIES:
            raise InvalidInput(f"severity must be one of {', '.join(SEVERITIES)}", field="severity")
        if fire_after < 1 or resolve_after < 1:
            raise InvalidInput("fire_after and resolve_after must be at least 1", field="fire_after")
        if runbook is not None:
            check_text(runbook, "runbook", 2000)
        checked_channels = notify.check_channels(channels)
        if trigger is not None:
            if (
                not isinstance(trigger, dict)
                or not isinstance(trigger.get("pipeline"), str)
                or ":" not in trigger["pipeline"]
            ):
                raise InvalidInput("trigger needs 'pipeline' as 'package.module:function'", field="trigger.pipeline")
            if not isinstance(trigger.get("params", {}), dict):
                raise InvalidInput("trigger.params must be an object", field="trigger.params")
        now = now_ms()
        with self.db.write() as tx:
            mon = self._monitor_row(tx.conn, monitor)
            if tx.conn.execute(sa.select(t.alert_rules.c.id).where(t.alert_rules.c.name == name)).first():
                from shipyard.core.errors import AlreadyExists

                raise AlreadyExists(f"alert rule {name!r} already exists")
            values = {
                "id": new_id(),
                "name": name,
                "monitor_id": mon.id,
                "metric": metric.strip(),
                "condition": cond,
                "window": window,
                "min_samples": min_samples,
                "severity": severity,
                "owner": owner,
                "runbook": runbook,
                "fire_after": fire_after,
                "resolve_after": resolve_after,
                "channels": checked_channels,
                "trigger": trigger,
                "state": {},
                "enabled": True,
                "created_by": tx.actor,
                "created_at": now,
                "updated_at": now,
            }
            tx.conn.execute(t.alert_rules.insert().values(**values))
            tx.journal(
                "alert_rule.created", "alert_rule", values["id"], {k: v for k, v in values.items() if k != "state"}
            )
        return self.get_alert_rule(name)

    def get_alert_rule(self, name: str) -> AlertRule:
        with self.db.read() as conn:
            row = conn.execute(self._rules_query().where(t.alert_rules.c.name == name)).first()
        if row is None:
            raise NotFound(f"alert rule {name!r} does not exist")
        return _rule(row)

    def list_alert_rules(self, monitor: str | None = None) -> list[AlertRule]:
        query = self._rules_query()
        if monitor is not None:
            query = query.where(t.monitors.c.name == monitor)
        with self.db.read() as conn:
            return [_rule(r) for r in conn.execute(query.order_by(t.alert_rules.c.name))]

    def delete_alert_rule(self, name: str) -> None:
        """Delete a rule; its alerts are resolved (kept for the record)."""
        now = now_ms()
        with self.db.write() as tx:
            r = t.alert_rules.c
            row = tx.conn.execute(sa.select(t.alert_rules).where(r.name == name, r.enabled.is_(True))).first()
            if row is None:
                raise NotFound(f"alert rule {name!r} does not exist")
            a = t.alerts.c
            tx.conn.execute(
                t.alerts.update()
                .where(a.rule_id == row.id, a.status != "resolved")
                .values(status="resolved", resolved_at=now)
            )
            # kept for its alerts' sake under a name no user can give ('@' is refused), freeing the name
            tx.conn.execute(
                t.alert_rules.update()
                .where(r.id == row.id)
                .values(enabled=False, name=f"{name}@deleted-{row.id[:8]}", updated_at=now)
            )
            tx.journal("alert_rule.deleted", "alert_rule", row.id, {"name": name})

    def _rules_query(self) -> Any:
        return (
            sa.select(t.alert_rules, t.monitors.c.name.label("monitor_name"))
            .join(t.monitors, t.monitors.c.id == t.alert_rules.c.monitor_id)
            .where(t.alert_rules.c.enabled.is_(True))
        )

    def _judge_rules(self, mon: sa.Row, now: int) -> tuple[list[str], list[str]]:
        """Judge each enabled rule on the windows it has not judged yet, oldest first."""
        fired: list[str] = []
        resolved: list[str] = []
        for rule in self.list_alert_rules(mon.name):
            judged_until = int(rule.state.get("judged_until", 0))
            state = dict(rule.state)
            # labels arrive late: a window judged "too few samples" is judged again once they come
            pending = set(state.get("pending", []))
            windows = self._rule_windows(mon.id, judged_until, pending)
            history = [rules.metric_value(x["metrics"], rule.metric) for x in windows]
            for i, window in enumerate(windows):
                if window["end"] <= judged_until and window["start"] not in pending:
                    continue
                pending.discard(window["start"])
                if rule.window:
                    span = parse_duration_ms(rule.window)
                    merged_rows = [x for x in windows[: i + 1] if x["end"] > window["end"] - span]
                    view = self._merge(mon, merged_rows, window["end"] - span, window["end"])
                    metrics, rows, labelled = view.metrics, view.rows, view.labelled
                else:
                    metrics, rows, labelled = window["metrics"], window["rows"], window["labelled"]
                needs_labels = rule.metric.split(".")[0] in ("performance", "concept")
                samples = labelled if needs_labels else rows
                value = rules.metric_value(metrics, rule.metric)
                judged_until = max(judged_until, window["end"])
                if value is None or samples < rule.min_samples:
                    if needs_labels and window["end"] > now - LABEL_HORIZON_MS:
                        pending.add(window["start"])
                    continue
                breach, threshold = rules.breached(rule.condition, value, [v for v in history[:i] if v is not None])
                if breach is None:
                    continue
                state, action = rules.advance(state, breach, rule.fire_after, rule.resolve_after)
                if action == "fire":
                    alert_id = self._fire(rule, mon, window, value, threshold, samples)
                    state["alert_id"] = alert_id
                    fired.append(alert_id)
                elif (
                    action == "resolve"
                    and state.get("alert_id")
                    and self._resolve(state.pop("alert_id"), "cleared", automatic=True)
                ):
                    resolved.append(rule.name)
            state["judged_until"] = judged_until
            state["pending"] = sorted(pending)[-500:]
            with self.db.write() as tx:
                tx.conn.execute(
                    t.alert_rules.update().where(t.alert_rules.c.id == rule.id).values(state=state, updated_at=now_ms())
                )
        return fired, resolved

    def _rule_windows(self, monitor_id: str, judged_until: int, pending: set[int]) -> list[dict[str, Any]]:
        """The windows a rule has yet to judge, after up to ``HISTORY_WINDOWS`` earlier ones (for
        dynamic thresholds and longer rule windows): the cost does not grow with the history kept."""
        w = t.monitor_windows.c
        base = sa.select(t.monitor_windows).where(w.monitor_id == monitor_id, w.segment == "")
        with self.db.read() as conn:
            todo = base.where(sa.or_(w.end > judged_until, w.start.in_(sorted(pending)) if pending else sa.false()))
            fresh = [dict(r) for r in conn.execute(todo.order_by(w.start)).mappings()]
            first = fresh[0]["start"] if fresh else judged_until
            earlier = conn.execute(
                base.where(w.start < first).order_by(w.start.desc()).limit(HISTORY_WINDOWS)
            ).mappings()
            before = [dict(r) for r in earlier if r["start"] not in pending][::-1]
        return before + fresh

    def _fire(
        self, rule: AlertRule, mon: sa.Row, window: dict[str, Any], value: float, threshold: dict[str, Any], n: int
    ) -> str:
        alert_id = new_id()
        drift = window["metrics"].get("drift") or {}
        condition = (
            f"outside mean ± {threshold['dynamic']:g}σ [{threshold['low']:.4g}, {threshold['high']:.4g}]"
            if "dynamic" in threshold
            else f"{threshold['op']} {threshold['value']:g}"
        )
        message = f"{mon.name}: {rule.metric} = {value:.4g} ({condition}) on {n} samples"
        if drift.get("drifted"):
            message += f"; drifted: {', '.join(drift['drifted'][:8])}"
        evidence = {
            "window": {"start": window["start"], "end": window["end"], "rows": window["rows"]},
            "labelled": window["labelled"],
            "drifted": drift.get("drifted", []),
            "metric_window": rule.window,
        }
        now = now_ms()
        values = {
            "id": alert_id,
            "rule_id": rule.id,
            "monitor_id": mon.id,
            "status": "firing",
            "severity": rule.severity,
            "metric": rule.metric,
            "value": value,
            "threshold": threshold,
            "window_start": window["start"],
            "window_end": window["end"],
            "message": message,
            "evidence": evidence,
            "notifications": [],
            "fired_at": now,
        }
        with self.db.write() as tx:
            tx.conn.execute(t.alerts.insert().values(**values))
            tx.journal("alert.fired", "alert", alert_id, {"rule": rule.name, "monitor": mon.name, "value": value})
        event = {**self.get_alert(alert_id).model_dump(), "status": "firing"}
        outcomes = notify.deliver(rule.channels, event)
        run_id, error = self._trigger(rule, mon, window, alert_id) if rule.trigger else (None, None)
        with self.db.write() as tx:
            tx.conn.execute(
                t.alerts.update()
                .where(t.alerts.c.id == alert_id)
                .values(notifications=outcomes, pipeline_run_id=run_id, trigger_error=error)
            )
            if rule.trigger:
                tx.journal(
                    "alert.triggered",
                    "alert",
                    alert_id,
                    {"pipeline": rule.trigger["pipeline"], "pipeline_run_id": run_id, "error": error},
                )
        return alert_id

    def _trigger(
        self, rule: AlertRule, mon: sa.Row, window: dict[str, Any], alert_id: str
    ) -> tuple[str | None, str | None]:
        """Launch the rule's pipeline; with ``data_param`` the window's logged inputs and labels are
        first written as a dataset version (``monitor-<name>-current``) and passed by ref."""
        from shipyard.pipelines import run as run_pipeline

        trigger = rule.trigger or {}
        params = dict(trigger.get("params") or {})
        client = self.embedded_client()
        try:
            if trigger.get("data_param"):
                labelled_only = trigger.get("labelled_only", True)
                ref = self._window_dataset(mon, window["start"], window["end"], alert_id, labelled_only)
                params[str(trigger["data_param"])] = ref
            result = run_pipeline(
                trigger["pipeline"], params, executor=trigger.get("executor", "inprocess"), client=client
            )
            return result.id, None
        except Exception as exc:  # the alert stands even when its pipeline fails; the error is kept on it
            log.warning("alert %s: trigger %s failed: %s", alert_id, trigger.get("pipeline"), exc)
            return getattr(exc, "pipeline_run_id", None), f"{type(exc).__name__}: {exc}"

    def alert_window_dataset(self, alert_id: str, labelled_only: bool = True) -> str:
        """The alert's window — its logged inputs with their labels — as a new version of dataset
        ``monitor-<name>-current`` (what a retraining pipeline reads); returns the version's ref."""
        alert = self.get_alert(alert_id)
        with self.db.read() as conn:
            mon = self._monitor_row(conn, alert.monitor)
        return self._window_dataset(mon, alert.window_start, alert.window_end, alert_id, labelled_only)

    def _window_dataset(self, mon: sa.Row, start: int, end: int, alert_id: str, labelled_only: bool) -> str:
        label_column = mon.reference.get("label_column") or "label"
        parts = []
        for batch in self._window_source(mon, start, end)():
            batch = self._with_labels(batch)
            part = compute.features_of(batch, list(mon.columns))
            part[label_column] = batch[LABEL].to_numpy()
            parts.append(part[part[label_column].notna()] if labelled_only else part)
        data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=[*mon.columns, label_column])
        dataset = self.embedded_client().log_dataset(
            data.reset_index(drop=True), f"monitor-{mon.name}-current", tags={"alert": alert_id, "monitor": mon.name}
        )
        return dataset.ref

    # ------------------------------------------------------------------------------------------ alerts

    def list_alerts(self, monitor: str | None = None, status: str | None = None, limit: int = 100) -> list[Alert]:
        query = self._alerts_query()
        if monitor is not None:
            query = query.where(t.monitors.c.name == monitor)
        if status is not None:
            if status == "open":
                query = query.where(t.alerts.c.status != "resolved")
            else:
                query = query.where(t.alerts.c.status == status)
        with self.db.read() as conn:
            rows = conn.execute(query.order_by(t.alerts.c.fired_at.desc()).limit(limit)).all()
        return [_alert(r) for r in rows]

    def get_alert(self, alert_id: str) -> Alert:
        with self.db.read() as conn:
            row = conn.execute(self._alerts_query().where(t.alerts.c.id == alert_id)).first()
        if row is None:
            raise NotFound(f"alert {alert_id!r} does not exist")
        return _alert(row)

    def _alerts_query(self) -> Any:
        r = t.alert_rules.c
        return (
            sa.select(t.alerts, r.name.label("rule_name"), r.owner, r.runbook, t.monitors.c.name.label("monitor_name"))
            .join(t.alert_rules, r.id == t.alerts.c.rule_id)
            .join(t.monitors, t.monitors.c.id == t.alerts.c.monitor_id)
        )

    def acknowledge_alert(self, alert_id: str, comment: str | None = None) -> Alert:
        """firing → acknowledged: someone is on it (it still resolves by itself when the metric clears)."""
        now = now_ms()
        with self.db.write() as tx:
            row = tx.conn.execute(sa.select(t.alerts).where(t.alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"alert {alert_id!r} does not exist")
            if row.status != "firing":
                from shipyard.core.errors import Conflict

                raise Conflict(f"alert {alert_id} is {row.status}; only a firing alert can be acknowledged")
            tx.conn.execute(
                t.alerts.update()
                .where(t.alerts.c.id == alert_id)
                .values(status="acknowledged", acknowledged_at=now, acknowledged_by=tx.actor)
            )
            tx.journal("alert.acknowledged", "alert", alert_id, {"comment": comment})
        return self.get_alert(alert_id)

    def resolve_alert(self, alert_id: str, comment: str | None = None) -> Alert:
        """Resolve by hand (the rule's state is reset, so a still-breaching metric fires again)."""
        if not self._resolve(alert_id, comment or "resolved by hand", automatic=False):
            from shipyard.core.errors import Conflict

            raise Conflict(f"alert {alert_id} is already resolved")
        return self.get_alert(alert_id)

    def _resolve(self, alert_id: str, comment: str, automatic: bool) -> bool:
        now = now_ms()
        with self.db.write() as tx:
            row = tx.conn.execute(sa.select(t.alerts).where(t.alerts.c.id == alert_id)).first()
            if row is None:
                raise NotFound(f"alert {alert_id!r} does not exist")
            if row.status == "resolved":
                return False
            tx.conn.execute(
                t.alerts.update().where(t.alerts.c.id == alert_id).values(status="resolved", resolved_at=now)
            )
            if not automatic:
                rule = tx.conn.execute(sa.select(t.alert_rules).where(t.alert_rules.c.id == row.rule_id)).first()
                if rule is not None and rule.state.get("alert_id") == alert_id:
                    state = {**rule.state, "active": False, "breaches": 0, "clears": 0}
                    state.pop("alert_id", None)
                    tx.conn.execute(t.alert_rules.update().where(t.alert_rules.c.id == rule.id).values(state=state))
            tx.journal("alert.resolved", "alert", alert_id, {"comment": comment, "automatic": automatic})
        alert = self.get_alert(alert_id)
        rule = next((r for r in self._all_rules() if r.id == row.rule_id), None)
        if rule is not None:
            notify.deliver(rule.channels, {**alert.model_dump(), "status": "resolved"})
        return True

    def _all_rules(self) -> list[AlertRule]:
        with self.db.read() as conn:
            query = sa.select(t.alert_rules, t.monitors.c.name.label("monitor_name")).join(
                t.monitors, t.monitors.c.id == t.alert_rules.c.monitor_id
            )
            return [_rule(r) for r in conn.execute(query)]

    # ------------------------------------------------------------------------------------------ report

    def monitor_report(self, name: str, window: str = "1d", until: int | None = None) -> MonitorReport:
        """The summary of the last ``window`` (merged from stored windows), with the headline series,
        the alerts of the period and the reference-vs-current histograms of the drifted columns."""
        span = parse_duration_ms(window, "window")
        until = now_ms() if until is None else int(until)
        since = until - span
        monitor = self.get_monitor(name)
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
            stored = [
                dict(r)
                for r in conn.execute(self._window_query(row.id, "", since, until)).mappings()
                if r["start"] >= since
            ]
        current = self._merge(row, stored, since, until)
        series: dict[str, list[SeriesPoint]] = {}
        for metric in HEADLINE_SERIES:
            points = [
                SeriesPoint(
                    start=w["start"],
                    end=w["end"],
                    value=rules.metric_value(w["metrics"], metric),
                    rows=w["rows"],
                    labelled=w["labelled"],
                )
                for w in stored
            ]
            if any(p.value is not None for p in points):
                series[metric] = points
        alerts = [a for a in self.list_alerts(name, limit=1000) if a.window_end > since and a.window_start < until]
        histograms = self._histograms(row, stored)
        return MonitorReport(
            monitor=monitor,
            since=since,
            until=until,
            current=current,
            series=series,
            alerts=alerts,
            histograms=histograms,
            unknown_labels=len(self.list_unknown_labels(limit=100_000)),
        )

    def window_histograms(self, name: str, since: int, until: int, segment: str = "") -> dict[str, dict[str, Any]]:
        """Reference-vs-current shares per column over the stored windows in ``[since, until)`` — the
        report's histograms (``{"buckets", "reference", "current"}``) for any period, one window included."""
        with self.db.read() as conn:
            row = self._monitor_row(conn, name)
            stored = [
                dict(r)
                for r in conn.execute(self._window_query(row.id, segment, since, until)).mappings()
                if r["start"] >= since and r["end"] <= until
            ]
        return self._histograms(row, stored)

    def _histograms(self, row: sa.Row, stored: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        bins = ReferenceBins.from_dict(row.bins)
        reference = Profile.from_dict(row.reference_profile, bins)
        merged = Profile.empty(bins)
        for w in stored:
            merged = merged.merge(self._get_profile(w["profile"], bins))
        out = {}
        for column, ref_col in reference.columns.items():
            cur_col = merged.columns.get(column)
            ref_counts = np.asarray(ref_col.counts, dtype="float64")
            cur_counts = (
                np.asarray(cur_col.counts, dtype="float64") if cur_col is not None else np.zeros_like(ref_counts)
            )
            out[column] = {
                "buckets": bins.columns[column].bucket_labels(),
                "reference": (ref_counts / max(ref_counts.sum(), 1)).tolist(),
                "current": (cur_counts / max(cur_counts.sum(), 1)).tolist(),
            }
        return out

    # ------------------------------------------------------------------------------------------ schedule

    def run_due_monitors(self, now: int | None = None) -> list[MonitorRun]:
        """Run every monitor whose schedule is due (the server's and the scheduler's loop call this)."""
        now = now_ms() if now is None else now
        runs = []
        for monitor in self.list_monitors():
            if monitor.schedule_seconds is None:
                continue
            if monitor.last_run_at is not None and monitor.last_run_at + monitor.schedule_seconds * 1000 > now:
                continue
            if not self._claim(monitor, now):
                continue  # another server or scheduler took this run
            try:
                runs.append(self.run_monitor(monitor.name, now=now))
            except Exception as exc:  # one broken monitor must not stop the others
                log.warning("monitor %s: run failed: %s", monitor.name, exc)
        return runs

    def _claim(self, monitor: Monitor, now: int) -> bool:
        """Compare-and-set on the monitor's last run, so side-by-side servers run it once."""
        m = t.monitors.c
        seen = m.last_run_at.is_(None) if monitor.last_run_at is None else m.last_run_at == monitor.last_run_at
        with self.db.write() as tx:
            claimed = tx.conn.execute(
                t.monitors.update().where(m.id == monitor.id, seen).values(last_run_at=now, updated_at=now)
            ).rowcount
        return bool(claimed)


HEADLINE_SERIES = (
    "drift.share",
    "performance.accuracy",
    "performance.f1",
    "performance.rmse",
    "performance.mae",
    "estimate.accuracy",
    "labels.coverage",
    "health.latency_p99_ms",
    "health.rows",
)


def _weighted(windows: list[dict[str, Any]], group: str, weight: str) -> dict[str, Any]:
    totals: dict[str, float] = {}
    weights: dict[str, float] = {}
    for w in windows:
        values = w["metrics"].get(group) or {}
        wt = float(w[weight] if weight in w else w["rows"])
        if group in ("estimate", "performance"):
            wt = float(values.get("n") or wt)
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                continue
            totals[key] = totals.get(key, 0.0) + value * wt
            weights[key] = weights.get(key, 0.0) + wt
    out: dict[str, Any] = {k: totals[k] / weights[k] for k in totals if weights[k] > 0}
    if "n" in out:
        out["n"] = int(sum(float((w["metrics"].get(group) or {}).get("n") or 0) for w in windows))
    if group == "estimate" and out:
        out["estimate"] = True
    return out


def _monitor(row: sa.Row) -> Monitor:
    return Monitor(
        id=row.id,
        name=row.name,
        endpoint=row.endpoint,
        model=row.model,
        version=row.version,
        task=row.task,
        reference=row.reference,
        window=row.window,
        columns=row.columns,
        segment_by=row.segment_by,
        options=row.options,
        schedule_seconds=row.schedule_seconds,
        cursor=row.cursor,
        last_run_at=row.last_run_at,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _window(monitor: str, values: dict[str, Any]) -> WindowResult:
    rows = int(values["rows"])
    return WindowResult(
        monitor=monitor,
        segment=values["segment"],
        start=values["start"],
        end=values["end"],
        rows=rows,
        labelled=int(values["labelled"]),
        coverage=values["labelled"] / rows if rows else None,
        status="ok" if rows else "no data",
        metrics=values["metrics"],
        computed_at=values["computed_at"],
    )


def _rule(row: sa.Row) -> AlertRule:
    return AlertRule(
        id=row.id,
        name=row.name,
        monitor=row.monitor_name,
        metric=row.metric,
        condition=row.condition,
        window=row.window,
        min_samples=row.min_samples,
        severity=row.severity,
        owner=row.owner,
        runbook=row.runbook,
        fire_after=row.fire_after,
        resolve_after=row.resolve_after,
        channels=row.channels,
        trigger=row.trigger,
        state=row.state,
        enabled=row.enabled,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _alert(row: sa.Row) -> Alert:
    return Alert(
        id=row.id,
        rule=row.rule_name,
        monitor=row.monitor_name,
        status=row.status,
        severity=row.severity,
        metric=row.metric,
        value=row.value,
        threshold=row.threshold,
        window_start=row.window_start,
        window_end=row.window_end,
        message=row.message,
        evidence=row.evidence,
        notifications=row.notifications,
        pipeline_run_id=row.pipeline_run_id,
        trigger_error=row.trigger_error,
        owner=row.owner,
        runbook=row.runbook,
        fired_at=row.fired_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
    )


def _frame_source(frame: pd.DataFrame) -> Source:
    return lambda: [frame] if len(frame) else []
