"""Model flavors: save any supported model to a directory with a descriptor, and load it back.

A saved model is a directory holding the flavor's files plus ``shipyard-model.json``::

    {"format": "shipyard.model/v1", "flavor": "sklearn", "flavor_meta": {...},
     "python_version": "3.11.7", "library_versions": {"scikit-learn": "1.9.1", ...},
     "signature": {...} | null, "input_example": {...} | null,
     "files": {"model.joblib": "sha256:..."}, **extra_metadata}

``files`` lists the digest of every file the flavor wrote; :func:`load_model` verifies them and
raises :class:`IntegrityError` on any mismatch. Each flavor is a module with ``FLAVOR``,
``matches(model)``, ``save(model, path) -> meta`` and ``load(path, meta) -> model`` (and optionally
``predict(model, data)`` when the native model needs help, e.g. an XGBoost Booster).
Auto-detection tries xgboost and lightgbm before sklearn (their wrappers are sklearn estimators)
and pyfunc (anything with ``predict``) last.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import shutil
import warnings
from collections.abc import Callable
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from shipyard.core.errors import IntegrityError, InvalidInput
from shipyard.core.hashing import hash_file
from shipyard.registry.flavors._common import is_jsonable
from shipyard.registry.flavors.pyfunc import PythonModel
from shipyard.registry.signature import (
    check_signature,
    example_from_json,
    example_to_json,
    infer_signature,
    validate_input,
)

FORMAT = "shipyard.model/v1"
DESCRIPTOR = "shipyard-model.json"
FLAVORS = ("xgboost", "lightgbm", "sklearn", "pyfunc")  # auto-detection order
BASE_DISTRIBUTIONS = ("numpy", "pandas")
RESERVED_KEYS = frozenset(
    {"format", "flavor", "flavor_meta", "python_version", "library_versions", "signature", "input_example", "files"}
)

__all__ = [
    "DESCRIPTOR",
    "FLAVORS",
    "FORMAT",
    "LoadedModel",
    "PythonModel",
    "detect_flavor",
    "load_model",
    "read_descriptor",
    "save_model",
]


def flavor_module(name: str) -> ModuleType:
    """The module implementing flavor ``name``; InvalidInput naming it when there is none."""
    if name not in FLAVORS:
        raise InvalidInput(f"unknown model flavor {name!r}; known flavors: {', '.join(FLAVORS)}", field="flavor")
    return importlib.import_module(f"{__name__}.{name}")


def detect_flavor(model: Any) -> str:
    """The first flavor (in :data:`FLAVORS` order) whose ``matches`` accepts the model."""
    for name in FLAVORS:
        if flavor_module(name).matches(model):
            return name
    raise InvalidInput(
        f"cannot save a {type(model).__module__}.{type(model).__qualname__}: it is not an sklearn, xgboost "
        "or lightgbm model and has no callable predict (subclass shipyard PythonModel for custom models)",
        field="model",
    )


def _library_versions(module: ModuleType) -> dict[str, str]:
    versions = {}
    for dist in (*BASE_DISTRIBUTIONS, *getattr(module, "DISTRIBUTIONS", ())):
        try:
            versions[dist] = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
    return dict(sorted(versions.items()))


def _native_predict(module: ModuleType, model: Any) -> Callable[[Any], Any]:
    custom = getattr(module, "predict", None)
    if custom is not None:
        return lambda data: custom(model, data)
    fn = getattr(model, "predict", None)
    if not callable(fn):
        raise InvalidInput(f"this {module.FLAVOR} model has no predict method", field="model")
    return fn


def _infer_outputs(module: ModuleType, model: Any, signature: dict[str, Any] | None, example: Any) -> Any:
    """The output schema of the model's prediction on the example, or None (with a warning) if that fails."""
    try:
        output = _native_predict(module, model)(validate_input(signature, example))
        return None if output is None else infer_signature(example, output)["outputs"]
    except Exception as exc:  # the model may reject the example; the input schema still stands
        warnings.warn(
            f"could not infer the output signature from the model's prediction on the input example: {exc}",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _prepare_dir(path: Path) -> bool:
    """Make ``path`` an empty directory; return True when this call created it."""
    if path.exists():
        if not path.is_dir():
            raise InvalidInput(f"cannot save a model to {str(path)!r}: it is a file", field="path")
        if any(path.iterdir()):
            raise InvalidInput(f"cannot save a model to {str(path)!r}: the directory is not empty", field="path")
        return False
    path.mkdir(parents=True)
    return True


def _digests(path: Path) -> dict[str, str]:
    files = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel != DESCRIPTOR:
            files[rel] = hash_file(str(file))[0]
    return files


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    flavor: str | None = None,
    signature: dict[str, Any] | None = None,
    input_example: Any = None,
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Save ``model`` into the new (or empty) directory ``path`` and return its descriptor.

    ``flavor`` is auto-detected when None. Without a ``signature`` but with an ``input_example``,
    the signature is inferred from the example and from the model's prediction on it (outputs are
    left None when that prediction fails). A given signature must accept the example.
    ``extra_metadata`` is merged into the descriptor; it must be strict JSON and may not use the
    descriptor's own keys.
    """
    target = Path(path)
    name = flavor if flavor is not None else detect_flavor(model)
    module = flavor_module(name)
    if flavor is not None and not module.matches(model):
        raise InvalidInput(f"a {type(model).__qualname__} is not a {name} model", field="flavor")

    extra = dict(extra_metadata or {})
    clashes = sorted(RESERVED_KEYS & extra.keys())
    if clashes:
        raise InvalidInput(
            f"extra_metadata may not set the descriptor key(s) {', '.join(clashes)}", field="extra_metadata"
        )
    if not is_jsonable(extra):
        raise InvalidInput("extra_metadata must be JSON-serializable (no NaN/Infinity)", field="extra_metadata")

    example_json = None if input_example is None else example_to_json(input_example)
    # the model is described and checked with the example exactly as it will be read back
    example = None if example_json is None else example_from_json(example_json)
    infer_outputs = signature is None and example is not None
    if infer_outputs:
        signature = infer_signature(example)  # inputs now, to fail before writing anything
    elif signature is not None:
        signature = check_signature(signature)
        if not is_jsonable(signature):
            raise InvalidInput("signature must be JSON-serializable", field="signature")
        if example is not None:
            validate_input(signature, example)

    created = _prepare_dir(target)
    try:
        flavor_meta = module.save(model, target)
        if not is_jsonable(flavor_meta):
            raise InvalidInput(f"the {name} flavor produced metadata that is not JSON", field="flavor")
        if infer_outputs:
            # A PythonModel may only work after load_context, so it is asked through a reloaded copy.
            predictor = module.load(target, flavor_meta) if isinstance(model, PythonModel) else model
            signature = {**(signature or {}), "outputs": _infer_outputs(module, predictor, signature, example)}
        descriptor: dict[str, Any] = {
            "format": FORMAT,
            "flavor": name,
            "flavor_meta": flavor_meta,
            "python_version": platform.python_version(),
            "library_versions": _library_versions(module),
            "signature": signature,
            "input_example": example_json,
            "files": _digests(target),
            **extra,
        }
        tmp = target / f".{DESCRIPTOR}.tmp"
        tmp.write_text(json.dumps(descriptor, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        os.replace(tmp, target / DESCRIPTOR)
    except BaseException:
        if created:
            shutil.rmtree(target, ignore_errors=True)
        else:
            for child in target.iterdir():
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        raise
    return descriptor


def read_descriptor(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``shipyard-model.json`` of a saved model; InvalidInput if it is missing or foreign."""
    file = Path(path) / DESCRIPTOR
    try:
        descriptor = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(f"{str(path)!r} is not a saved model: no {DESCRIPTOR}", field="path") from exc
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read {file}: {exc}", field="path") from exc
    if not isinstance(descriptor, dict) or descriptor.get("format") != FORMAT:
        found = descriptor.get("format") if isinstance(descriptor, dict) else None
        raise InvalidInput(f"{file} has format {found!r}; expected {FORMAT!r}", field="path")
    return descriptor


def _verify_files(path: Path, files: dict[str, str]) -> None:
    for rel, digest in files.items():
        file = path / rel
        if not file.is_file():
            raise IntegrityError(f"model file {rel!r} is missing from {str(path)!r}", field=rel)
        actual = hash_file(str(file))[0]
        if actual != digest:
            raise IntegrityError(
                f"model file {rel!r} does not match its recorded digest",
                field=rel,
                details={"expected": digest, "actual": actual},
            )


def _warn_on_drift(descriptor: dict[str, Any]) -> None:
    saved_py = str(descriptor.get("python_version", ""))
    here_py = platform.python_version()
    pickled = descriptor.get("flavor_meta", {}).get("serialization") in ("joblib", "cloudpickle")
    if pickled and saved_py.split(".")[:2] != here_py.split(".")[:2]:
        warnings.warn(
            f"model was pickled under Python {saved_py}, loading under {here_py}; it may not load "
            "or behave identically",
            RuntimeWarning,
            stacklevel=3,
        )
    drift = []
    for dist, version in (descriptor.get("library_versions") or {}).items():
        try:
            current = importlib_metadata.version(dist)
        except importlib_metadata.PackageNotFoundError:
            continue
        if current != version:
            drift.append(f"{dist} {version} -> {current}")
    if drift:
        warnings.warn(
            "model was saved with different library versions: " + ", ".join(drift), RuntimeWarning, stacklevel=3
        )


def load_model(path: str | os.PathLike[str], verify: bool = True) -> LoadedModel:
    """Load a saved model. With ``verify`` (default) every recorded file digest is checked first."""
    root = Path(path)
    descriptor = read_descriptor(root)
    module = flavor_module(str(descriptor.get("flavor")))
    if verify:
        _verify_files(root, descriptor.get("files") or {})
    _warn_on_drift(descriptor)
    raw = module.load(root, descriptor.get("flavor_meta") or {})
    return LoadedModel(raw, descriptor, root)


class LoadedModel:
    """A loaded model: ``predict`` (and ``predict_proba`` when the native model has it) with input checks.

    ``raw`` is the native model, ``flavor`` its flavor name, ``signature`` the saved signature (or None)
    and ``metadata`` the whole descriptor. Inputs are checked with :func:`validate_input` when there is
    a signature, which also reorders columns and applies safe casts.
    """

    def __init__(self, raw: Any, descriptor: dict[str, Any], path: Path | None = None):
        self.raw = raw
        self.metadata = descriptor
        self.flavor: str = descriptor["flavor"]
        self.signature: dict[str, Any] | None = descriptor.get("signature")
        self.path = path
        self._module = flavor_module(self.flavor)
        self._unchecked: dict[str, Callable[[Any], Any]] = {}  # resolved once: the server asks on every request

    @property
    def input_example(self) -> Any:
        """The saved input example (DataFrame or ndarray), or None."""
        example = self.metadata.get("input_example")
        return None if example is None else example_from_json(example)

    def _prepare(self, data: Any) -> Any:
        return validate_input(self.signature, data) if self.signature else data

    def predict(self, data: Any) -> Any:
        return _native_predict(self._module, self.raw)(self._prepare(data))

    def unchecked(self, method: str = "predict") -> Callable[[Any], Any]:
        """``predict`` or ``predict_proba`` without the signature check, for callers that already ran
        :func:`validate_input` on the data (the inference server does, once per request)."""
        cached = self._unchecked.get(method)
        if cached is not None:
            return cached
        if method == "predict":
            native = _native_predict(self._module, self.raw)
        else:
            native = getattr(self.raw, method, None)
            if method != "predict_proba" or not callable(native):
                raise AttributeError(f"this {self.flavor} model ({type(self.raw).__qualname__}) has no {method}")
        self._unchecked[method] = native
        return native

    @property
    def predict_proba(self) -> Callable[[Any], Any]:
        """Class probabilities; an AttributeError (so ``hasattr`` is False) when the model has none."""
        native = getattr(self.raw, "predict_proba", None)
        if not callable(native):
            raise AttributeError(f"this {self.flavor} model ({type(self.raw).__qualname__}) has no predict_proba")

        def predict_proba(data: Any) -> Any:
            return native(self._prepare(data))

        return predict_proba

    def __repr__(self) -> str:
        where = f" from {str(self.path)!r}" if self.path else ""
        return f"<LoadedModel {self.flavor} {type(self.raw).__qualname__}{where}>"
