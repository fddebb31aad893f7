"""Fixtures for the search-language tests: one SQLite file and one PostgreSQL database per session.

PostgreSQL is the server every development and CI machine runs on 127.0.0.1:5432 (``SHIPYARD_TEST_PG``
overrides the admin URL); a uniquely named database, with an ICU en-US default collation where the
server has ICU, is created for the session and dropped at its end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from shipyard.store import Database

PG_ADMIN_URL = os.environ.get("SHIPYARD_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    path: Path = tmp_path_factory.mktemp("search") / "store.db"
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def pg_db() -> Iterator[Database]:
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"shipyard_search_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        try:
            # A linguistic default collation ('a' < 'B'), to prove text order does not depend on it.
            conn.exec_driver_sql(
                f"CREATE DATABASE \"{name}\" TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
            )
        except sa.exc.DBAPIError:  # a server without ICU
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    db = Database(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
