"""API operations of the data services (part of the contract in ``operations.py``).

Refs (``NAME@3``) travel as query parameters rather than path segments, so every ref the SDK
accepts reaches the service unchanged and the service alone parses it.
"""

from __future__ import annotations

from shipyard.api.operation import Operation

DATA_OPERATIONS: tuple[Operation, ...] = (
    Operation("list_datasets", "data", "GET", "/datasets", "List datasets"),
    Operation("get_dataset", "data", "GET", "/datasets/{name}", "Get a dataset"),
    Operation("create_version", "data", "POST", "/datasets/{name}/versions", "Record a stored tree as a version"),
    Operation("list_versions", "data", "GET", "/datasets/{name}/versions", "Versions of a dataset, newest first"),
    Operation("get_version", "data", "GET", "/datasets/{name}/versions/{version}", "Get a dataset version"),
    Operation(
        "set_version_tags", "data", "POST", "/datasets/{name}/versions/{version}/tags", "Set dataset version tags"
    ),
    Operation("as_of", "data", "GET", "/datasets/{name}/as-of", "The version current at a time"),
    Operation("resolve_version", "data", "GET", "/dataset-versions/resolve", "Resolve NAME, NAME@3 or NAME@latest"),
    Operation("diff", "data", "GET", "/dataset-versions/diff", "Files, schema and statistics changed"),
    Operation("lineage", "data", "GET", "/dataset-versions/lineage", "What produced and what used a version"),
    Operation("record_usage", "data", "POST", "/dataset-versions/usages", "Record a read or write of a version"),
)
