"""Generic Python-function flavor: any object with a callable ``predict``, saved with cloudpickle.

cloudpickle serializes classes and functions defined in ``__main__`` or a notebook by value, so
custom models need not be importable where they are loaded; it is not portable across Python
minor versions (``load_model`` warns when they differ). :class:`PythonModel` is the base class for
custom models that need files: ``save_context`` may write them into ``artifacts/`` at save time and
``load_context`` reads them back before the first ``predict``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shipyard.registry.flavors._common import class_path

FLAVOR = "pyfunc"
DISTRIBUTIONS = ("cloudpickle",)
FILE = "python_model.pkl"
ARTIFACTS_DIR = "artifacts"


class PythonModel:
    """Base class for custom models. Override :meth:`predict`; the context hooks are optional."""

    def save_context(self, artifacts_dir: Path) -> None:
        """Called once at save time, before pickling: write any files the model needs into ``artifacts_dir``."""

    def load_context(self, artifacts_dir: Path) -> None:
        """Called once after unpickling, with the directory ``save_context`` wrote to."""

    def predict(self, model_input: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict(model_input)")


def matches(model: Any) -> bool:
    return not isinstance(model, type) and callable(getattr(model, "predict", None))


def save(model: Any, path: Path) -> dict[str, Any]:
    import cloudpickle

    is_python_model = isinstance(model, PythonModel)
    if is_python_model:
        artifacts = path / ARTIFACTS_DIR
        artifacts.mkdir()
        model.save_context(artifacts)
    with open(path / FILE, "wb") as f:
        cloudpickle.dump(model, f)
    return {
        "serialization": "cloudpickle",
        "file": FILE,
        "library_version": cloudpickle.__version__,
        "class": class_path(model),
        "python_model": is_python_model,
        "artifacts_dir": ARTIFACTS_DIR if is_python_model else None,
    }


def load(path: Path, meta: dict[str, Any]) -> Any:
    import cloudpickle

    with open(Path(path) / meta.get("file", FILE), "rb") as f:
        model = cloudpickle.load(f)
    if isinstance(model, PythonModel):
        artifacts = Path(path) / (meta.get("artifacts_dir") or ARTIFACTS_DIR)
        model.load_context(artifacts)
    return model
