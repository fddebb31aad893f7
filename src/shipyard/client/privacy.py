"""The SDK's privacy calls, mixed into :class:`shipyard.Client`: erasure and retention."""

from __future__ import annotations

from typing import Any

from shipyard.governance.privacy_entities import Erasure, RetentionPolicy, RetentionRun


class PrivacyMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def erase_subject(self, subject: dict[str, Any], dry_run: bool = False) -> Erasure:
        """Erase a data subject (``{"user_id": "42"}``; every pair must match) from prediction logs,
        feedback, labels, datasets and monitor samples, and flag the model versions trained on it."""
        if isinstance(subject, dict):  # numbers travel as text: the service compares values as text
            subject = {k: _text(v) for k, v in subject.items()}
        return self._call("privacy", "erase_subject", subject=subject, dry_run=dry_run)

    def get_erasure(self, erasure_id: str) -> Erasure:
        return self._call("privacy", "get_erasure", erasure_id=erasure_id)

    def list_erasures(self, limit: int = 100) -> list[Erasure]:
        return self._call("privacy", "list_erasures", limit=limit)

    def set_retention(self, target: str, max_age_days: float) -> RetentionPolicy:
        """Keep ``target`` (predictions, feedback or labels) for at most ``max_age_days`` days."""
        return self._call("privacy", "set_retention", target=target, max_age_days=max_age_days)

    def list_retention(self) -> list[RetentionPolicy]:
        return self._call("privacy", "list_retention")

    def remove_retention(self, target: str) -> None:
        self._call("privacy", "remove_retention", target=target)

    def enforce_retention(self, now_ms: int | None = None) -> RetentionRun:
        """Delete what the retention policies say is too old (what the server's loop runs)."""
        return self._call("privacy", "enforce_retention", now_ms=now_ms)


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) if isinstance(value, int | float) else value
