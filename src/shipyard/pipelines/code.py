"""Identity of code: digests of step functions, import references, and the environment part of cache keys."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
import textwrap
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from typing import Any

from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import canonical_json, hash_bytes

# Libraries whose version changes what a step computes from the same code and inputs.
CACHE_RELEVANT_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn")


def code_digest(fn: Callable[..., Any]) -> str:
    """SHA-256 of the function's normalised source: formatting, comments, decorators and its name do not count."""
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                node.decorator_list = []
                node.name = "step"  # the name is the step's identity, not its code
                break
        text = ast.unparse(tree)
    except (OSError, TypeError, SyntaxError):
        # No source (built in a REPL or exec): fall back to the bytecode and its constants.
        code = fn.__code__
        text = repr((code.co_code, code.co_consts, code.co_names))
    return hash_bytes(text.encode())


def reference_of(obj: Any, *, main_by_name: bool = False) -> str | None:
    """``module:qualname`` when importing that gives back exactly ``obj``, else None (e.g. a local function).

    With ``main_by_name``, an object of a script run as ``__main__`` is named by the module the script
    is importable as (``python -m pkg.mod`` → ``pkg.mod``; ``python file.py`` → ``file``), unverified:
    importing it here would execute the script a second time.
    """
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        return None
    if module == "__main__":
        name = _main_module_name() if main_by_name else None
        return f"{name}:{qualname}" if name else None
    try:
        return f"{module}:{qualname}" if import_reference(f"{module}:{qualname}") is obj else None
    except InvalidInput:
        return None


def _main_module_name() -> str | None:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        return spec.name.removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    if path and path.endswith(".py") and os.path.dirname(os.path.abspath(path)) == os.path.abspath(sys.path[0]):
        return os.path.splitext(os.path.basename(path))[0]
    return None


def import_reference(reference: str) -> Any:
    """The object named by ``package.module:attribute.path``; InvalidInput naming what is missing."""
    module_name, sep, qualname = reference.partition(":")
    if not sep or not module_name or not qualname:
        raise InvalidInput(f"pipeline target {reference!r} must look like 'package.module:function'", field="target")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise InvalidInput(
            f"cannot import module {module_name!r} of target {reference!r}: {exc}", field="target"
        ) from exc
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise InvalidInput(f"module {module_name!r} has no attribute {qualname!r}", field="target")
        obj = getattr(obj, part)
    return obj


def environment_key() -> dict[str, Any]:
    """The parts of the environment a cache hit must match: Python major.minor and key library versions."""
    versions: dict[str, str | None] = {}
    for name in CACHE_RELEVANT_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return {"python": f"{sys.version_info.major}.{sys.version_info.minor}", "packages": versions}


def cache_key(code: str, inputs: dict[str, Any], environment: dict[str, Any]) -> str:
    """Digest of what determines a step's outputs: its code, its inputs' identities and the environment."""
    return hash_bytes(canonical_json({"code": code, "inputs": inputs, "environment": environment}))
