"""The metadata store: SQLAlchemy schema, Alembic migrations, the unit of work and the journal.

``Database`` is imported lazily so that importing the SDK for remote use does not load SQLAlchemy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Database"]


def __getattr__(name: str) -> Any:
    if name == "Database":
        from shipyard.store.database import Database

        return Database
    raise AttributeError(name)
