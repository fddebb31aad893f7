"""Contract and validation-report entities, shared by the service, the API and the SDK."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

MAX_FAILING_ROWS = 5


class Contract(BaseModel):
    """One version of a dataset's contract; ``spec`` is the canonical document, ``digest`` its identity."""

    id: str
    dataset: str
    version: int
    digest: str
    spec: dict[str, Any]
    created_by: str | None = None
    created_at: int


class CheckResult(BaseModel):
    """One check of a contract applied to one table."""

    name: str  # "age.max", "region.allowed", "rows", "checks.margin"
    kind: str  # present|type|nullable|min|max|allowed|unique|pattern|strict|rows|expr|sql|python
    column: str | None = None
    expected: Any = None
    passed: bool
    failing_count: int = 0  # rows failing the check (1 for a table-level check such as rows)
    failing_rows: list[dict[str, Any]] = Field(default_factory=list)  # ≤ 5, each with "_row" (position)
    message: str | None = None


class ValidationReport(BaseModel):
    """The outcome of validating one table against one contract; stored ones also carry id and ref."""

    passed: bool
    row_count: int
    contract_digest: str
    contract_version: int | None = None
    dataset: str | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    id: str | None = None
    ref: str | None = None  # "NAME@N" of the validated dataset version
    dataset_version_id: str | None = None
    created_by: str | None = None
    created_at: int | None = None

    @property
    def failed(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line: ``passed`` or ``failed 2 of 9 checks: age.max (3 rows), region.allowed (1 row)``."""
        if self.passed:
            return f"passed {len(self.checks)} checks on {self.row_count} rows"
        parts = []
        for check in self.failed:
            rows = f"{check.failing_count} row{'s' if check.failing_count != 1 else ''}"
            parts.append(f"{check.name} ({check.message or rows})")
        return f"failed {len(parts)} of {len(self.checks)} checks: " + ", ".join(parts)
