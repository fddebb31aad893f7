"""Subscriber filters: action names (exact, or a prefix ending in '.') and entity types."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from shipyard.core.errors import InvalidInput
from shipyard.store.schema import journal


def check_filter(values: Sequence[str] | None, field: str) -> list[str]:
    """``None`` or ``[]`` matches everything; ``run.*`` is accepted for the prefix ``run.``."""
    if values is None:
        return []
    if isinstance(values, str) or not all(isinstance(v, str) and v.strip() for v in values):
        raise InvalidInput(f"{field} must be a list of non-empty strings", field=field)
    return sorted({v.strip()[:-1] if v.strip().endswith(".*") else v.strip() for v in values})


def matches(actions: Sequence[str], entity_types: Sequence[str], action: str, entity_type: str) -> bool:
    if entity_types and entity_type not in entity_types:
        return False
    if not actions:
        return True
    return any(action.startswith(a) if a.endswith(".") else action == a for a in actions)


def where(actions: Sequence[str], entity_types: Sequence[str]) -> list[sa.ColumnElement[bool]]:
    """The same filter as SQL conditions on the journal table."""
    conditions: list[sa.ColumnElement[bool]] = []
    if entity_types:
        conditions.append(journal.c.entity_type.in_(list(entity_types)))
    if actions:
        conditions.append(
            sa.or_(*(journal.c.action.startswith(a) if a.endswith(".") else journal.c.action == a for a in actions))
        )
    return conditions
