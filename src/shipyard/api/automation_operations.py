"""API operations of automations: rules as versioned YAML, their firings, recipes (see docs/automations.md).

Permissions: reading rules and firings needs ``read``; saving a rule or installing a recipe needs
``write`` — and the service also requires ``deploy`` when the rule deploys, promotes or rolls back;
enabling or disabling needs ``write`` (plus ``deploy`` to enable a deploying rule); deleting a rule
and running the engine from the API need ``admin``.
"""

from __future__ import annotations

from shipyard.api.operation import Operation

AUTOMATION_OPERATIONS: tuple[Operation, ...] = (
    Operation("save_automation", "automations", "POST", "/automations", "Save a rule's YAML (a new version)"),
    Operation("list_automations", "automations", "GET", "/automations", "Rules at their current versions"),
    Operation("get_automation", "automations", "GET", "/automations/{name}", "A rule (current or given version)"),
    Operation(
        "list_automation_versions", "automations", "GET", "/automations/{name}/versions", "Every version of a rule"
    ),
    Operation(
        "set_automation_enabled", "automations", "POST", "/automations/{name}/enabled", "Enable or disable a rule"
    ),
    Operation("delete_automation", "automations", "DELETE", "/automations/{name}", "Delete a rule", permission="admin"),
    Operation("list_automation_firings", "automations", "GET", "/automation-firings", "Firings and their outcomes"),
    Operation("install_recipe", "automations", "POST", "/automation-recipes", "Write a built-in rule set"),
    Operation("run_automations", "automations", "POST", "/automations-run", "Run the engine once", permission="admin"),
)
