"""What is kept of an erasure: the journal entry's summary and the record read back.

Keys, counts and the versions involved — never the erased value.
"""

from __future__ import annotations

from typing import Any

from shipyard.governance.privacy_entities import Erasure


def journal_summary(report: Erasure) -> dict[str, Any]:
    """What the journal keeps of an erasure: keys, counts and the versions involved — no value."""
    return {
        "subject_keys": report.subject_keys,
        "predictions": report.predictions,
        "segments_rewritten": report.segments_rewritten,
        "segments_deleted": report.segments_deleted,
        "feedback": report.feedback,
        "labels": report.labels,
        "routed": report.routed,
        "datasets": [d.model_dump() for d in report.datasets],
        "model_versions": [f"{m.model}/{m.version}" for m in report.model_versions],
        "monitors": [m.monitor for m in report.monitors],
    }


def erasure_of(row: Any) -> Erasure:
    summary = {k: v for k, v in dict(row["summary"] or {}).items() if k in Erasure.model_fields}
    return Erasure(**summary, id=row["id"], actor=row["actor"], created_at=row["created_at"])
