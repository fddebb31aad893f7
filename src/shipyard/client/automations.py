"""The SDK's automation calls, mixed into :class:`shipyard.Client` (see docs/automations.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.automation.rule_entities import AutomationFiring, AutomationRule


class AutomationsMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    def save_automation(
        self, text: str | Path, *, name: str | None = None, enabled: bool | None = None
    ) -> AutomationRule:
        """Save a rule's YAML (text, or a path to a .yaml file): a new rule, or version N+1 when it changed."""
        if isinstance(text, Path):
            text = text.read_text(encoding="utf-8")
        return self._call("automations", "save_automation", text=text, name=name, enabled=enabled)

    def list_automations(self) -> list[AutomationRule]:
        return self._call("automations", "list_automations")

    def get_automation(self, name: str, version: int | None = None) -> AutomationRule:
        return self._call("automations", "get_automation", name=name, version=version)

    def list_automation_versions(self, name: str) -> list[AutomationRule]:
        return self._call("automations", "list_automation_versions", name=name)

    def enable_automation(self, name: str) -> AutomationRule:
        return self._call("automations", "set_automation_enabled", name=name, enabled=True)

    def disable_automation(self, name: str) -> AutomationRule:
        return self._call("automations", "set_automation_enabled", name=name, enabled=False)

    def delete_automation(self, name: str) -> None:
        self._call("automations", "delete_automation", name=name)

    def automation_firings(
        self, rule: str | None = None, *, status: str | None = None, seq: int | None = None, limit: int = 100
    ) -> list[AutomationFiring]:
        """Firings, newest first: one per action of a rule fired by an event, with status, result or error."""
        return self._call("automations", "list_automation_firings", rule=rule, status=status, seq=seq, limit=limit)

    def install_recipe(
        self, model: str, endpoint: str, pipeline: str, *, recipe: str = "closed-loop", **options: Any
    ) -> list[AutomationRule]:
        """Write a built-in rule set; ``closed-loop`` options: strategy, dataset, label_column, monitor,
        params, window_param, metric, tolerance, deploy_options, notify_url, prefix."""
        return self._call(
            "automations", "install_recipe", model=model, endpoint=endpoint, pipeline=pipeline, recipe=recipe, **options
        )

    def run_automations(self, limit: int = 100) -> dict[str, Any]:
        """One round of the engine on the store's side (in-process transport)."""
        return self._call("automations", "run_automations", limit=limit)
