"""The SDK's contracts calls, mixed into :class:`shipyard.Client`.

Validation runs here, on the caller's side where the data is: the dataset version is loaded with
``load_dataset(ref, record=False)`` (validating is not a use in the lineage sense), checked with the
pandera engine, and only the report travels to the service.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from shipyard.data.validation.entities import Contract, ValidationReport
from shipyard.data.validation.infer import DEFAULT_MAX_CATEGORIES

ContractArg = Contract | dict[str, Any] | str | int | os.PathLike[str] | None


class ContractsMixin:
    """Methods use ``self._call(service, operation, **kwargs)`` and ``self.artifacts`` of the Client."""

    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    # ----------------------------------------------------------------------------------------------
    # Contracts

    def infer_contract(
        self, ref: str, *, tolerance: float = 0.0, max_categories: int = DEFAULT_MAX_CATEGORIES
    ) -> dict[str, Any]:
        """A contract spec inferred from the stored schema and profile of ``ref`` (not stored)."""
        return self._call("contracts", "infer_contract", ref=ref, tolerance=tolerance, max_categories=max_categories)

    def set_contract(self, dataset: str, spec: dict[str, Any] | str | os.PathLike[str]) -> Contract:
        """Store a contract (a dict, YAML text, or a YAML file path) as the next version for ``dataset``."""
        from shipyard.data.validation.spec import load_spec

        return self._call("contracts", "set_contract", dataset=dataset, spec=load_spec(_path_or(spec)))

    def get_contract(self, dataset: str, version: int | None = None) -> Contract:
        return self._call("contracts", "get_contract", dataset=dataset, version=version)

    def list_contracts(self, dataset: str) -> list[Contract]:
        return self._call("contracts", "list_contracts", dataset=dataset)

    # ----------------------------------------------------------------------------------------------
    # Validation

    def validate_frame(self, df: Any, contract: ContractArg) -> ValidationReport:
        """Validate an in-memory DataFrame (or Arrow table) against a contract; nothing is stored.

        ``contract``: a spec dict, YAML text or file path, a :class:`Contract`, or a dataset name (its
        latest contract).
        """
        from shipyard.data.validation.engine import validate_frame

        if contract is None or isinstance(contract, (int, bool)):
            from shipyard.core.errors import InvalidInput

            raise InvalidInput("validate_frame needs a contract: a spec, a file, or a dataset name", field="contract")
        spec, version, dataset = self._contract_spec(None, contract)
        return validate_frame(df, spec, contract_version=version, dataset=dataset)

    def validate_dataset(self, ref: str, contract: ContractArg = None) -> ValidationReport:
        """Load the dataset version ``ref``, validate it and store the report with the version.

        ``contract``: None (the latest contract of the ref's dataset), a contract version number of that
        dataset, a :class:`Contract`, a spec dict, YAML text or file path, or another dataset's name.
        """
        from shipyard.data.validation.engine import validate_frame

        ref = self._concrete_ref(ref)
        dataset = ref.partition("@")[0]
        spec, version, contract_dataset = self._contract_spec(dataset, contract)
        df = self.load_dataset(ref, as_="pandas", record=False)  # type: ignore[attr-defined]
        report = validate_frame(df, spec, contract_version=version, dataset=dataset)
        # a contract of another dataset is recorded by its digest only (versions number per dataset)
        recorded_version = version if contract_dataset == dataset else None
        return self._call("contracts", "record_report", ref=ref, contract_version=recorded_version, report=report)

    def validation_reports(self, ref: str) -> list[ValidationReport]:
        """Stored validation reports of a dataset version, newest first."""
        return self._call("contracts", "list_reports", ref=ref)

    def get_validation_report(self, report_id: str) -> ValidationReport:
        return self._call("contracts", "get_report", report_id=report_id)

    # ----------------------------------------------------------------------------------------------

    def _concrete_ref(self, ref: str) -> str:
        """``NAME`` / ``NAME@latest`` → ``NAME@N`` once, so the data loaded and the report recorded match."""
        return self._call("data", "resolve_version", ref=ref).ref

    def _contract_spec(
        self, dataset: str | None, contract: ContractArg
    ) -> tuple[dict[str, Any], int | None, str | None]:
        """(spec, contract version, dataset the contract belongs to) for any accepted contract argument."""
        from shipyard.data.validation.spec import load_spec

        if isinstance(contract, Contract):
            return contract.spec, contract.version, contract.dataset
        if contract is None or (isinstance(contract, int) and not isinstance(contract, bool)):
            if dataset is None:
                from shipyard.core.errors import InvalidInput

                raise InvalidInput("a contract version number needs a dataset ref", field="contract")
            found = self.get_contract(dataset, contract)
            return found.spec, found.version, dataset
        if isinstance(contract, str) and _is_dataset_name(contract):
            found = self.get_contract(contract)
            return found.spec, found.version, contract
        return load_spec(_path_or(contract)), None, None


def _path_or(value: Any) -> Any:
    return Path(os.fspath(value)) if isinstance(value, os.PathLike) else value


def _is_dataset_name(value: str) -> bool:
    """A one-line string that is not a YAML/JSON file is a dataset name (YAML text has a ':' or newline)."""
    return (
        "\n" not in value
        and ":" not in value
        and not value.strip().startswith(("{", "["))
        and not value.endswith((".yaml", ".yml", ".json"))
        and not Path(value).is_file()
    )
