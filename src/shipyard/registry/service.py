"""The model registry: registered models, immutable content-addressed versions, aliases.

A version's identity is the digest of its artifact tree; the tree must already be in the artifact
store when the version is registered, and the registration is one transaction, so a crash leaves
either no version or a complete one. Aliases move atomically and every move is journaled; the
alias history is read back from the journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore, read_manifest
from shipyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.core.hashing import normalize_digest
from shipyard.core.ids import new_id
from shipyard.core.names import MAX_DESCRIPTION, check_alias, check_key, check_name, check_text
from shipyard.core.time import now_ms
from shipyard.data.service import DatasetService
from shipyard.data.usage import record_usage, training_inputs_of_run, version_refs
from shipyard.registry.entities import AliasMove, ModelVersion, RegisteredModel
from shipyard.registry.uri import ModelRef, RunRef, parse_model_uri
from shipyard.store import schema as t
from shipyard.store.database import Database, Tx
from shipyard.store.journal import JournalService
from shipyard.store.tags import delete_tag, get_tags, set_tags, validate_tags
from shipyard.tracking.service import TrackingService

MAX_VERSION = 2**31 - 1  # the column is a 32-bit INTEGER on PostgreSQL


class RegistryService:
    def __init__(self, db: Database, artifacts: ArtifactStore, tracking: TrackingService, data: DatasetService):
        self.db = db
        self.artifacts = artifacts
        self.tracking = tracking
        self.data = data
        # Governance plugs in here (services.py): hooks run inside the registering transaction with
        # (tx, model name, version number, version id, digest); guards run before an alias moves with
        # (tx, model name, alias, version row or None for a removal) and raise to refuse it.
        self.version_hooks: list[Callable[[Tx, str, int, str, str], None]] = []
        self.alias_guards: list[Callable[[Tx, str, str, sa.Row | None], None]] = []

    # ----------------------------------------------------------------------------------------------
    # Registered models

    def create_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        check_name(name, "model name")
        description = check_text(description, "description", MAX_DESCRIPTION) if description else None
        tag_values = validate_tags(tags)
        with self.db.write() as tx:
            if self._model_row(tx.conn, name, required=False) is not None:
                raise AlreadyExists(f"registered model {name!r} already exists", field="name")
            model_id = self._insert_model(tx, name, description)
            set_tags(tx, "model", model_id, tag_values)
            tx.journal(
                "model.created",
                "model",
                model_id,
                {"after": {"name": name, "description": description, "tags": tag_values}},
            )
        return self.get_model(name)

    def _insert_model(self, tx: Tx, name: str, description: str | None) -> str:
        model_id = new_id()
        now = now_ms()
        tx.conn.execute(
            t.registered_models.insert().values(
                id=model_id, name=name, description=description, created_by=tx.actor, created_at=now, updated_at=now
            )
        )
        return model_id

    def _model_row(self, conn: sa.Connection, name: str, required: bool = True, lock: bool = False) -> sa.Row | None:
        query = sa.select(t.registered_models).where(t.registered_models.c.name == name)
        if lock and conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None and required:
            raise NotFound(f"registered model {name!r} not found", field="model")
        return row

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.read() as conn:
            row = self._model_row(conn, name)
            return self._models(conn, [row])[0]

    def _models(self, conn: sa.Connection, rows: list[sa.Row]) -> list[RegisteredModel]:
        ids = [r.id for r in rows]
        if not ids:
            return []
        alias_rows = conn.execute(
            sa.select(t.model_aliases.c.model_id, t.model_aliases.c.alias, t.model_versions.c.version)
            .join(t.model_versions, t.model_versions.c.id == t.model_aliases.c.version_id)
            .where(t.model_aliases.c.model_id.in_(ids))
        )
        aliases: dict[str, dict[str, int]] = {i: {} for i in ids}
        for model_id, alias, version in alias_rows:
            aliases[model_id][alias] = version
        latest = dict(
            conn.execute(
                sa.select(t.model_versions.c.model_id, sa.func.max(t.model_versions.c.version))
                .where(t.model_versions.c.model_id.in_(ids))
                .group_by(t.model_versions.c.model_id)
            ).all()
        )
        all_tags = get_tags(conn, "model", ids)
        return [
            RegisteredModel(
                **r._mapping, tags=all_tags.get(r.id, {}), aliases=aliases[r.id], latest_version=latest.get(r.id)
            )
            for r in rows
        ]

    def list_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        query = sa.select(t.registered_models).order_by(t.registered_models.c.name)
        if name_like:
            query = query.where(t.registered_models.c.name.like(name_like))
        with self.db.read() as conn:
            return self._models(conn, conn.execute(query).all())

    def update_model(self, name: str, description: str | None = None) -> RegisteredModel:
        with self.db.write() as tx:
            row = self._model_row(tx.conn, name)
            if description is not None and description != row.description:
                description = check_text(description, "description", MAX_DESCRIPTION)
                tx.conn.execute(
                    t.registered_models.update()
                    .where(t.registered_models.c.id == row.id)
                    .values(description=description, updated_at=now_ms())
                )
                tx.journal(
                    "model.updated",
                    "model",
                    row.id,
                    {"before": {"description": row.description}, "after": {"description": description}},
                )
        return self.get_model(name)

    def delete_model(self, name: str) -> None:
        """Only a model without versions can be deleted: released versions are immutable history."""
        with self.db.write() as tx:
            row = self._model_row(tx.conn, name)
            count = tx.conn.execute(
                sa.select(sa.func.count()).select_from(t.model_versions).where(t.model_versions.c.model_id == row.id)
            ).scalar_one()
            if count:
                raise Conflict(f"registered model {name!r} has {count} version(s) and cannot be deleted", field="model")
            tx.conn.execute(t.tags.delete().where(t.tags.c.entity_type == "model", t.tags.c.entity_id == row.id))
            tx.conn.execute(t.registered_models.delete().where(t.registered_models.c.id == row.id))
            tx.journal("model.deleted", "model", row.id, {"before": {"name": name}})

    def set_model_tags(self, name: str, tags: dict[str, str]) -> RegisteredModel:
        values = validate_tags(tags)
        with self.db.write() as tx:
            row = self._model_row(tx.conn, name)
            before = set_tags(tx, "model", row.id, values)
            if before:
                tx.journal(
                    "model.tags_set", "model", row.id, {"before": before, "after": {k: values[k] for k in before}}
                )
        return self.get_model(name)

    def delete_model_tag(self, name: str, key: str) -> None:
        with self.db.write() as tx:
            row = self._model_row(tx.conn, name)
            old = delete_tag(tx, "model", row.id, key)
            if old is None:
                raise NotFound(f"model {name!r} has no tag {key!r}", field="key")
            tx.journal("model.tag_deleted", "model", row.id, {"before": {key: old}})

    # ----------------------------------------------------------------------------------------------
    # Versions

    def create_version(
        self,
        name: str,
        digest: str,
        flavor: str,
        source_run_id: str | None = None,
        source_uri: str | None = None,
        signature: dict[str, Any] | None = None,
        input_example: dict[str, Any] | None = None,
        code_commit: str | None = None,
        environment: dict[str, Any] | None = None,
        data_refs: list[str] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ModelVersion:
        """Register the artifact tree ``digest`` as the next version of ``name`` (created if missing).

        ``data_refs`` name dataset versions (``NAME@3``; a bare ``NAME`` pins its latest version). The
        version's data lineage is those plus every dataset version its source run — and, for a pipeline
        step's run, its pipeline run — loaded; ``data_refs`` comes back as the pinned ``NAME@N`` list.
        """
        check_name(name, "model name")
        digest = normalize_digest(digest)
        check_key(flavor, "flavor")
        description = check_text(description, "description", MAX_DESCRIPTION) if description else None
        tag_values = validate_tags(tags)
        if not self.artifacts.has(digest):
            raise NotFound(f"model tree {digest} is not in the artifact store; upload it first", field="digest")
        read_manifest(self.artifacts, digest)  # refuses anything that is not a tree manifest
        if source_run_id is not None:
            self.tracking.get_run(source_run_id)
        dataset_version_ids = [self.data.resolve_version(ref).id for ref in data_refs or []]
        for attempt in range(3):
            try:
                number = self._insert_version(
                    name,
                    digest,
                    flavor,
                    source_run_id,
                    source_uri,
                    signature,
                    input_example,
                    code_commit,
                    environment,
                    dataset_version_ids,
                    description,
                    tag_values,
                )
                break
            except AlreadyExists:
                if attempt == 2:  # two writers created the model or took the number at once: retry
                    raise
        return self.get_version(name, number)

    def _insert_version(
        self,
        name: str,
        digest: str,
        flavor: str,
        source_run_id: str | None,
        source_uri: str | None,
        signature: dict[str, Any] | None,
        input_example: dict[str, Any] | None,
        code_commit: str | None,
        environment: dict[str, Any] | None,
        dataset_version_ids: list[str],
        description: str | None,
        tag_values: dict[str, str],
    ) -> int:
        version_id = new_id()
        with self.db.write() as tx:
            if source_run_id is not None:
                dataset_version_ids = dataset_version_ids + training_inputs_of_run(tx.conn, source_run_id)
            dataset_version_ids = list(dict.fromkeys(dataset_version_ids))
            refs = version_refs(tx.conn, dataset_version_ids)
            data_refs = [refs[i] for i in dataset_version_ids]
            row = self._model_row(tx.conn, name, required=False, lock=True)
            if row is None:
                model_id = self._insert_model(tx, name, None)
                tx.journal("model.created", "model", model_id, {"after": {"name": name}})
            else:
                model_id = row.id
            number = (
                tx.conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(t.model_versions.c.version), 0)).where(
                        t.model_versions.c.model_id == model_id
                    )
                ).scalar_one()
                + 1
            )
            now = now_ms()
            values = {
                "id": version_id,
                "model_id": model_id,
                "version": number,
                "digest": digest,
                "flavor": flavor,
                "source_run_id": source_run_id,
                "source_uri": source_uri,
                "signature": signature,
                "input_example": input_example,
                "code_commit": code_commit,
                "environment": environment,
                "data_refs": data_refs,
                "description": description,
                "created_by": tx.actor,
                "created_at": now,
                "updated_at": now,
            }
            tx.conn.execute(t.model_versions.insert().values(**values))
            tx.conn.execute(
                t.registered_models.update().where(t.registered_models.c.id == model_id).values(updated_at=now)
            )
            set_tags(tx, "version", version_id, tag_values)
            for dataset_version_id in dataset_version_ids:
                record_usage(tx, dataset_version_id, "model_version", version_id, "input")
            summary = {
                k: values[k] for k in ("version", "digest", "flavor", "source_run_id", "source_uri", "data_refs")
            }
            tx.journal(
                "version.registered", "model", model_id, {"after": {"name": name, **summary, "tags": tag_values}}
            )
            for hook in self.version_hooks:
                hook(tx, name, number, version_id, digest)
        return number

    def _version_row(self, conn: sa.Connection, name: str, version: int) -> tuple[sa.Row, sa.Row]:
        model = self._model_row(conn, name)
        if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
            raise InvalidInput(f"version must be an integer from 1 to {MAX_VERSION}, not {version!r}", field="version")
        row = conn.execute(
            sa.select(t.model_versions).where(
                t.model_versions.c.model_id == model.id, t.model_versions.c.version == version
            )
        ).first()
        if row is None:
            raise NotFound(f"model {name!r} has no version {version}", field="version")
        return model, row

    def _versions(self, conn: sa.Connection, model: sa.Row, rows: list[sa.Row]) -> list[ModelVersion]:
        ids = [r.id for r in rows]
        aliases: dict[str, list[str]] = {i: [] for i in ids}
        for alias, version_id in conn.execute(
            sa.select(t.model_aliases.c.alias, t.model_aliases.c.version_id).where(
                t.model_aliases.c.version_id.in_(ids)
            )
        ):
            aliases[version_id].append(alias)
        all_tags = get_tags(conn, "version", ids)
        return [
            ModelVersion(
                **{k: v for k, v in r._mapping.items() if k != "model_id"},
                model_name=model.name,
                aliases=sorted(aliases[r.id]),
                tags=all_tags.get(r.id, {}),
            )
            for r in rows
        ]

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.db.read() as conn:
            model, row = self._version_row(conn, name, version)
            return self._versions(conn, model, [row])[0]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            rows = conn.execute(
                sa.select(t.model_versions)
                .where(t.model_versions.c.model_id == model.id)
                .order_by(t.model_versions.c.version)
            ).all()
            return self._versions(conn, model, rows)

    def update_version(self, name: str, version: int, description: str | None = None) -> ModelVersion:
        """Only the description of a version can change; its content and lineage are immutable."""
        with self.db.write() as tx:
            model, row = self._version_row(tx.conn, name, version)
            if description is not None and description != row.description:
                description = check_text(description, "description", MAX_DESCRIPTION)
                tx.conn.execute(
                    t.model_versions.update()
                    .where(t.model_versions.c.id == row.id)
                    .values(description=description, updated_at=now_ms())
                )
                tx.journal(
                    "version.updated",
                    "model",
                    model.id,
                    {
                        "version": version,
                        "before": {"description": row.description},
                        "after": {"description": description},
                    },
                )
        return self.get_version(name, version)

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> ModelVersion:
        values = validate_tags(tags)
        with self.db.write() as tx:
            model, row = self._version_row(tx.conn, name, version)
            before = set_tags(tx, "version", row.id, values)
            if before:
                tx.journal(
                    "version.tags_set",
                    "model",
                    model.id,
                    {"version": version, "before": before, "after": {k: values[k] for k in before}},
                )
        return self.get_version(name, version)

    # ----------------------------------------------------------------------------------------------
    # Aliases

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        check_alias(alias)
        with self.db.write() as tx:
            model, row = self._version_row(tx.conn, name, version)
            for guard in self.alias_guards:
                guard(tx, name, alias, row)
            current = tx.conn.execute(
                sa.select(t.model_aliases.c.version_id, t.model_versions.c.version)
                .join(t.model_versions, t.model_versions.c.id == t.model_aliases.c.version_id)
                .where(t.model_aliases.c.model_id == model.id, t.model_aliases.c.alias == alias)
            ).first()
            if current is None:
                tx.conn.execute(
                    t.model_aliases.insert().values(
                        model_id=model.id, alias=alias, version_id=row.id, updated_at=now_ms()
                    )
                )
            elif current.version_id != row.id:
                tx.conn.execute(
                    t.model_aliases.update()
                    .where(t.model_aliases.c.model_id == model.id, t.model_aliases.c.alias == alias)
                    .values(version_id=row.id, updated_at=now_ms())
                )
            if current is None or current.version_id != row.id:
                tx.journal(
                    "alias.set",
                    "model",
                    model.id,
                    {
                        "alias": alias,
                        "before": {"version": current.version if current else None},
                        "after": {"version": version},
                    },
                )
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with self.db.write() as tx:
            model = self._model_row(tx.conn, name)
            for guard in self.alias_guards:
                guard(tx, name, alias, None)
            version = self._alias_version(tx.conn, model, alias)
            tx.conn.execute(
                t.model_aliases.delete().where(t.model_aliases.c.model_id == model.id, t.model_aliases.c.alias == alias)
            )
            tx.journal(
                "alias.deleted",
                "model",
                model.id,
                {"alias": alias, "before": {"version": version}, "after": {"version": None}},
            )

    def _alias_version(self, conn: sa.Connection, model: sa.Row, alias: str) -> int:
        version = conn.execute(
            sa.select(t.model_versions.c.version)
            .join(t.model_aliases, t.model_versions.c.id == t.model_aliases.c.version_id)
            .where(t.model_aliases.c.model_id == model.id, t.model_aliases.c.alias == alias)
        ).scalar()
        if version is None:
            raise NotFound(f"model {model.name!r} has no alias {alias!r}", field="alias")
        return int(version)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        with self.db.read() as conn:
            model = self._model_row(conn, name)
            version = self._alias_version(conn, model, alias)
        return self.get_version(name, version)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        with self.db.read() as conn:
            model = self._model_row(conn, name)
        entries = JournalService(self.db).read(
            after=0, limit=10_000, entity_type="model", entity_id=model.id, action="alias."
        )
        moves = [
            AliasMove(
                seq=e.seq,
                ts=e.ts,
                actor=e.actor,
                alias=e.payload["alias"],
                from_version=e.payload["before"]["version"],
                to_version=e.payload["after"]["version"],
            )
            for e in entries
            if e.payload
        ]
        return [m for m in moves if alias is None or m.alias == alias]

    # ----------------------------------------------------------------------------------------------
    # URIs

    def resolve(self, uri: str) -> ModelVersion:
        """The version a ``models:/`` URI names (``runs:/`` URIs are resolved by :meth:`resolve_tree`)."""
        ref = parse_model_uri(uri)
        if isinstance(ref, RunRef):
            raise InvalidInput(f"{uri!r} names a run artifact, not a registered version", field="uri")
        return self._resolve_ref(ref)

    def _resolve_ref(self, ref: ModelRef) -> ModelVersion:
        if ref.alias is not None:
            return self.get_version_by_alias(ref.name, ref.alias)
        if ref.version is not None:
            return self.get_version(ref.name, ref.version)
        latest = self.get_model(ref.name).latest_version
        if latest is None:
            raise NotFound(f"registered model {ref.name!r} has no versions", field="uri")
        return self.get_version(ref.name, latest)

    def resolve_tree(self, uri: str) -> dict[str, Any]:
        """The artifact tree digest behind any model URI, with the version when there is one."""
        ref = parse_model_uri(uri)
        if isinstance(ref, RunRef):
            artifact = self.tracking.get_artifact(ref.run_id, ref.path)
            if not artifact.is_tree:
                raise InvalidInput(f"{uri!r} is a single file, not a model directory", field="uri")
            return {"digest": artifact.digest, "version": None, "run_id": ref.run_id}
        version = self._resolve_ref(ref)
        return {"digest": version.digest, "version": version.model_dump(), "run_id": version.source_run_id}
