"""The SDK's data calls, mixed into :class:`shipyard.Client`.

What runs on the caller's side: writing DataFrames/Tables as Parquet, snapshotting files into the
artifact store (through ``self.artifacts``, so remote clients upload to the server's blob API) with
the local stat cache, profiling table data where the files are, and reading versions back from a
verified local copy. Everything else is one service call.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from shipyard.artifacts import materialize_tree
from shipyard.core.errors import AlreadyExists, InvalidInput, NotFound
from shipyard.core.hashing import hex_of
from shipyard.core.names import check_name
from shipyard.data.entities import Dataset, DatasetDiff, DatasetLineage, DatasetVersion
from shipyard.data.formats import data_files, detect_format, is_frame, read_table, write_frame
from shipyard.data.service import parse_ref
from shipyard.data.snapshot import Snapshot, snapshot_path
from shipyard.data.statcache import StatCache, default_cache
from shipyard.store.tags import validate_tags


class DatasetsMixin:
    """Methods use ``self._call(service, operation, **kwargs)`` and ``self.artifacts`` of the Client."""

    settings: Any  # provided by Client
    last_snapshot: Snapshot | None = None  # what the latest log_dataset had to hash (for progress and tests)

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    @property
    def artifacts(self) -> Any:  # provided by Client
        raise NotImplementedError

    @property
    def is_remote(self) -> bool:  # provided by Client
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------
    # Writing

    def _stat_cache(self) -> StatCache:
        store_key = self.settings.remote_uri if self.is_remote else str(self.artifacts.root)
        return default_cache(self.settings.home, store_key)

    def log_dataset(
        self,
        source: Any,
        name: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        parents: list[str] | None = None,
        run_id: str | None = None,
        profile: bool = True,
        on_plan: Callable[[int, int], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> DatasetVersion:
        """Register a version of ``name`` from a file, a directory, a pandas DataFrame or a pyarrow Table.

        Content identical to the latest version returns that version. Table data (Parquet, CSV,
        JSON lines) is profiled; ``profile=False`` skips that (no schema, row count or profile).
        ``on_plan(files, bytes)`` and ``on_progress(bytes)`` report the hashing work.
        """
        # Cheap checks first: a bad name, tag or parent ref should not cost a snapshot.
        check_name(name, "dataset name")
        validate_tags(tags)
        for ref in parents or []:
            parse_ref(ref)
        if is_frame(source):
            with tempfile.TemporaryDirectory(prefix="shipyard-frame-") as tmp:
                write_frame(source, tmp)
                # Temporary paths are never seen again, so the stat cache would only grow.
                snap = snapshot_path(tmp, self.artifacts, None, on_plan=on_plan, progress=on_progress)
                return self._register(
                    snap,
                    name,
                    f"python:{type(source).__module__}.{type(source).__name__}",
                    tmp,
                    description,
                    tags,
                    parents,
                    run_id,
                    profile,
                )
        if not isinstance(source, (str, os.PathLike)):
            raise InvalidInput(
                f"cannot make a dataset from {type(source).__name__}: "
                "pass a path, a pandas DataFrame or a pyarrow Table",
                field="source",
            )
        path = Path(source).expanduser().absolute()
        home = Path(self.settings.home).resolve()
        # Leave out the Shipyard home when it lies inside the directory (``shipyard data add .``).
        exclude = [str(home)] if home.is_relative_to(path.resolve()) else []
        cache = self._stat_cache()
        try:
            snap = snapshot_path(
                path,
                self.artifacts,
                cache,
                exclude=exclude,
                on_plan=on_plan,
                progress=on_progress,
            )
        finally:
            cache.close()
        return self._register(snap, name, path.as_uri(), str(path), description, tags, parents, run_id, profile)

    def _register(
        self,
        snap: Snapshot,
        name: str,
        source_uri: str,
        local_root: str,
        description: str | None,
        tags: dict[str, str] | None,
        parents: list[str] | None,
        run_id: str | None,
        profile: bool,
    ) -> DatasetVersion:
        self.last_snapshot = snap
        fmt = detect_format(snap.entries)
        try:
            latest: DatasetVersion | None = self._call("data", "resolve_version", ref=name)
        except NotFound:
            latest = None
        if latest is not None and latest.digest == snap.digest:
            if not tags and run_id is None:
                return latest  # unchanged: no profiling, no write (like a no-op `dvc add`)
            # Same content: the service keeps the version and only adds the tags and the run edge.
            return self._call(
                "data",
                "create_version",
                name=name,
                digest=snap.digest,
                format=latest.format,
                file_count=latest.file_count,
                size=latest.size,
                # Should another version land first, this becomes a new version: keep it complete.
                row_count=latest.row_count,
                schema=latest.schema,
                profile=latest.profile,
                source_uri=source_uri,
                tags=tags,
                run_id=run_id,
            )
        row_count = schema = stats = None
        if profile and fmt != "files":
            from shipyard.data.profile import profile_files

            single = os.path.isfile(local_root)
            paths = []
            for rel in data_files(snap.entries, fmt):
                # Profile the stored bytes where the store is local, so the profile describes exactly the
                # version even if a source file changes meanwhile; a remote store's client reads its sources.
                stored = self.artifacts.local_path(snap.entries[rel].digest)
                paths.append(stored or (local_root if single else os.path.join(local_root, *rel.split("/"))))
            table = profile_files(paths, fmt)
            row_count, schema, stats = table.row_count, table.schema, table.profile
        return self._call(
            "data",
            "create_version",
            name=name,
            digest=snap.digest,
            format=fmt,
            file_count=snap.file_count,
            size=snap.size,
            row_count=row_count,
            schema=schema,
            profile=stats,
            source_uri=source_uri,
            parents=parents,
            description=description,
            tags=tags,
            run_id=run_id,
        )

    def set_dataset_tags(self, ref: str, tags: dict[str, str]) -> DatasetVersion:
        version = self.get_dataset(ref)
        return self._call("data", "set_version_tags", name=version.name, version=version.version, tags=tags)

    def record_dataset_usage(
        self, ref: str, consumer_type: str, consumer_id: str, role: str = "input"
    ) -> DatasetVersion:
        return self._call(
            "data", "record_usage", ref=ref, consumer_type=consumer_type, consumer_id=consumer_id, role=role
        )

    # ----------------------------------------------------------------------------------------------
    # Reading

    def get_dataset(self, ref: str) -> DatasetVersion:
        """The version ``ref`` names: ``NAME@3``, ``NAME`` or ``NAME@latest``."""
        return self._call("data", "resolve_version", ref=ref)

    def list_datasets(self, name_like: str | None = None) -> list[Dataset]:
        return self._call("data", "list_datasets", name_like=name_like)

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        """Every version of ``name``, newest first."""
        return self._call("data", "list_versions", name=name)

    def dataset_as_of(self, name: str, when: str | int | dt.datetime) -> DatasetVersion:
        """The latest version of ``name`` created at or before ``when`` (ISO-8601, epoch ms or datetime)."""
        if isinstance(when, dt.datetime):
            when = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).isoformat()
        return self._call("data", "as_of", name=name, time=str(when))

    def diff_datasets(self, ref_a: str, ref_b: str) -> DatasetDiff:
        return self._call("data", "diff", ref_a=ref_a, ref_b=ref_b)

    def dataset_lineage(self, ref: str) -> DatasetLineage:
        return self._call("data", "lineage", ref=ref)

    def get_dataset_files(self, ref: str, dest: str | os.PathLike[str], link: bool = True) -> Path:
        """Materialise the version's files at ``dest`` (which must not exist or be empty), verified.

        With ``link`` and a local store, files are hard links to the store's read-only, shared
        objects: read them, never modify them in place (``link=False`` copies).
        """
        version = self.get_dataset(ref)
        _refuse_erased(version)
        materialize_tree(self.artifacts, version.digest, os.fspath(dest), link=link)
        return Path(dest)

    def _local_copy(self, version: DatasetVersion) -> Path:
        """A verified local copy of the version's files, kept under the home's cache by digest."""
        _refuse_erased(version)
        target = Path(self.settings.home) / "cache" / "datasets" / hex_of(version.digest)
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(AlreadyExists):  # another process materialised it meanwhile
                materialize_tree(self.artifacts, version.digest, str(target), link=True)
        return target

    def load_dataset(
        self,
        ref: str,
        *,
        as_: str = "pandas",
        consumers: Iterable[tuple[str, str]] = (),
        record: bool = True,
    ) -> Any:
        """Read a tabular version as a pandas DataFrame (``as_="pandas"``) or pyarrow Table (``"arrow"``).

        With ``record`` the version is recorded as an input of each ``(consumer_type, consumer_id)``.
        """
        if as_ not in ("pandas", "arrow"):
            raise InvalidInput(f'as_ must be "pandas" or "arrow", not {as_!r}', field="as_")
        version = self.get_dataset(ref)
        rels = data_files(self._manifest_paths(version), version.format)
        if version.format == "files" or not rels:
            raise InvalidInput(
                f"dataset {version.ref} holds no table data (format {version.format}); use get_dataset_files",
                field="ref",
            )
        root = self._local_copy(version)
        table = read_table([str(root.joinpath(*rel.split("/"))) for rel in rels], version.format)
        if record:
            for consumer_type, consumer_id in dict.fromkeys(consumers):
                self.record_dataset_usage(version.ref, consumer_type, consumer_id, "input")
        return table.to_pandas() if as_ == "pandas" else table

    def _manifest_paths(self, version: DatasetVersion) -> list[str]:
        from shipyard.artifacts import read_manifest

        return list(read_manifest(self.artifacts, version.digest)["entries"])


def _refuse_erased(version: DatasetVersion) -> None:
    """A version whose files an erasure purged (governance/erasure/) says so, and what to read instead."""
    from shipyard.governance.privacy_entities import erased_notice

    notice = erased_notice(version.ref, version.tags)
    if notice:
        raise NotFound(notice, field="ref")
