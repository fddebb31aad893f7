"""ContractService: versioned data contracts per dataset and the validation reports of dataset versions."""

from __future__ import annotations

from shipyard.artifacts import ArtifactStore
from shipyard.data.service import DatasetService
from shipyard.store.database import Database


class ContractService:
    def __init__(self, db: Database, artifacts: ArtifactStore, data: DatasetService):
        self.db = db
        self.artifacts = artifacts
        self.data = data
