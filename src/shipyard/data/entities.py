"""Dataset entities: datasets, their immutable versions, diffs between versions, and lineage."""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, Field

FORMATS = ("parquet", "csv", "jsonl", "files")


# The field (and the create_version request field the API generates) is called ``schema``; it
# shadows pydantic's deprecated ``BaseModel.schema()`` classmethod, which nobody should call here.
warnings.filterwarnings("ignore", message='Field name "schema" in "', category=UserWarning)


class DatasetVersion(BaseModel):
    """One immutable version: its identity is ``digest``, the tree digest of its files."""

    id: str
    name: str
    version: int
    ref: str  # "NAME@3"
    digest: str
    format: str  # parquet | csv | jsonl | files
    file_count: int
    size: int
    row_count: int | None = None
    schema: list[dict[str, Any]] | None = None  # [{"name", "type" (arrow type string), "nullable"}]
    profile: dict[str, Any] | None = None
    source_uri: str | None = None
    parents: list[str] = Field(default_factory=list)  # refs of the versions it was derived from
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    created_by: str | None = None
    created_at: int

    @property
    def columns(self) -> list[str]:
        return [c["name"] for c in self.schema or []]


class Dataset(BaseModel):
    id: str
    name: str
    description: str | None = None
    latest_version: int | None = None
    version_count: int = 0
    created_by: str | None = None
    created_at: int
    updated_at: int


class FileChange(BaseModel):
    path: str
    change: str  # added | removed | changed
    size_a: int | None = None
    size_b: int | None = None


class ColumnChange(BaseModel):
    """A column whose presence, type, nullability or statistics differ between two versions."""

    name: str
    change: str  # added | removed | type_changed | stats_changed
    type_a: str | None = None
    type_b: str | None = None
    stats: dict[str, dict[str, Any]] = Field(default_factory=dict)  # statistic → {"a": .., "b": .., "delta": ..}


class DatasetDiff(BaseModel):
    a: str
    b: str
    digest_a: str
    digest_b: str
    identical: bool
    files: list[FileChange] = Field(default_factory=list)
    row_count_a: int | None = None
    row_count_b: int | None = None
    size_a: int
    size_b: int
    columns: list[ColumnChange] = Field(default_factory=list)


class LineageNode(BaseModel):
    """A run, pipeline run, step run, model version or dataset version next to a dataset version."""

    type: str  # run | pipeline_run | step_run | model_version | dataset_version
    id: str
    name: str | None = None  # a readable name: run name, pipeline name, "step in pipeline", "model/3", "NAME@2"
    role: str | None = None  # for usages: input | output
    created_at: int | None = None


class DatasetLineage(BaseModel):
    ref: str
    digest: str
    parents: list[LineageNode] = Field(default_factory=list)  # dataset versions it was derived from
    children: list[LineageNode] = Field(default_factory=list)  # dataset versions derived from it
    produced_by: list[LineageNode] = Field(default_factory=list)  # consumers that wrote it (role output)
    used_by: list[LineageNode] = Field(default_factory=list)  # consumers that read it (role input)
