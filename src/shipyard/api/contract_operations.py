"""API operations of the contract services (part of the contract in ``operations.py``)."""

from __future__ import annotations

from shipyard.api.operation import Operation

CONTRACT_OPERATIONS: tuple[Operation, ...] = (
    Operation("set_contract", "contracts", "POST", "/contracts/{dataset}", "Store the next contract version"),
    Operation("get_contract", "contracts", "GET", "/contracts/{dataset}", "A contract version (latest by default)"),
    Operation("list_contracts", "contracts", "GET", "/contracts/{dataset}/versions", "Every contract version"),
    Operation("infer_contract", "contracts", "GET", "/validation/infer", "Infer a contract from a version's profile"),
    Operation("record_report", "contracts", "POST", "/validation/reports", "Store a validation report"),
    Operation("list_reports", "contracts", "GET", "/validation/reports", "Validation reports of a dataset version"),
    Operation("get_report", "contracts", "GET", "/validation/reports/{report_id}", "One validation report"),
)
