"""What the automations API returns: rules (one version each) and firings."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class AutomationRule(BaseModel):
    """A rule at one version; ``enabled`` and ``latest`` describe the rule as a whole."""

    name: str
    version: int
    latest: int  # the rule's current version (firings use it)
    enabled: bool
    description: str | None = None
    on: list[str]
    where: dict[str, Any] | None = None
    where_text: str = ""  # the condition written back as an expression
    actions: list[dict[str, Any]]
    text: str
    digest: str
    created_by: str | None = None
    created_at: int
    updated_at: int


class AutomationFiring(BaseModel):
    """One action of one rule fired by one event: the unique (rule, seq, action_index) makes it once."""

    id: int
    rule: str
    rule_version: int
    seq: int
    event_action: str
    action_index: int
    action: str
    status: str  # running | succeeded | failed
    result: dict[str, Any] | None = None
    error: str | None = None
    started_at: int
    finished_at: int | None = None

    @property
    def duration_ms(self) -> int | None:
        return None if self.finished_at is None else self.finished_at - self.started_at
