"""Small helpers shared by the flavor modules: class paths, lazy imports, JSON-safety checks."""

from __future__ import annotations

import importlib
import json
from typing import Any

from shipyard.core.errors import InvalidInput


def class_path(obj: Any) -> str:
    """``module:qualname`` of an object's class, the form :func:`import_class` reads back."""
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str, base: type | tuple[type, ...] | None = None) -> type:
    """Import a class named ``module:qualname``; with ``base``, insist it is a subclass of it."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise InvalidInput(f"malformed class path {path!r} (expected 'module:QualName')", field="class")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise InvalidInput(f"cannot import model class {path!r}: {exc}", field="class") from exc
    if not isinstance(obj, type) or (base is not None and not issubclass(obj, base)):
        raise InvalidInput(f"{path!r} is not a supported model class", field="class")
    return obj


def is_jsonable(value: Any) -> bool:
    """True when ``value`` serializes as strict JSON (no NaN/Infinity, no arbitrary objects)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def require_library(flavor: str, extra: str) -> Any:
    """Import an optional flavor library, or raise InvalidInput naming the extra that installs it."""
    import importlib

    try:
        return importlib.import_module(flavor)
    except ImportError as exc:
        raise missing_library(flavor, extra) from exc


def missing_library(flavor: str, extra: str) -> InvalidInput:
    return InvalidInput(
        f"loading a {flavor} model needs the {flavor} library; install it with `pip install shipyard[{extra}]`",
        field="flavor",
    )
