"""Data contracts: infer, edit as YAML, validate data against them, store the reports.

``check(data_or_ref, contract=...)`` is the pipeline gate: it returns the report or raises
:class:`ValidationFailed`. The engine (pandas + pandera) is imported only when data is validated, so
importing Shipyard stays fast.
"""

from __future__ import annotations

from typing import Any

from shipyard.data.validation.entities import CheckResult, Contract, ValidationReport
from shipyard.data.validation.gate import ValidationFailed, check
from shipyard.data.validation.spec import dump_yaml, load_spec, load_yaml, parse_spec, spec_digest


def __getattr__(name: str) -> Any:
    if name in ("validate_frame", "register_check", "compile_schema"):
        from shipyard.data.validation import engine

        return getattr(engine, name)
    if name == "infer_spec":
        from shipyard.data.validation.infer import infer_spec

        return infer_spec
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CheckResult",
    "Contract",
    "ValidationFailed",
    "ValidationReport",
    "check",
    "compile_schema",
    "dump_yaml",
    "infer_spec",
    "load_spec",
    "load_yaml",
    "parse_spec",
    "register_check",
    "spec_digest",
    "validate_frame",
]
