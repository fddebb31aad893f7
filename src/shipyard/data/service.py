"""DatasetService: named, numbered, immutable dataset versions, their profiles, diffs and lineage.

A version's identity is the digest of its artifact tree, which must already be in the artifact
store when the version is created; the version row (with its tags, lineage edge and journal
entry) is written in one transaction, so a crash leaves either no version or a complete one.
Versions are numbered 1, 2, 3… per dataset name; registering the same content as the latest
version again returns that version instead of numbering a new one.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore, read_manifest
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.hashing import normalize_digest
from shipyard.core.ids import new_id
from shipyard.core.names import MAX_DESCRIPTION, check_name, check_text
from shipyard.core.time import ms_to_iso, now_ms, parse_time
from shipyard.data.entities import (
    FORMATS,
    ColumnChange,
    Dataset,
    DatasetDiff,
    DatasetLineage,
    DatasetVersion,
    FileChange,
    LineageNode,
)
from shipyard.data.usage import CONSUMER_TYPES, ROLES, record_usage, version_refs
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx
from shipyard.store.tags import get_tags, set_tags, validate_tags

TAG_ENTITY = "dataset_version"
MAX_SOURCE_URI = 1000
# Statistics compared by diff, per column (quantiles by their median).
DIFF_STATS = ("count", "missing", "min", "max", "mean", "std", "median", "distinct")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``"NAME@3"`` → ``("NAME", 3)``; ``"NAME"`` and ``"NAME@latest"`` → ``("NAME", None)``."""
    if not isinstance(ref, str) or not ref.strip():
        raise InvalidInput("dataset reference must be a non-empty string like NAME@3", field="ref")
    name, sep, version = ref.strip().partition("@")
    if not name:
        raise InvalidInput(f"dataset reference {ref!r} has no name (expected NAME, NAME@3 or NAME@latest)", field="ref")
    check_name(name, "dataset name")
    if not sep or version == "latest":
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise InvalidInput(
            f"dataset reference {ref!r}: version must be a positive integer or 'latest', not {version!r}", field="ref"
        )
    return name, int(version)


def _check_schema(schema: Any) -> list[dict[str, Any]] | None:
    if schema is None:
        return None
    if not isinstance(schema, list) or not all(isinstance(c, dict) and isinstance(c.get("name"), str) for c in schema):
        raise InvalidInput("schema must be a list of {name, type, nullable} objects", field="schema")
    return schema


def _check_profile(profile: Any) -> dict[str, Any] | None:
    if profile is None:
        return None
    if not isinstance(profile, dict) or not isinstance(profile.get("columns", {}), dict):
        raise InvalidInput('profile must be an object with a "columns" object', field="profile")
    return _finite(profile)


def _finite(value: Any) -> Any:
    """Profiles are stored as JSON: NaN and ±inf (e.g. sent over HTTP as strings) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


class DatasetService:
    def __init__(self, db: Database, artifacts: ArtifactStore):
        self.db = db
        self.artifacts = artifacts

    # ----------------------------------------------------------------------------------------------
    # Writing

    def create_version(
        self,
        name: str,
        digest: str,
        format: str,
        file_count: int,
        size: int,
        row_count: int | None = None,
        schema: list[dict[str, Any]] | None = None,
        profile: dict[str, Any] | None = None,
        source_uri: str | None = None,
        parents: list[str] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        run_id: str | None = None,
    ) -> DatasetVersion:
        """Record the stored tree ``digest`` as the next version of dataset ``name`` (created if missing).

        If the latest version already has this digest it is returned unchanged (given tags are set
        on it and ``run_id`` is recorded as having written it). ``parents`` are refs (``NAME@3``).
        """
        check_name(name, "dataset name")
        digest = normalize_digest(digest)
        if format not in FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {format!r}", field="format")
        if row_count is not None and (not isinstance(row_count, int) or row_count < 0):
            raise InvalidInput(f"row_count must be a non-negative integer, not {row_count!r}", field="row_count")
        schema = _check_schema(schema)
        profile = _check_profile(profile)
        if source_uri is not None:
            source_uri = check_text(source_uri, "source_uri", MAX_SOURCE_URI)
        description = check_text(description, "description", MAX_DESCRIPTION) if description else None
        tag_values = validate_tags(tags)
        if not self.artifacts.has(digest):
            raise NotFound(f"dataset tree {digest} is not in the artifact store; upload it first", field="digest")
        manifest = read_manifest(self.artifacts, digest)  # refuses anything that is not a tree manifest
        entries = manifest["entries"]
        actual_size = sum(e["size"] for e in entries.values())
        if file_count != len(entries) or size != actual_size:
            raise InvalidInput(
                f"tree {digest} has {len(entries)} files and {actual_size} bytes, not {file_count} and {size}",
                field="digest",
            )
        parent_ids = [self.resolve_version(ref).id for ref in parents or []]
        if run_id is not None:
            with self.db.read() as conn:
                self._check_consumer(conn, "run", run_id)
        values = {
            "digest": digest,
            "format": format,
            "file_count": file_count,
            "size": size,
            "row_count": row_count,
            "schema": schema,
            "profile": profile,
            "source_uri": source_uri,
            "parents": list(dict.fromkeys(parent_ids)) or None,
            "description": description,
        }
        for attempt in range(3):
            try:
                version_id = self._insert_version(name, values, tag_values, run_id)
                break
            except AlreadyExists:
                if attempt == 2:  # two writers created the dataset or took the number at once: retry
                    raise
        return self._get_by_id(version_id)

    def _insert_version(self, name: str, values: dict[str, Any], tag_values: dict[str, str], run_id: str | None) -> str:
        with self.db.write() as tx:
            dataset = self._dataset_row(tx.conn, name, required=False, lock=True)
            now = now_ms()
            if dataset is None:
                dataset_id = new_id()
                tx.conn.execute(
                    t.datasets.insert().values(
                        id=dataset_id, name=name, description=None, created_by=tx.actor, created_at=now, updated_at=now
                    )
                )
                tx.journal("dataset.created", "dataset", dataset_id, {"after": {"name": name}})
            else:
                dataset_id = dataset.id
                latest = tx.conn.execute(
                    sa.select(t.dataset_versions.c.id, t.dataset_versions.c.digest)
                    .where(t.dataset_versions.c.dataset_id == dataset_id)
                    .order_by(t.dataset_versions.c.version.desc())
                    .limit(1)
                ).first()
                if latest is not None and latest.digest == values["digest"]:
                    # Same content as the latest version: nothing new to number (like `dvc add`).
                    self._set_tags(tx, latest.id, tag_values)
                    if run_id is not None:
                        record_usage(tx, latest.id, "run", run_id, "output")
                    return str(latest.id)
            number = (
                tx.conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(t.dataset_versions.c.version), 0)).where(
                        t.dataset_versions.c.dataset_id == dataset_id
                    )
                ).scalar_one()
                + 1
            )
            version_id = new_id()
            tx.conn.execute(
                t.dataset_versions.insert().values(
                    id=version_id,
                    dataset_id=dataset_id,
                    version=number,
                    created_by=tx.actor,
                    created_at=now,
                    **values,
                )
            )
            tx.conn.execute(t.datasets.update().where(t.datasets.c.id == dataset_id).values(updated_at=now))
            set_tags(tx, TAG_ENTITY, version_id, tag_values)
            summary = {k: values[k] for k in ("digest", "format", "file_count", "size", "row_count", "source_uri")}
            tx.journal(
                "dataset_version.created",
                TAG_ENTITY,
                version_id,
                {
                    "after": {
                        "name": name,
                        "version": number,
                        **summary,
                        "parents": values["parents"],
                        "tags": tag_values,
                        "run_id": run_id,
                    }
                },
            )
            if run_id is not None:
                record_usage(tx, version_id, "run", run_id, "output")
            return version_id

    def _set_tags(self, tx: Tx, version_id: str, values: dict[str, str]) -> None:
        before = set_tags(tx, TAG_ENTITY, version_id, values)
        if before:
            tx.journal(
                "dataset_version.tags_set",
                TAG_ENTITY,
                version_id,
                {"before": before, "after": {k: values[k] for k in before}},
            )

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> DatasetVersion:
        values = validate_tags(tags)
        with self.db.write() as tx:
            _, row = self._version_row(tx.conn, name, version)
            self._set_tags(tx, row.id, values)
        return self.get_version(name, version)

    def record_usage(self, ref: str, consumer_type: str, consumer_id: str, role: str = "input") -> DatasetVersion:
        """Record that a run, pipeline run, step run or model version read (input) or wrote (output) ``ref``."""
        if consumer_type not in CONSUMER_TYPES:
            raise InvalidInput(
                f"consumer_type must be one of {', '.join(CONSUMER_TYPES)}, not {consumer_type!r}",
                field="consumer_type",
            )
        if role not in ROLES:
            raise InvalidInput(f"role must be one of {', '.join(ROLES)}, not {role!r}", field="role")
        version = self.resolve_version(ref)
        with self.db.write() as tx:
            self._check_consumer(tx.conn, consumer_type, consumer_id)
            record_usage(tx, version.id, consumer_type, consumer_id, role)
        return version

    _CONSUMER_TABLES = {
        "run": t.runs,
        "pipeline_run": t.pipeline_runs,
        "step_run": t.step_runs,
        "model_version": t.model_versions,
    }

    def _check_consumer(self, conn: sa.Connection, consumer_type: str, consumer_id: str) -> None:
        table = self._CONSUMER_TABLES[consumer_type]
        if not isinstance(consumer_id, str) or not consumer_id:
            raise InvalidInput(f"{consumer_type} id must be a non-empty string", field="consumer_id")
        if conn.execute(sa.select(table.c.id).where(table.c.id == consumer_id)).first() is None:
            raise NotFound(f"{consumer_type.replace('_', ' ')} {consumer_id!r} not found", field="consumer_id")

    # ----------------------------------------------------------------------------------------------
    # Reading

    def _dataset_row(self, conn: sa.Connection, name: str, required: bool = True, lock: bool = False) -> sa.Row | None:
        query = sa.select(t.datasets).where(t.datasets.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None and required:
            raise NotFound(f"dataset {name!r} not found", field="dataset")
        return row

    def _version_row(self, conn: sa.Connection, name: str, version: int | None) -> tuple[sa.Row, sa.Row]:
        dataset = self._dataset_row(conn, name)
        assert dataset is not None
        query = sa.select(t.dataset_versions).where(t.dataset_versions.c.dataset_id == dataset.id)
        if version is None:
            query = query.order_by(t.dataset_versions.c.version.desc()).limit(1)
        else:
            if isinstance(version, bool) or not isinstance(version, int) or version < 1:
                raise InvalidInput(f"version must be a positive integer, not {version!r}", field="version")
            query = query.where(t.dataset_versions.c.version == version)
        row = conn.execute(query).first()
        if row is None:
            which = f"version {version}" if version is not None else "versions"
            raise NotFound(f"dataset {name!r} has no {which}", field="version")
        return dataset, row

    def _versions(self, conn: sa.Connection, name: str, rows: list[sa.Row]) -> list[DatasetVersion]:
        ids = [r.id for r in rows]
        all_tags = get_tags(conn, TAG_ENTITY, ids)
        parent_ids = sorted({p for r in rows for p in r.parents or []})
        refs = version_refs(conn, parent_ids)
        return [
            DatasetVersion(
                **{k: v for k, v in r._mapping.items() if k not in ("dataset_id", "parents")},
                name=name,
                ref=f"{name}@{r.version}",
                parents=[refs.get(p, p) for p in r.parents or []],
                tags=all_tags.get(r.id, {}),
            )
            for r in rows
        ]

    def _get_by_id(self, version_id: str) -> DatasetVersion:
        with self.db.read() as conn:
            row = conn.execute(sa.select(t.dataset_versions).where(t.dataset_versions.c.id == version_id)).first()
            if row is None:
                raise NotFound(f"dataset version {version_id!r} not found", field="id")
            name = conn.execute(sa.select(t.datasets.c.name).where(t.datasets.c.id == row.dataset_id)).scalar_one()
            return self._versions(conn, name, [row])[0]

    def get_version(self, name: str, version: int) -> DatasetVersion:
        with self.db.read() as conn:
            _, row = self._version_row(conn, name, version)
            return self._versions(conn, name, [row])[0]

    def resolve_version(self, ref: str) -> DatasetVersion:
        """The version a ref names: ``NAME@3``, or the latest for ``NAME`` and ``NAME@latest``."""
        name, version = parse_ref(ref)
        with self.db.read() as conn:
            _, row = self._version_row(conn, name, version)
            return self._versions(conn, name, [row])[0]

    def list_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first (``shipyard data log``)."""
        with self.db.read() as conn:
            dataset = self._dataset_row(conn, name)
            assert dataset is not None
            rows = conn.execute(
                sa.select(t.dataset_versions)
                .where(t.dataset_versions.c.dataset_id == dataset.id)
                .order_by(t.dataset_versions.c.version.desc())
            ).all()
            return self._versions(conn, name, list(rows))

    def _datasets(self, conn: sa.Connection, rows: list[sa.Row]) -> list[Dataset]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        stats = {
            r.dataset_id: (r.latest, r.n)
            for r in conn.execute(
                sa.select(
                    t.dataset_versions.c.dataset_id,
                    sa.func.max(t.dataset_versions.c.version).label("latest"),
                    sa.func.count().label("n"),
                )
                .where(t.dataset_versions.c.dataset_id.in_(ids))
                .group_by(t.dataset_versions.c.dataset_id)
            )
        }
        return [
            Dataset(
                **r._mapping, latest_version=stats.get(r.id, (None, 0))[0], version_count=stats.get(r.id, (None, 0))[1]
            )
            for r in rows
        ]

    def list_datasets(self, name_like: str | None = None) -> list[Dataset]:
        query = sa.select(t.datasets).order_by(t.datasets.c.name)
        if name_like:
            query = query.where(t.datasets.c.name.like(name_like))
        with self.db.read() as conn:
            return self._datasets(conn, list(conn.execute(query).all()))

    def get_dataset(self, name: str) -> Dataset:
        with self.db.read() as conn:
            row = self._dataset_row(conn, name)
            return self._datasets(conn, [row])[0]

    def as_of(self, name: str, time: str) -> DatasetVersion:
        """Time travel: the latest version of ``name`` created at or before ``time`` (ISO-8601 or epoch ms)."""
        at = parse_time(str(time))
        with self.db.read() as conn:
            dataset = self._dataset_row(conn, name)
            assert dataset is not None
            row = conn.execute(
                sa.select(t.dataset_versions)
                .where(t.dataset_versions.c.dataset_id == dataset.id, t.dataset_versions.c.created_at <= at)
                .order_by(t.dataset_versions.c.created_at.desc(), t.dataset_versions.c.version.desc())
                .limit(1)
            ).first()
            if row is None:
                raise NotFound(f"dataset {name!r} has no version at or before {ms_to_iso(at)}", field="time")
            return self._versions(conn, name, [row])[0]

    # ----------------------------------------------------------------------------------------------
    # Diff and lineage

    def diff(self, ref_a: str, ref_b: str) -> DatasetDiff:
        """What changed from ``ref_a`` to ``ref_b``: files (from the manifests), schema, column statistics."""
        a, b = self.resolve_version(ref_a), self.resolve_version(ref_b)
        files: list[FileChange] = []
        if a.digest != b.digest:
            ea = read_manifest(self.artifacts, a.digest)["entries"]
            eb = read_manifest(self.artifacts, b.digest)["entries"]
            for path in sorted(set(ea) | set(eb)):
                fa, fb = ea.get(path), eb.get(path)
                if fa is None:
                    files.append(FileChange(path=path, change="added", size_b=fb["size"]))
                elif fb is None:
                    files.append(FileChange(path=path, change="removed", size_a=fa["size"]))
                elif fa["digest"] != fb["digest"]:
                    files.append(FileChange(path=path, change="changed", size_a=fa["size"], size_b=fb["size"]))
        return DatasetDiff(
            a=a.ref,
            b=b.ref,
            digest_a=a.digest,
            digest_b=b.digest,
            identical=a.digest == b.digest,
            files=files,
            row_count_a=a.row_count,
            row_count_b=b.row_count,
            size_a=a.size,
            size_b=b.size,
            columns=_column_changes(a, b),
        )

    def lineage(self, ref: str) -> DatasetLineage:
        """What produced ``ref`` (parents, runs/steps that wrote it) and what used it (runs, steps, models)."""
        version = self.resolve_version(ref)
        with self.db.read() as conn:
            row = conn.execute(
                sa.select(t.dataset_versions.c.parents).where(t.dataset_versions.c.id == version.id)
            ).first()
            parent_ids = list(row.parents or []) if row else []
            # JSON containment differs between SQLite and PostgreSQL; a text match narrows, Python confirms.
            child_rows = conn.execute(
                sa.select(t.dataset_versions.c.id, t.dataset_versions.c.parents, t.dataset_versions.c.created_at).where(
                    sa.cast(t.dataset_versions.c.parents, sa.Text).like(f'%"{version.id}"%')
                )
            ).all()
            child_ids = [r.id for r in child_rows if version.id in (r.parents or [])]
            refs = version_refs(conn, parent_ids + child_ids)
            created = dict(
                conn.execute(
                    sa.select(t.dataset_versions.c.id, t.dataset_versions.c.created_at).where(
                        t.dataset_versions.c.id.in_(parent_ids + child_ids)
                    )
                ).all()
            )

            def node(i: str) -> LineageNode:
                return LineageNode(type="dataset_version", id=i, name=refs.get(i), created_at=created.get(i))

            usages = conn.execute(
                sa.select(t.data_usages)
                .where(t.data_usages.c.dataset_version_id == version.id)
                .order_by(t.data_usages.c.created_at)
            ).all()
            names = _consumer_names(conn, usages)
            produced_by, used_by = [], []
            for u in usages:
                n = LineageNode(
                    type=u.consumer_type,
                    id=u.consumer_id,
                    name=names.get((u.consumer_type, u.consumer_id)),
                    role=u.role,
                    created_at=u.created_at,
                )
                (produced_by if u.role == "output" else used_by).append(n)
        return DatasetLineage(
            ref=version.ref,
            digest=version.digest,
            parents=[node(i) for i in parent_ids],
            children=[node(i) for i in child_ids],
            produced_by=produced_by,
            used_by=used_by,
        )


def _consumer_names(conn: sa.Connection, usages: list[sa.Row]) -> dict[tuple[str, str], str]:
    """Readable names: run name, pipeline name, ``pipeline/step``, ``model/3``."""
    by_type: dict[str, list[str]] = {}
    for u in usages:
        by_type.setdefault(u.consumer_type, []).append(u.consumer_id)
    names: dict[tuple[str, str], str] = {}
    if ids := by_type.get("run"):
        for r in conn.execute(sa.select(t.runs.c.id, t.runs.c.name).where(t.runs.c.id.in_(ids))):
            names[("run", r.id)] = r.name
    if ids := by_type.get("pipeline_run"):
        for r in conn.execute(
            sa.select(t.pipeline_runs.c.id, t.pipeline_runs.c.name).where(t.pipeline_runs.c.id.in_(ids))
        ):
            names[("pipeline_run", r.id)] = r.name
    if ids := by_type.get("step_run"):
        for r in conn.execute(
            sa.select(t.step_runs.c.id, t.step_runs.c.name, t.pipeline_runs.c.name.label("pipeline"))
            .join(t.pipeline_runs, t.pipeline_runs.c.id == t.step_runs.c.pipeline_run_id)
            .where(t.step_runs.c.id.in_(ids))
        ):
            names[("step_run", r.id)] = f"{r.pipeline}/{r.name}"
    if ids := by_type.get("model_version"):
        for r in conn.execute(
            sa.select(t.model_versions.c.id, t.model_versions.c.version, t.registered_models.c.name)
            .join(t.registered_models, t.registered_models.c.id == t.model_versions.c.model_id)
            .where(t.model_versions.c.id.in_(ids))
        ):
            names[("model_version", r.id)] = f"{r.name}/{r.version}"
    return names


def _stats(column: dict[str, Any]) -> dict[str, Any]:
    values = {k: column.get(k) for k in DIFF_STATS if k != "median"}
    values["median"] = (column.get("quantiles") or {}).get("0.5")
    return values


def _column_changes(a: DatasetVersion, b: DatasetVersion) -> list[ColumnChange]:
    types_a = {c["name"]: c for c in a.schema or []}
    types_b = {c["name"]: c for c in b.schema or []}
    prof_a = (a.profile or {}).get("columns", {})
    prof_b = (b.profile or {}).get("columns", {})
    names = list(types_a) + [n for n in types_b if n not in types_a]
    changes: list[ColumnChange] = []
    for name in names:
        ca, cb = types_a.get(name), types_b.get(name)
        if cb is None:
            changes.append(ColumnChange(name=name, change="removed", type_a=ca and ca.get("type")))
            continue
        if ca is None:
            changes.append(ColumnChange(name=name, change="added", type_b=cb.get("type")))
            continue
        stats: dict[str, dict[str, Any]] = {}
        sa_, sb_ = _stats(prof_a.get(name, {})), _stats(prof_b.get(name, {}))
        for stat in DIFF_STATS:
            va, vb = sa_.get(stat), sb_.get(stat)
            if va != vb:
                entry: dict[str, Any] = {"a": va, "b": vb}
                if isinstance(va, (int, float)) and isinstance(vb, (int, float)) and not isinstance(va, bool):
                    entry["delta"] = vb - va
                stats[stat] = entry
        type_changed = ca.get("type") != cb.get("type") or ca.get("nullable") != cb.get("nullable")
        if type_changed or stats:
            changes.append(
                ColumnChange(
                    name=name,
                    change="type_changed" if type_changed else "stats_changed",
                    type_a=ca.get("type"),
                    type_b=cb.get("type"),
                    stats=stats,
                )
            )
    return changes
