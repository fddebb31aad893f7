"""Tags of any entity kind (experiment, run, model, version): one table, one code path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import sqlalchemy as sa

from shipyard.core.names import MAX_TAG_VALUE, check_key, check_text
from shipyard.store.database import Tx
from shipyard.store.schema import tags


def validate_tags(values: dict[str, object] | None) -> dict[str, str]:
    checked: dict[str, str] = {}
    for key, value in (values or {}).items():
        check_key(key, "tag key")
        checked[key] = check_text(value, f"tags.{key}", MAX_TAG_VALUE)
    return checked


def set_tags(tx: Tx, entity_type: str, entity_id: str, values: dict[str, str]) -> dict[str, str | None]:
    """Upsert tags; return the previous value of each key (None when new). Unchanged keys are skipped."""
    if not values:
        return {}
    existing = get_tags(tx.conn, entity_type, [entity_id]).get(entity_id, {})
    before: dict[str, str | None] = {}
    for key, value in values.items():
        if existing.get(key) == value:
            continue
        before[key] = existing.get(key)
        if key in existing:
            tx.conn.execute(
                tags.update()
                .where(tags.c.entity_type == entity_type, tags.c.entity_id == entity_id, tags.c.key == key)
                .values(value=value)
            )
        else:
            tx.conn.execute(tags.insert().values(entity_type=entity_type, entity_id=entity_id, key=key, value=value))
    return before


def delete_tag(tx: Tx, entity_type: str, entity_id: str, key: str) -> str | None:
    existing = get_tags(tx.conn, entity_type, [entity_id]).get(entity_id, {})
    if key not in existing:
        return None
    tx.conn.execute(
        tags.delete().where(tags.c.entity_type == entity_type, tags.c.entity_id == entity_id, tags.c.key == key)
    )
    return existing[key]


def get_tags(conn: sa.Connection, entity_type: str, entity_ids: Iterable[str]) -> dict[str, dict[str, str]]:
    ids = list(entity_ids)
    result: dict[str, dict[str, str]] = defaultdict(dict)
    if not ids:
        return result
    rows = conn.execute(
        sa.select(tags.c.entity_id, tags.c.key, tags.c.value).where(
            tags.c.entity_type == entity_type, tags.c.entity_id.in_(ids)
        )
    )
    for entity_id, key, value in rows:
        result[entity_id][key] = value
    return result
