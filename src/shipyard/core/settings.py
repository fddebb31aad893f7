"""Where Shipyard keeps its state, resolved once from arguments, then environment, then defaults.

Embedded default: everything under the Shipyard home (``./.shipyard`` unless ``SHIPYARD_HOME``
or ``--home`` says otherwise): ``shipyard.db`` (SQLite, WAL) and ``artifacts/``.
``SHIPYARD_STORE_URI`` points the metadata store at PostgreSQL, ``SHIPYARD_ARTIFACT_URI`` the
artifact store at any fsspec URL, and ``SHIPYARD_URI=http://host:port`` makes the SDK a client
of a remote ``shipyard server``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    home: Path
    store_uri: str
    artifact_uri: str
    remote_uri: str | None = None
    actor: str = field(default_factory=lambda: default_actor())

    @classmethod
    def resolve(
        cls,
        home: str | os.PathLike[str] | None = None,
        store_uri: str | None = None,
        artifact_uri: str | None = None,
        remote_uri: str | None = None,
    ) -> Settings:
        home_path = Path(home or os.environ.get("SHIPYARD_HOME") or ".shipyard").expanduser().absolute()
        store = store_uri or os.environ.get("SHIPYARD_STORE_URI") or f"sqlite:///{home_path / 'shipyard.db'}"
        artifacts = artifact_uri or os.environ.get("SHIPYARD_ARTIFACT_URI") or str(home_path / "artifacts")
        remote = remote_uri if remote_uri is not None else os.environ.get("SHIPYARD_URI") or None
        return cls(home=home_path, store_uri=store, artifact_uri=artifacts, remote_uri=remote)

    @property
    def is_remote(self) -> bool:
        return bool(self.remote_uri)


def default_actor() -> str:
    """The local OS user; embedded mode acts as this user and records it in the journal."""
    explicit = os.environ.get("SHIPYARD_USER")
    if explicit:
        return explicit
    try:
        import getpass

        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return f"uid:{os.getuid()}"
