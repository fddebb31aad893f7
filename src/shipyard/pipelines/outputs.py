"""Step outputs in the content-addressed store: each value becomes one object (or a model tree) by its kind.

Kinds: ``pandas`` (DataFrame as Parquet), ``arrow`` (pyarrow Table as Parquet), ``numpy`` (array as
``.npy``, no pickles), ``json`` (canonical JSON, so equal values have equal digests) and ``model``
(saved with its registry flavor as a tree). Anything else is refused with the step and output named.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.artifacts import put_tree
from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import canonical_json
from shipyard.pipelines.graph import check_json

if TYPE_CHECKING:
    from shipyard.client import Client

KINDS = ("pandas", "arrow", "numpy", "json", "model")


def kind_of(value: Any, step: str, output: str) -> str:
    """The storage kind for ``value``; InvalidInput naming the step and output when there is none."""
    module = type(value).__module__.split(".")[0]
    if module == "pandas":
        import pandas as pd

        if isinstance(value, pd.DataFrame):
            return "pandas"
    if module == "pyarrow":
        import pyarrow as pa

        if isinstance(value, pa.Table):
            return "arrow"
    if module == "numpy":
        import numpy as np

        if isinstance(value, np.ndarray):
            if value.dtype.hasobject:
                raise InvalidInput(
                    f"step {step!r} output {output!r}: numpy arrays of Python objects cannot be stored safely",
                    field="output",
                )
            return "numpy"
        if isinstance(value, np.generic):
            return "json"  # numpy scalars become plain numbers
    try:
        check_json(value, f"step {step!r} output {output!r}", "output")
        return "json"
    except InvalidInput as not_json:
        from shipyard.registry.flavors import detect_flavor

        try:
            detect_flavor(value)
        except InvalidInput:
            raise InvalidInput(
                f"step {step!r} output {output!r}: cannot store a {type(value).__module__}.{type(value).__qualname__}"
                " (supported: pandas DataFrame, pyarrow Table, numpy array, JSON values, models of a registry "
                f"flavor); {not_json.message}",
                field="output",
            ) from None
        return "model"


def save_output(client: Client, value: Any, step: str, output: str) -> dict[str, Any]:
    """Store ``value``; returns ``{"digest", "kind", "size"}``."""
    kind = kind_of(value, step, output)
    try:
        if kind == "model":
            from shipyard.registry.flavors import save_model

            with tempfile.TemporaryDirectory(prefix="shipyard-step-") as tmp:
                target = Path(tmp) / "model"
                save_model(value, target)
                tree = put_tree(client.artifacts, str(target))
            return {"digest": tree.digest, "kind": kind, "size": tree.total_size}
        data = _to_bytes(value, kind)
    except InvalidInput:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"step {step!r} output {output!r}: cannot store it as {kind}: {exc}", field="output"
        ) from exc
    digest, size = client.artifacts.put_bytes(data)
    return {"digest": digest, "kind": kind, "size": size}


def _to_bytes(value: Any, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "pandas":
        value.to_parquet(buffer)
    elif kind == "arrow":
        import pyarrow.parquet as pq

        pq.write_table(value, buffer)
    elif kind == "numpy":
        import numpy as np

        np.save(buffer, value, allow_pickle=False)
    else:
        if type(value).__module__ == "numpy":
            value = value.item()
        return canonical_json(value)
    return buffer.getvalue()


def load_output(client: Client, ref: dict[str, Any]) -> Any:
    """The value stored by :func:`save_output` (reads verify the digest)."""
    kind, digest = ref["kind"], ref["digest"]
    if kind == "model":
        from shipyard.registry.flavors import load_model

        return load_model(client.materialize_model(digest)).raw  # the native object the step returned
    data = client.artifacts.read_bytes(digest)
    if kind == "json":
        return json.loads(data)
    if kind == "pandas":
        import pandas as pd

        return pd.read_parquet(io.BytesIO(data))
    if kind == "arrow":
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data))
    if kind == "numpy":
        import numpy as np

        return np.load(io.BytesIO(data), allow_pickle=False)
    raise InvalidInput(f"unknown output kind {kind!r} (known: {', '.join(KINDS)})", field="kind")
