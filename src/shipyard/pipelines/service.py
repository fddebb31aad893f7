"""PipelineService: the records of pipeline definitions, pipeline runs, step runs and schedules."""

from __future__ import annotations

from shipyard.artifacts import ArtifactStore
from shipyard.store.database import Database
from shipyard.tracking.service import TrackingService


class PipelineService:
    def __init__(self, db: Database, artifacts: ArtifactStore, tracking: TrackingService):
        self.db = db
        self.artifacts = artifacts
        self.tracking = tracking
