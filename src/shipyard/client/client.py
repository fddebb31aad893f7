"""``shipyard.Client``: the SDK, identical embedded (straight to the store) or remote (``SHIPYARD_URI``).

Every method is a thin call into the service layer through a backend; the only logic here is
what must run on the caller's side: capturing the caller's environment, saving model objects to
files, moving artifact bytes, batching metric points, and caching verified model trees.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from shipyard.artifacts import materialize_tree, put_path, put_tree, read_manifest, verify_tree
from shipyard.client.access import AccessMixin
from shipyard.client.audit import AuditMixin
from shipyard.client.automations import AutomationsMixin
from shipyard.client.backends import EmbeddedBackend, RemoteBackend
from shipyard.client.contracts import ContractsMixin
from shipyard.client.data import DatasetsMixin
from shipyard.client.deploy import DeployMixin
from shipyard.client.evaluations import EvaluationsMixin
from shipyard.client.events import EventsMixin
from shipyard.client.governance import GovernanceMixin
from shipyard.client.inventory import InventoryMixin
from shipyard.client.metric_queue import MetricQueue, QueuedPoint
from shipyard.client.monitoring import MonitoringMixin
from shipyard.client.pipelines import PipelinesMixin
from shipyard.client.privacy import PrivacyMixin
from shipyard.client.schedules import SchedulesMixin
from shipyard.core.context import reproducing
from shipyard.core.errors import AlreadyExists, InvalidInput
from shipyard.core.hashing import hex_of
from shipyard.core.names import check_key, check_metric_value
from shipyard.core.settings import Settings
from shipyard.core.time import now_ms
from shipyard.registry.entities import AliasMove, ModelVersion, RegisteredModel
from shipyard.store.entities import JournalEntry
from shipyard.tracking.entities import Artifact, Experiment, MetricHistory, MetricPoint, Run, RunPage, RunStatus

MODEL_DESCRIPTOR = "shipyard-model.json"
MAX_WRITE = 20_000  # points per synchronous write call


class Client(
    DatasetsMixin,
    ContractsMixin,
    PipelinesMixin,
    SchedulesMixin,
    DeployMixin,
    MonitoringMixin,
    AccessMixin,
    GovernanceMixin,
    EvaluationsMixin,
    AuditMixin,
    PrivacyMixin,
    InventoryMixin,
    EventsMixin,
    AutomationsMixin,
):
    """Talk to Shipyard. ``Client()`` reads ``SHIPYARD_URI`` / ``SHIPYARD_HOME`` / ``SHIPYARD_STORE_URI``."""

    def __init__(
        self,
        uri: str | None = None,
        *,
        home: str | os.PathLike[str] | None = None,
        store_uri: str | None = None,
        artifact_uri: str | None = None,
        token: str | None = None,
    ):
        """``token``: the API token for a remote server (default: SHIPYARD_TOKEN, then `shipyard login`'s file)."""
        self.settings = Settings.resolve(home=home, store_uri=store_uri, artifact_uri=artifact_uri, remote_uri=uri)
        self._backend: EmbeddedBackend | RemoteBackend = (
            RemoteBackend(self.settings, token=token) if self.settings.is_remote else EmbeddedBackend(self.settings)
        )
        self._metrics = MetricQueue(self._write_metrics)
        self._valid_keys: set[str] = set()
        self.seeds: dict[str, int] = {}

    @property
    def is_remote(self) -> bool:
        return self._backend.remote

    @property
    def artifacts(self):
        return self._backend.artifacts

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:
        return self._backend.call(service, operation, **kwargs)

    def close(self) -> None:
        self._metrics.close()
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------------------
    # Experiments

    def create_experiment(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> Experiment:
        return self._call("tracking", "create_experiment", name=name, description=description, tags=tags)

    def get_experiment(self, id_or_name: str) -> Experiment:
        return self._call("tracking", "get_experiment", id_or_name=id_or_name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        from shipyard.core.errors import NotFound

        try:
            return self.get_experiment(name)
        except NotFound:
            from shipyard.core.errors import AlreadyExists

            try:
                return self.create_experiment(name)
            except AlreadyExists:  # another process created it meanwhile
                return self.get_experiment(name)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self._call("tracking", "list_experiments", include_deleted=include_deleted)

    def update_experiment(self, experiment: str, name: str | None = None, description: str | None = None) -> Experiment:
        return self._call("tracking", "update_experiment", experiment=experiment, name=name, description=description)

    def delete_experiment(self, experiment: str) -> Experiment:
        return self._call("tracking", "set_experiment_lifecycle", experiment=experiment, lifecycle="deleted")

    def restore_experiment(self, experiment: str) -> Experiment:
        return self._call("tracking", "set_experiment_lifecycle", experiment=experiment, lifecycle="active")

    def set_experiment_tags(self, experiment: str, tags: dict[str, str]) -> Experiment:
        return self._call("tracking", "set_experiment_tags", experiment=experiment, tags=tags)

    # ----------------------------------------------------------------------------------------------
    # Runs

    def create_run(
        self,
        experiment: str | None = None,
        name: str | None = None,
        *,
        description: str | None = None,
        parent_run_id: str | None = None,
        tags: dict[str, str] | None = None,
        capture_environment: bool = True,
    ) -> Run:
        environment = None
        if capture_environment:
            from shipyard.tracking.environment import capture_environment as capture

            environment = capture()
            if self.seeds:
                environment["seeds"] = dict(self.seeds)
        return self._call(
            "tracking",
            "create_run",
            experiment=experiment,
            name=name,
            description=description,
            parent_run_id=parent_run_id,
            tags=tags,
            user=self.settings.actor,
            environment=environment,
        )

    def get_run(self, run_id: str) -> Run:
        self._metrics.flush()
        return self._call("tracking", "get_run", run_id=run_id)

    def end_run(self, run_id: str, status: RunStatus | str = RunStatus.FINISHED) -> Run:
        try:
            self._metrics.flush()
        finally:
            run = self._call("tracking", "update_run", run_id=run_id, status=RunStatus(status))
        return run

    def update_run(self, run_id: str, name: str | None = None, description: str | None = None) -> Run:
        return self._call("tracking", "update_run", run_id=run_id, name=name, description=description)

    def delete_run(self, run_id: str) -> Run:
        return self._call("tracking", "set_run_lifecycle", run_id=run_id, lifecycle="deleted")

    def restore_run(self, run_id: str) -> Run:
        return self._call("tracking", "set_run_lifecycle", run_id=run_id, lifecycle="active")

    def search_runs(
        self,
        experiments: list[str] | None = None,
        filter: str | None = None,
        order_by: list[str] | None = None,
        max_results: int = 100,
        page_token: str | None = None,
        include_deleted: bool = False,
    ) -> RunPage:
        self._metrics.flush()
        return self._call(
            "tracking",
            "search_runs",
            experiments=experiments,
            filter=filter,
            order_by=order_by,
            max_results=max_results,
            page_token=page_token,
            include_deleted=include_deleted,
        )

    def iter_runs(
        self, experiments: list[str] | None = None, filter: str | None = None, order_by: list[str] | None = None
    ):
        """Every matching run, following page tokens."""
        token = None
        while True:
            page = self.search_runs(experiments, filter, order_by, max_results=1000, page_token=token)
            yield from page.runs
            token = page.next_page_token
            if not token:
                return

    # ----------------------------------------------------------------------------------------------
    # Params, metrics, tags

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_params(run_id, {key: value})

    def log_params(self, run_id: str, params: dict[str, Any]) -> None:
        self._call("tracking", "log_params", run_id=run_id, params=params)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        step: int = 0,
        timestamp: int | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Queue one point (validated now, written in the background); ``synchronous=True`` writes at once."""
        self._log_points(run_id, [self._point(key, value, step, timestamp or now_ms())], synchronous)

    def log_metrics(self, run_id: str, metrics: dict[str, float], step: int = 0, timestamp: int | None = None) -> None:
        stamp = timestamp or now_ms()
        for key, value in metrics.items():
            self.log_metric(run_id, key, value, step, stamp)

    def log_batch(
        self,
        run_id: str,
        metrics: list[MetricPoint] | list[tuple[str, float, int]] | None = None,
        params: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
        *,
        synchronous: bool = False,
    ) -> None:
        """Log many points, params and tags in one call.

        Params and tags are written at once. Metric points are validated at once and, like
        :meth:`log_metric`'s, written by the background queue in large batches unless
        ``synchronous=True``; an error found when writing them surfaces at the next flush.
        """
        if params or tags:
            self._call("tracking", "log_batch", run_id=run_id, params=params, tags=tags)
        stamp = now_ms()
        points = [
            self._point(p.key, p.value, p.step, p.timestamp or stamp)
            if isinstance(p, MetricPoint)
            else self._point(p[0], p[1], p[2], stamp)
            for p in metrics or []
        ]
        if points:
            self._log_points(run_id, points, synchronous)

    def _point(self, key: str, value: Any, step: int, timestamp: int) -> QueuedPoint:
        if key not in self._valid_keys:
            check_key(key, "metric key")
            self._valid_keys.add(key)
        return QueuedPoint(key, check_metric_value(value, key), int(step), timestamp)

    def _log_points(self, run_id: str, points: list[QueuedPoint], synchronous: bool) -> None:
        if synchronous:
            self._metrics.flush()
            for start in range(0, len(points), MAX_WRITE):
                self._write_metrics(run_id, points[start : start + MAX_WRITE])
        else:
            self._metrics.put_many(run_id, points)

    def _write_metrics(self, run_id: str, points: list[QueuedPoint]) -> None:
        # In-process the service reads the tuples' attributes directly; over HTTP they travel as objects.
        payload = [p._asdict() for p in points] if self.is_remote else points
        self._call("tracking", "log_metrics", run_id=run_id, points=payload)

    def flush(self) -> None:
        self._metrics.flush()

    def get_metric_history(self, run_id: str, key: str, max_points: int | None = None) -> MetricHistory:
        self._metrics.flush()
        return self._call("tracking", "metric_history", run_id=run_id, key=key, max_points=max_points)

    def set_tag(self, run_id: str, key: str, value: str) -> None:
        self.set_tags(run_id, {key: value})

    def set_tags(self, run_id: str, tags: dict[str, str]) -> None:
        self._call("tracking", "set_run_tags", run_id=run_id, tags=tags)

    def delete_tag(self, run_id: str, key: str) -> None:
        self._call("tracking", "delete_run_tag", run_id=run_id, key=key)

    # ----------------------------------------------------------------------------------------------
    # Artifacts

    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        """Store a file or directory (content-addressed) and record it under ``artifact_path`` of the run."""
        path = Path(local_path)
        if not path.exists():
            raise InvalidInput(f"no such file or directory: {path}", field="local_path")
        digest, size, is_tree = put_path(self.artifacts, str(path))
        return self._call(
            "tracking",
            "log_artifact",
            run_id=run_id,
            path=artifact_path or path.name,
            digest=digest,
            size=size,
            is_tree=is_tree,
        )

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> Artifact:
        return self.log_artifact(run_id, local_dir, artifact_path or Path(local_dir).name)

    def log_text(self, run_id: str, text: str, artifact_path: str) -> Artifact:
        digest, size = self.artifacts.put_bytes(text.encode())
        return self._call(
            "tracking", "log_artifact", run_id=run_id, path=artifact_path, digest=digest, size=size, is_tree=False
        )

    def log_dict(self, run_id: str, value: dict[str, Any], artifact_path: str) -> Artifact:
        return self.log_text(run_id, json.dumps(value, indent=2, sort_keys=True, default=str), artifact_path)

    def list_artifacts(self, run_id: str) -> list[Artifact]:
        return self._call("tracking", "list_artifacts", run_id=run_id)

    def download_artifacts(self, run_id: str, path: str, dest: str | os.PathLike[str]) -> Path:
        """Materialise a run artifact (file or tree) at ``dest``; contents are verified against digests."""
        artifact = next((a for a in self.list_artifacts(run_id) if a.path == path.strip("/")), None)
        if artifact is None:
            from shipyard.core.errors import NotFound

            raise NotFound(f"run {run_id} has no artifact {path!r}", field="path")
        return self.download_digest(artifact.digest, dest, is_tree=artifact.is_tree)

    def download_digest(self, digest: str, dest: str | os.PathLike[str], is_tree: bool) -> Path:
        dest_path = Path(dest)
        if is_tree:
            materialize_tree(self.artifacts, digest, str(dest_path))
        else:
            target = dest_path / "blob" if dest_path.is_dir() else dest_path
            self.artifacts.get_file(digest, str(target))
            return target
        return dest_path

    # ----------------------------------------------------------------------------------------------
    # Models

    def log_model(
        self,
        run_id: str,
        model: Any,
        artifact_path: str = "model",
        *,
        flavor: str | None = None,
        input_example: Any = None,
        signature: dict[str, Any] | None = None,
        registered_model_name: str | None = None,
        data_refs: list[str] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> Artifact | ModelVersion:
        """Save ``model`` with its flavor into the run's artifacts; optionally register it in one go."""
        from shipyard.registry.flavors import save_model

        with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
            target = Path(tmp) / "model"
            save_model(model, target, flavor=flavor, signature=signature, input_example=input_example)
            tree = put_tree(self.artifacts, str(target))
        artifact = self._call(
            "tracking",
            "log_artifact",
            run_id=run_id,
            path=artifact_path,
            digest=tree.digest,
            size=tree.total_size,
            is_tree=True,
        )
        if registered_model_name:
            return self.register_model(
                f"runs:/{run_id}/{artifact_path}",
                registered_model_name,
                data_refs=data_refs,
                description=description,
                tags=tags,
            )
        return artifact

    def register_model(
        self,
        source: Any,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        data_refs: list[str] | None = None,
        input_example: Any = None,
        flavor: str | None = None,
    ) -> ModelVersion:
        """Register ``source`` — a ``runs:/`` URI, a model directory, or a model object — as the next version."""
        run: Run | None = None
        if isinstance(source, str) and source.startswith("runs:/"):
            resolved = self._call("registry", "resolve_tree", uri=source)
            digest = resolved["digest"]
            run = self.get_run(resolved["run_id"])
        elif isinstance(source, (str, os.PathLike)) and Path(source).is_dir():
            digest = put_tree(self.artifacts, str(source)).digest
        elif isinstance(source, (str, os.PathLike)):
            raise InvalidInput(f"model source {source!s} is neither a runs:/ URI nor a directory", field="source")
        else:
            from shipyard.registry.flavors import save_model

            with tempfile.TemporaryDirectory(prefix="shipyard-model-") as tmp:
                target = Path(tmp) / "model"
                save_model(source, target, flavor=flavor, input_example=input_example)
                digest = put_tree(self.artifacts, str(target)).digest
        descriptor = self._descriptor(digest)
        if reproducing():
            # `shipyard reproduce` re-runs a pipeline to compare what it builds: the model is logged to the
            # step's run as usual, but the registry is left as it was.
            now = now_ms()
            return ModelVersion(
                id="", model_name=name, version=0, digest=digest, flavor=descriptor.get("flavor") or "files",
                source_run_id=run.id if run else None, created_at=now, updated_at=now,
                tags={"shipyard.reproduction": "true"},
            )  # fmt: skip
        if run is not None and run.environment:
            environment = run.environment
        else:
            from shipyard.tracking.environment import capture_environment

            environment = capture_environment()
        git = environment.get("git") or {}
        return self._call(
            "registry",
            "create_version",
            name=name,
            digest=digest,
            flavor=descriptor.get("flavor") or flavor or "files",
            source_run_id=run.id if run else None,
            source_uri=source if isinstance(source, str) else None,
            signature=descriptor.get("signature"),
            input_example=descriptor.get("input_example"),
            code_commit=git.get("commit"),
            environment=environment,
            data_refs=data_refs,
            description=description,
            tags=tags,
        )

    def _descriptor(self, digest: str) -> dict[str, Any]:
        manifest = read_manifest(self.artifacts, digest)
        entry = manifest["entries"].get(MODEL_DESCRIPTOR)
        if entry is None:
            return {}
        return json.loads(self.artifacts.read_bytes(entry["digest"]))

    def load_model(self, uri: str):
        """Load a model by URI (``models:/NAME@alias``, ``models:/NAME/3``, ``runs:/ID/model``).

        The tree is materialised in a local cache and every file is checked against the tree's
        digests before anything is deserialised; a mismatch raises IntegrityError. A registered
        version's signatures must also verify over its digest (see ``verified_model_dir``).
        """
        from shipyard.registry.flavors import load_model as load_from_dir

        resolved = self._call("registry", "resolve_tree", uri=uri)
        version = resolved.get("version")
        if version is not None:
            directory = self.verified_model_dir(version["model_name"], version["version"], resolved["digest"])
        else:
            directory = self.materialize_model(resolved["digest"])
        return load_from_dir(directory)

    def materialize_model(self, digest: str) -> Path:
        cache = self.settings.home / "cache" / "models" / hex_of(digest)
        if cache.exists():
            if not verify_tree(self.artifacts, digest, str(cache)):
                return cache
            shutil.rmtree(cache)  # tampered or partial: rebuild from verified objects
        cache.parent.mkdir(parents=True, exist_ok=True)
        try:
            materialize_tree(self.artifacts, digest, str(cache), link=False)
        except (OSError, AlreadyExists):
            # Another process (a Dask worker beside this one) renamed its complete copy into place
            # first: the rename is atomic, so a directory there is whole; check it like any cache hit.
            if not cache.exists() or verify_tree(self.artifacts, digest, str(cache)):
                raise
        return cache

    def create_model(
        self, name: str, description: str | None = None, tags: dict[str, str] | None = None
    ) -> RegisteredModel:
        return self._call("registry", "create_model", name=name, description=description, tags=tags)

    def get_model(self, name: str) -> RegisteredModel:
        return self._call("registry", "get_model", name=name)

    def list_models(self, name_like: str | None = None) -> list[RegisteredModel]:
        return self._call("registry", "list_models", name_like=name_like)

    def update_model(self, name: str, description: str | None = None) -> RegisteredModel:
        return self._call("registry", "update_model", name=name, description=description)

    def delete_model(self, name: str) -> None:
        self._call("registry", "delete_model", name=name)

    def set_model_tags(self, name: str, tags: dict[str, str]) -> RegisteredModel:
        return self._call("registry", "set_model_tags", name=name, tags=tags)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self._call("registry", "get_version", name=name, version=int(version))

    def list_versions(self, name: str) -> list[ModelVersion]:
        return self._call("registry", "list_versions", name=name)

    def update_version(self, name: str, version: int, description: str | None = None) -> ModelVersion:
        return self._call("registry", "update_version", name=name, version=int(version), description=description)

    def set_version_tags(self, name: str, version: int, tags: dict[str, str]) -> ModelVersion:
        return self._call("registry", "set_version_tags", name=name, version=int(version), tags=tags)

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        if reproducing() and int(version) == 0:  # the version a reproduction did not register
            return self.get_version_by_alias(name, alias)
        return self._call("registry", "set_alias", name=name, alias=alias, version=int(version))

    def delete_alias(self, name: str, alias: str) -> None:
        self._call("registry", "delete_alias", name=name, alias=alias)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self._call("registry", "get_version_by_alias", name=name, alias=alias)

    def alias_history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        return self._call("registry", "alias_history", name=name, alias=alias)

    def resolve_model(self, uri: str) -> ModelVersion:
        resolved = self._call("registry", "resolve_tree", uri=uri)
        if resolved.get("version") is None:
            raise InvalidInput(f"{uri!r} is not a registered model version", field="uri")
        return ModelVersion(**resolved["version"])

    # ----------------------------------------------------------------------------------------------
    # Journal

    def read_journal(
        self,
        after: int = 0,
        limit: int = 100,
        entity_type: str | None = None,
        entity_id: str | None = None,
        action: str | None = None,
    ) -> list[JournalEntry]:
        return self._call(
            "journal", "read", after=after, limit=limit, entity_type=entity_type, entity_id=entity_id, action=action
        )

    def verify_journal(self) -> dict[str, Any]:
        """Recompute the journal's hash chain; names the first altered, inserted or removed entry."""
        return self._call("journal", "verify")

    def last_journal_seq(self) -> int:
        return self._call("journal", "last_seq")
