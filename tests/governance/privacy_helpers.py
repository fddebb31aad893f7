"""Helpers for the privacy tests: the server-side services behind any client, and a byte-level search
of the artifact store (Parquet decoded, compressed profile blobs inflated) for an erased value."""

from __future__ import annotations

import contextlib
import json
import os
import zlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

SUBJECT_EMAIL = "seven.subject@example.org"


@contextlib.contextmanager
def server_services(client: Any) -> Iterator[Any]:
    """The services holding the client's store: its own when embedded, the server's when remote."""
    if not client.is_remote:
        yield client._backend.services
        return
    from shipyard.services import Services

    services = Services(client.server_settings)
    try:
        yield services
    finally:
        services.close()


def customers(n: int = 40, seed: int = 0) -> pd.DataFrame:
    """People with an id, an email and two features; user 7 is the data subject."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user_id": np.arange(n, dtype="int64"),
            "email": [f"person{i}@example.org" for i in range(n)],
            "x": rng.normal(size=n),
            "z": rng.normal(size=n),
        }
    )
    frame.loc[7, "email"] = SUBJECT_EMAIL
    frame["y"] = (frame["x"] + frame["z"] > 0).astype("int64")
    return frame


def files_holding(roots: list[str], needle: str) -> list[str]:
    """Every file under ``roots`` whose content holds ``needle``: raw, inside decoded Parquet (values
    are compressed there), or inside zlib-compressed blobs (monitor profiles)."""
    import pyarrow.parquet as pq

    raw = needle.encode()
    hits = []
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                with open(path, "rb") as f:
                    data = f.read()
                if raw in data:
                    hits.append(path)
                elif data[:4] == b"PAR1":
                    table = pq.read_table(path)
                    if needle in json.dumps(table.to_pydict(), default=str):
                        hits.append(path)
                else:
                    with contextlib.suppress(zlib.error):
                        if raw in zlib.decompress(data):
                            hits.append(path)
    return hits


def store_roots(services: Any) -> list[str]:
    """The artifact store and the home's dataset cache (hard links into the store)."""
    return [str(services.artifacts.root), os.path.join(str(services.settings.home), "cache")]


def journal_text(services: Any) -> str:
    from shipyard.store import schema as t

    with services.db.read() as conn:
        rows = conn.execute(sa.select(t.journal.c.action, t.journal.c.entity_id, t.journal.c.payload)).all()
    return json.dumps([list(r) for r in rows], default=str)


def erasures_text(services: Any) -> str:
    from shipyard.store import schema as t

    with services.db.read() as conn:
        rows = conn.execute(sa.select(t.erasures)).all()
    return json.dumps([dict(r._mapping) for r in rows], default=str)


def ids_in(services: Any, table: str) -> set[str]:
    from shipyard.store import schema as t

    tbl = getattr(t, table)
    with services.db.read() as conn:
        return set(conn.execute(sa.select(tbl.c.prediction_id)).scalars())
