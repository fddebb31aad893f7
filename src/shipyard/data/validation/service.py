"""ContractService: versioned data contracts per dataset and the validation reports of dataset versions.

Validation itself runs where the data is (the SDK loads the version and runs the engine); the
service stores contracts (canonical spec + digest, numbered per dataset) and reports, each change
journaled in its own transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from shipyard.artifacts import ArtifactStore
from shipyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from shipyard.core.ids import new_id
from shipyard.core.names import check_name
from shipyard.core.time import now_ms
from shipyard.data.service import DatasetService
from shipyard.data.validation.entities import MAX_FAILING_ROWS, Contract, ValidationReport
from shipyard.data.validation.infer import DEFAULT_MAX_CATEGORIES, infer_spec
from shipyard.data.validation.spec import parse_spec, spec_digest
from shipyard.store import schema as t
from shipyard.store.database import Database

MAX_CHECKS = 10_000


@dataclass(frozen=True)
class _Version:
    id: str
    dataset_id: str
    name: str
    version: int
    row_count: int | None
    schema: Any
    profile: Any

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


class ContractService:
    def __init__(self, db: Database, artifacts: ArtifactStore, data: DatasetService):
        self.db = db
        self.artifacts = artifacts
        self.data = data

    # ----------------------------------------------------------------------------------------------
    # Contracts

    def set_contract(self, dataset: str, spec: dict[str, Any]) -> Contract:
        """Store ``spec`` as the next contract version of ``dataset``; the same spec as the latest is a no-op."""
        check_name(dataset, "dataset")
        canonical = parse_spec(spec)
        digest = spec_digest(canonical)
        for attempt in range(3):
            try:
                with self.db.write() as tx:
                    dataset_id = self._dataset_id(tx.conn, dataset)
                    latest = tx.conn.execute(
                        sa.select(t.data_contracts)
                        .where(t.data_contracts.c.dataset_id == dataset_id)
                        .order_by(t.data_contracts.c.version.desc())
                        .limit(1)
                    ).first()
                    if latest is not None and latest.digest == digest:
                        return self._contract(latest, dataset)
                    contract_id = new_id()
                    number = (latest.version if latest is not None else 0) + 1
                    tx.conn.execute(
                        t.data_contracts.insert().values(
                            id=contract_id,
                            dataset_id=dataset_id,
                            version=number,
                            spec=canonical,
                            digest=digest,
                            created_by=tx.actor,
                            created_at=now_ms(),
                        )
                    )
                    tx.journal(
                        "contract.set",
                        "data_contract",
                        contract_id,
                        {
                            "before": {"version": latest.version, "digest": latest.digest} if latest else None,
                            "after": {"dataset": dataset, "version": number, "digest": digest},
                        },
                    )
                break
            except AlreadyExists:  # a concurrent writer took this number: take the next one
                if attempt == 2:
                    raise
        return self.get_contract(dataset, number)

    def get_contract(self, dataset: str, version: int | None = None) -> Contract:
        """A contract version of ``dataset`` (the latest when ``version`` is None)."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, dataset)
            query = sa.select(t.data_contracts).where(t.data_contracts.c.dataset_id == dataset_id)
            if version is None:
                query = query.order_by(t.data_contracts.c.version.desc()).limit(1)
            else:
                query = query.where(t.data_contracts.c.version == version)
            row = conn.execute(query).first()
        if row is None:
            if version is None:
                raise NotFound(f"dataset {dataset!r} has no contract", field="contract")
            raise NotFound(f"dataset {dataset!r} has no contract version {version}", field="version")
        return self._contract(row, dataset)

    def list_contracts(self, dataset: str) -> list[Contract]:
        """Every contract version of ``dataset``, oldest first."""
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, dataset)
            rows = conn.execute(
                sa.select(t.data_contracts)
                .where(t.data_contracts.c.dataset_id == dataset_id)
                .order_by(t.data_contracts.c.version)
            ).all()
        return [self._contract(r, dataset) for r in rows]

    def infer_contract(
        self, ref: str, tolerance: float = 0.0, max_categories: int = DEFAULT_MAX_CATEGORIES
    ) -> dict[str, Any]:
        """A contract spec inferred from a dataset version's stored schema and profile (not stored)."""
        if max_categories < 0:
            raise InvalidInput("max_categories must be >= 0", field="max_categories")
        version = self._resolve(ref)
        if not version.schema and not (version.profile or {}).get("columns"):
            raise InvalidInput(
                f"dataset version {version.ref} has no schema or profile (not a table?); write its contract by hand",
                field="ref",
            )
        return infer_spec(
            version.schema,
            version.profile,
            version.row_count,
            tolerance=tolerance,
            max_categories=max_categories,
            description=f"inferred from {version.ref}",
        )

    # ----------------------------------------------------------------------------------------------
    # Reports

    def record_report(
        self, ref: str, report: ValidationReport, contract_version: int | None = None
    ) -> ValidationReport:
        """Store a validation report with the dataset version ``ref`` (validated against ``contract_version``
        of its dataset, or against an ad hoc spec when None); journaled as ``dataset_version.validated``."""
        self._check_report(report)
        version = self._resolve(ref)
        report_id = new_id()
        with self.db.write() as tx:
            contract_id = None
            if contract_version is not None:
                row = tx.conn.execute(
                    sa.select(t.data_contracts.c.id, t.data_contracts.c.digest).where(
                        t.data_contracts.c.dataset_id == version.dataset_id,
                        t.data_contracts.c.version == contract_version,
                    )
                ).first()
                if row is None:
                    raise NotFound(
                        f"dataset {version.name!r} has no contract version {contract_version}", field="contract_version"
                    )
                if row.digest != report.contract_digest:
                    raise Conflict(
                        f"report was made with contract {report.contract_digest}, "
                        f"but contract version {contract_version} of {version.name!r} is {row.digest}",
                        field="report.contract_digest",
                    )
                contract_id = row.id
            stored = report.model_copy(
                update={
                    "contract_version": contract_version,
                    "dataset": version.name,
                    "id": report_id,
                    "ref": version.ref,
                    "dataset_version_id": version.id,
                    "created_by": tx.actor,
                    "created_at": now_ms(),
                }
            )
            tx.conn.execute(
                t.validation_reports.insert().values(
                    id=report_id,
                    dataset_version_id=version.id,
                    contract_id=contract_id,
                    contract_digest=report.contract_digest,
                    passed=report.passed,
                    report=_body(stored),
                    created_by=stored.created_by,
                    created_at=stored.created_at,
                )
            )
            tx.journal(
                "dataset_version.validated",
                "dataset_version",
                version.id,
                {
                    "after": {
                        "report_id": report_id,
                        "ref": version.ref,
                        "contract_version": contract_version,
                        "contract_digest": report.contract_digest,
                        "passed": report.passed,
                        "failed": [c.name for c in report.failed],
                    }
                },
            )
        return stored

    def list_reports(self, ref: str) -> list[ValidationReport]:
        """The validation reports of a dataset version, newest first."""
        version = self._resolve(ref)
        with self.db.read() as conn:
            rows = conn.execute(
                self._report_query()
                .where(t.validation_reports.c.dataset_version_id == version.id)
                .order_by(t.validation_reports.c.created_at.desc(), t.validation_reports.c.id)
            ).all()
        return [self._report(r) for r in rows]

    def get_report(self, report_id: str) -> ValidationReport:
        with self.db.read() as conn:
            row = conn.execute(self._report_query().where(t.validation_reports.c.id == report_id)).first()
        if row is None:
            raise NotFound(f"validation report {report_id!r} not found", field="report_id")
        return self._report(row)

    # ----------------------------------------------------------------------------------------------
    # Helpers

    @staticmethod
    def _check_report(report: ValidationReport) -> None:
        if len(report.checks) > MAX_CHECKS:
            raise InvalidInput(f"a report may hold at most {MAX_CHECKS} checks", field="report.checks")
        for i, check in enumerate(report.checks):
            if len(check.failing_rows) > MAX_FAILING_ROWS:
                raise InvalidInput(
                    f"check {check.name!r} carries {len(check.failing_rows)} failing rows; at most {MAX_FAILING_ROWS}",
                    field=f"report.checks.{i}.failing_rows",
                )
            if check.failing_count < 0:
                raise InvalidInput("failing_count must be >= 0", field=f"report.checks.{i}.failing_count")
        if report.passed != all(c.passed for c in report.checks):
            raise InvalidInput("report.passed contradicts its checks", field="report.passed")

    def _report_query(self) -> sa.Select:
        return sa.select(
            t.validation_reports.c.id,
            t.validation_reports.c.report,
            t.validation_reports.c.created_by,
            t.validation_reports.c.created_at,
        )

    @staticmethod
    def _report(row: sa.Row) -> ValidationReport:
        return ValidationReport.model_validate(
            {**row.report, "id": row.id, "created_by": row.created_by, "created_at": row.created_at}
        )

    @staticmethod
    def _contract(row: sa.Row, dataset: str) -> Contract:
        return Contract(
            id=row.id,
            dataset=dataset,
            version=row.version,
            digest=row.digest,
            spec=row.spec,
            created_by=row.created_by,
            created_at=row.created_at,
        )

    @staticmethod
    def _dataset_id(conn: sa.Connection, dataset: str) -> str:
        dataset_id = conn.execute(sa.select(t.datasets.c.id).where(t.datasets.c.name == dataset)).scalar_one_or_none()
        if dataset_id is None:
            raise NotFound(f"dataset {dataset!r} not found", field="dataset")
        return dataset_id

    def _resolve(self, ref: str) -> _Version:
        """``NAME``, ``NAME@latest`` or ``NAME@N`` → the stored version; the dataset service parses refs."""
        found = self.data.resolve_version(ref)
        with self.db.read() as conn:
            dataset_id = self._dataset_id(conn, found.name)
        return _Version(found.id, dataset_id, found.name, found.version, found.row_count, found.schema, found.profile)


def _body(report: ValidationReport) -> dict[str, Any]:
    """The stored JSON of a report (ids and times live in their own columns)."""
    return report.model_dump(mode="json", exclude={"id", "created_by", "created_at"})
