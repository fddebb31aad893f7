"""Privacy entities: what an erasure did (never what it erased) and the retention policies.

Kept free of heavy imports: the SDK's dataset reader imports :func:`erased_notice` to refuse, with a
clear message, a dataset version whose rows were purged by an erasure.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

# Tags an erasure sets: on purged dataset versions, on the versions it wrote, on flagged model versions.
ERASED_BY_TAG = "shipyard.erased_by"  # on a dataset version whose blobs holding the subject were deleted
SUCCESSOR_TAG = "shipyard.erased_successor"  # … and the version to read instead
ERASURE_TAG = "shipyard.erasure"  # on a version written by an erasure, and on flagged model versions

RETENTION_TARGETS = ("predictions", "feedback", "labels")


class DatasetErasure(BaseModel):
    """One dataset that held the subject."""

    dataset: str
    rows: int  # the subject's rows in the latest version (0 when only older versions held it)
    erased_versions: list[str] = Field(default_factory=list)  # refs whose blobs holding the subject are purged
    new_version: str | None = None  # the version written without the subject (None: the latest lacked it)
    validation_rows: int = 0  # the subject's failing rows removed from stored validation reports


class MonitorErasure(BaseModel):
    """A monitor that held the subject: its reference sample rows, or windows segmented by the subject's key."""

    monitor: str
    reference_rows: int = 0  # rows removed from the stored reference sample
    windows: int = 0  # windows of the segment "KEY=VALUE" deleted
    key_in_bins: list[str] = Field(default_factory=list)  # subject keys the monitor profiles as columns


class FlaggedModelVersion(BaseModel):
    model: str
    version: int
    reasons: list[str]  # "trained on NAME@3", "input example"


class Erasure(BaseModel):
    """The record of an erasure: keys and counts only — the erased value is stored nowhere."""

    id: str | None = None  # None for a dry run
    subject_keys: list[str]
    dry_run: bool = False
    status: str = "complete"  # planned (dry run) | purging (blobs still to delete) | complete
    predictions: int = 0  # prediction-log rows removed (served and batch-logged)
    segments_rewritten: int = 0
    segments_deleted: int = 0
    feedback: int = 0
    labels: int = 0
    routed: int = 0
    datasets: list[DatasetErasure] = Field(default_factory=list)
    model_versions: list[FlaggedModelVersion] = Field(default_factory=list)
    monitors: list[MonitorErasure] = Field(default_factory=list)
    blobs_deleted: int = 0
    blobs_kept: list[dict[str, Any]] = Field(default_factory=list)  # {"digest", "referenced_by"}: not deleted
    actor: str | None = None
    created_at: int | None = None


class RetentionPolicy(BaseModel):
    target: str  # predictions | feedback | labels
    max_age_days: float
    max_age_ms: int
    last_enforced_at: int | None = None
    updated_by: str | None = None
    updated_at: int


class RetentionRun(BaseModel):
    """What one enforcement removed, per target (targets without a policy are absent from ``cutoffs``)."""

    enforced_at: int
    cutoffs: dict[str, int] = Field(default_factory=dict)  # target -> epoch ms: older rows were removed
    predictions: int = 0
    segments_deleted: int = 0
    segments_rewritten: int = 0
    routed: int = 0
    feedback: int = 0
    labels: int = 0
    blobs_deleted: int = 0


def erased_notice(ref: str, tags: dict[str, str]) -> str | None:
    """The message for reading ``ref`` when an erasure purged its rows, else None."""
    erasure = tags.get(ERASED_BY_TAG)
    if not erasure:
        return None
    successor = tags.get(SUCCESSOR_TAG)
    instead = f"; read {successor} instead" if successor else ""
    return (
        f"dataset version {ref} was erased by erasure {erasure}: its files holding a data subject were deleted{instead}"
    )
