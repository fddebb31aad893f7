"""The pipeline gate: ``check(data_or_ref, contract=...)`` returns the report or raises :class:`ValidationFailed`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shipyard.core.errors import ShipyardError
from shipyard.data.validation.entities import ValidationReport

if TYPE_CHECKING:
    from shipyard.client import Client


class ValidationFailed(ShipyardError):
    """Data broke its contract. ``.report`` is the full :class:`ValidationReport`; ``str()`` names the failed checks."""

    code = "validation_failed"
    status = 422

    def __init__(self, report: ValidationReport | dict[str, Any], message: str | None = None):
        self.report = report if isinstance(report, ValidationReport) else ValidationReport.model_validate(report)
        where = f"{self.report.ref}: " if self.report.ref else ""
        super().__init__(
            message or f"{where}data contract {self.report.summary()}",
            field="data",
            details={"report": self.report.model_dump(mode="json")},
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # exceptions are pickled by re-calling the class with .args: keep the report (dask executors pickle)
        return (type(self), (self.report.model_dump(mode="json"), self.message))


def check(
    data_or_ref: Any,
    contract: Any = None,
    client: Client | None = None,
) -> ValidationReport:
    """Validate a DataFrame / Arrow table, or a stored dataset version ``"NAME@3"``, inside a pipeline step.

    ``contract`` is a dataset name (its latest contract), a contract version number (of the ref's
    dataset), a spec dict, YAML text, a path to a YAML file, or None (the latest contract of the ref's
    dataset). A stored version's report is recorded with it. Raises :class:`ValidationFailed` when any
    check fails.
    """
    if client is None:
        from shipyard.client.fluent import get_client

        client = get_client()
    if isinstance(data_or_ref, str):
        report = client.validate_dataset(data_or_ref, contract=contract)
    else:
        if contract is None:
            from shipyard.core.errors import InvalidInput

            raise InvalidInput("validating in-memory data needs a contract (dataset name or spec)", field="contract")
        report = client.validate_frame(data_or_ref, contract)
    if not report.passed:
        raise ValidationFailed(report)
    return report
