"""DatasetService: named, numbered, immutable dataset versions, their profiles, diffs and lineage."""

from __future__ import annotations

from shipyard.artifacts import ArtifactStore
from shipyard.store.database import Database


class DatasetService:
    def __init__(self, db: Database, artifacts: ArtifactStore):
        self.db = db
        self.artifacts = artifacts
