"""The service layer, assembled: one object holding every domain service over one store.

Embedded SDK calls and the HTTP server both go through an instance of :class:`Services`, so the
rules live in exactly one place.
"""

from __future__ import annotations

from functools import cached_property

from shipyard.artifacts import ArtifactStore
from shipyard.automation.automation_service import AutomationService
from shipyard.automation.service import EventService
from shipyard.core.settings import Settings
from shipyard.data.service import DatasetService
from shipyard.data.validation.service import ContractService
from shipyard.deploy.service import DeploymentService
from shipyard.governance.access import AccessService
from shipyard.governance.audit_service import AuditService
from shipyard.governance.evaluation_service import EvaluationService
from shipyard.governance.inventory import InventoryService
from shipyard.governance.privacy_service import PrivacyService
from shipyard.governance.service import GovernanceService
from shipyard.monitoring.service import MonitoringService
from shipyard.pipelines.jobs import JobService
from shipyard.pipelines.schedules import ScheduleService
from shipyard.pipelines.service import PipelineService
from shipyard.registry.service import RegistryService
from shipyard.serving.segments import PredictionSegmentService
from shipyard.store.database import Database
from shipyard.store.journal import JournalService
from shipyard.tracking.service import TrackingService


class Services:
    def __init__(self, settings: Settings, *, require_auth: bool = False):
        self.settings = settings
        # Embedded mode acts as the local OS user with admin rights; a server authenticates every caller.
        self.require_auth = require_auth
        settings.home.mkdir(parents=True, exist_ok=True)
        self.db = Database(settings.store_uri)
        self.artifacts = ArtifactStore(settings.artifact_uri)

    @cached_property
    def tracking(self) -> TrackingService:
        return TrackingService(self.db, self.artifacts)

    @cached_property
    def registry(self) -> RegistryService:
        registry = RegistryService(self.db, self.artifacts, self.tracking, self.data)
        registry.alias_guards.append(lambda *args: self.access.guard_alias(*args))
        # the server key signs each new version's digest inside the registering transaction
        registry.version_hooks.append(lambda *args: self.audit.sign_registration(*args))
        return registry

    @cached_property
    def data(self) -> DatasetService:
        return DatasetService(self.db, self.artifacts)

    @cached_property
    def contracts(self) -> ContractService:
        return ContractService(self.db, self.artifacts, self.data)

    @cached_property
    def pipelines(self) -> PipelineService:
        return PipelineService(self.db, self.artifacts, self.tracking)

    @cached_property
    def schedules(self) -> ScheduleService:
        return ScheduleService(self.db)

    @cached_property
    def jobs(self) -> JobService:
        return JobService(self.settings)

    @cached_property
    def deploy(self) -> DeploymentService:
        deploy = DeploymentService(self.db, self.registry)
        deploy.deploy_gates.append(lambda *args: self.governance.deploy_gate(*args))
        deploy.live_hooks.append(lambda *args: self.governance.mark_live(*args))
        return deploy

    @cached_property
    def predictions(self) -> PredictionSegmentService:
        return PredictionSegmentService(self.db)

    @cached_property
    def monitoring(self) -> MonitoringService:
        return MonitoringService(self.db, self.artifacts, self.settings)

    @cached_property
    def journal(self) -> JournalService:
        return JournalService(self.db)

    @cached_property
    def events(self) -> EventService:
        return EventService(self.db)

    @cached_property
    def automations(self) -> AutomationService:
        return AutomationService(self)

    @cached_property
    def access(self) -> AccessService:
        return AccessService(self.db, local_admin=None if self.require_auth else self.settings.actor)

    @cached_property
    def governance(self) -> GovernanceService:
        return GovernanceService(self)

    @cached_property
    def evaluations(self) -> EvaluationService:
        return EvaluationService(self)

    @cached_property
    def audit(self) -> AuditService:
        return AuditService(self)

    @cached_property
    def privacy(self) -> PrivacyService:
        return PrivacyService(self)

    @cached_property
    def inventory(self) -> InventoryService:
        return InventoryService(self)

    def close(self) -> None:
        if "monitoring" in self.__dict__:
            self.monitoring.close()
        self.db.dispose()


# The class behind each service attribute, for code that needs signatures without an instance.
SERVICE_CLASSES: dict[str, type] = {
    "tracking": TrackingService,
    "registry": RegistryService,
    "data": DatasetService,
    "contracts": ContractService,
    "pipelines": PipelineService,
    "schedules": ScheduleService,
    "jobs": JobService,
    "deploy": DeploymentService,
    "predictions": PredictionSegmentService,
    "monitoring": MonitoringService,
    "journal": JournalService,
    "events": EventService,
    "automations": AutomationService,
    "access": AccessService,
    "governance": GovernanceService,
    "evaluations": EvaluationService,
    "audit": AuditService,
    "privacy": PrivacyService,
    "inventory": InventoryService,
}
