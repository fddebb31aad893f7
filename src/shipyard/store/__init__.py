"""The metadata store: SQLAlchemy schema, Alembic migrations, the unit of work and the journal."""

from shipyard.store.database import Database

__all__ = ["Database"]
