"""The SDK's endpoint and deployment calls, mixed into :class:`shipyard.Client`."""

from __future__ import annotations

from typing import Any

from shipyard.deploy.entities import Deployment, DeploymentStatus, Endpoint, Feedback
from shipyard.deploy.plan import ReplicaPlan


class DeployMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    # -- endpoints

    def list_endpoints(self) -> list[Endpoint]:
        return self._call("deploy", "list_endpoints")

    def get_endpoint(self, name: str) -> Endpoint:
        return self._call("deploy", "get_endpoint", name=name)

    def ensure_endpoint(self, name: str, model: str) -> Endpoint:
        """The endpoint ``name``; created to serve ``model`` (a ``models:/`` URI) if it does not exist."""
        return self._call("deploy", "ensure_endpoint", name=name, model=model)

    # -- rollouts

    def deploy(
        self,
        endpoint: str,
        model: str,
        strategy: str = "canary",
        *,
        override_justification: str | None = None,
        **options: Any,
    ) -> Deployment:
        """Roll ``model`` out to ``endpoint``: ``strategy`` is direct, bluegreen, canary, shadow, ab or rolling;
        ``options`` are the strategy's (``steps=[5, 25, 50]``, ``step_seconds=60``, ``key="x-user"``, ...).
        ``override_justification``: an admin's written reason to deploy despite a policy violation."""
        extra = {"override_justification": override_justification} if override_justification is not None else {}
        return self._call(
            "deploy",
            "create_deployment",
            endpoint=endpoint,
            model=model,
            strategy=strategy,
            options=options or None,
            **extra,
        )

    def deployment_status(self, endpoint: str) -> DeploymentStatus:
        return self._call("deploy", "deployment_status", endpoint=endpoint)

    def deployment_history(self, endpoint: str, limit: int = 20) -> list[Deployment]:
        return self._call("deploy", "deployment_history", endpoint=endpoint, limit=limit)

    def get_deployment(self, deployment_id: str) -> Deployment:
        return self._call("deploy", "get_deployment", deployment_id=deployment_id)

    def promote_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        return self._call("deploy", "promote_deployment", endpoint=endpoint, reason=reason)

    def rollback_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        return self._call("deploy", "rollback_deployment", endpoint=endpoint, reason=reason)

    def abort_deployment(self, endpoint: str, reason: str | None = None) -> Deployment:
        return self._call("deploy", "abort_deployment", endpoint=endpoint, reason=reason)

    def advance_deployment(self, endpoint: str, now: int | None = None) -> Deployment | None:
        """One controller tick (the serving replicas call it; tests and operators may too)."""
        return self._call("deploy", "advance_deployment", endpoint=endpoint, now=now)

    def record_feedback(self, feedback: dict[str, float] | list[dict[str, Any]], metric: str = "reward") -> Feedback:
        """Report outcomes by prediction id: ``{prediction_id: value}`` or ``[{"prediction_id", "value",
        "metric"?}]``. Idempotent per prediction id and metric."""
        items = (
            [{"prediction_id": k, "value": v} for k, v in feedback.items()] if isinstance(feedback, dict) else feedback
        )
        return self._call("deploy", "record_feedback", items=items, metric=metric)

    # -- the data plane's calls

    def sync_replica(self, replica_id: str, endpoint: str, **report: Any) -> ReplicaPlan:
        return self._call("deploy", "sync_replica", replica_id=replica_id, endpoint=endpoint, **report)

    def record_deployment_samples(
        self, replica_id: str, samples: list[dict[str, Any]], routes: list[dict[str, Any]]
    ) -> None:
        self._call("deploy", "record_samples", replica_id=replica_id, samples=samples, routes=routes)
