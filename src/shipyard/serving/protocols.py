"""Wire formats of the inference server: decode request bodies into model input, encode predictions.

Pure functions, no HTTP. Three request formats are understood:

* **Open Inference Protocol v2** (KServe, Triton, MLServer): ``{"inputs": [{"name", "shape", "datatype",
  "data"}, ...]}``. For a model with a column signature every input tensor is one column (shape
  ``[n]`` or ``[n, 1]``); for a tensor signature there is exactly one input tensor. ``data`` is
  row-major and may be flat or nested; its length must equal the product of ``shape``.
* **Simple JSON** (``/endpoints/{name}/predict``): ``{"records": [{...}, ...]}`` (or rows of
  values for tensor models), ``{"columns": {"a": [...], ...}}``, or a bare list of records.
* **MLflow** (``/invocations``): exactly one of ``dataframe_split``, ``dataframe_records``,
  ``instances`` or ``inputs``.

Decoded input is a pandas DataFrame (column signatures) or a numpy array (tensor signatures) and is
then checked with :func:`~shipyard.registry.signature.validate_input`. Every failure is a
:class:`ProtocolError`: status 400 when the body is malformed, 422 when it is well-formed but does
not fit the model's signature; the message names the tensor, column or key at fault.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInput
from shipyard.registry.signature import validate_input

__all__ = [
    "DATATYPES",
    "MLFLOW_KEYS",
    "ProtocolError",
    "decode_mlflow",
    "decode_simple",
    "decode_v2",
    "dumps",
    "encode_v2_binary",
    "encode_predictions",
    "encode_v2_tensors",
    "parse_json",
    "rows_of",
    "split_v2_binary",
    "to_model_input",
    "v2_datatype",
    "v2_schema_tensors",
]


class ProtocolError(InvalidInput):
    """A request the server cannot use: 400 for a malformed body, 422 for a signature violation."""

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        status: int = 400,
        details: dict[str, Any] | None = None,
    ):
        super().__init__(message, field=field, details=details)
        self.status = status


# OIP v2 datatype -> numpy dtype (None: strings, kept as Python objects)
DATATYPES: dict[str, np.dtype | None] = {
    "BOOL": np.dtype(bool),
    "INT8": np.dtype("int8"),
    "INT16": np.dtype("int16"),
    "INT32": np.dtype("int32"),
    "INT64": np.dtype("int64"),
    "UINT8": np.dtype("uint8"),
    "UINT16": np.dtype("uint16"),
    "UINT32": np.dtype("uint32"),
    "UINT64": np.dtype("uint64"),
    "FP16": np.dtype("float16"),
    "FP32": np.dtype("float32"),
    "FP64": np.dtype("float64"),
    "BYTES": None,
}

_COLUMN_DATATYPES = {
    "double": "FP64",
    "float": "FP32",
    "long": "INT64",
    "integer": "INT32",
    "boolean": "BOOL",
    "string": "BYTES",
    "datetime": "BYTES",
    "binary": "BYTES",
}

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")

MAX_DEPTH = 32  # nesting accepted in tensor data; deeper bodies are rejected, not recursed into


# ----------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------


def parse_json(body: bytes | str) -> Any:
    """Parse a request body. ``NaN``/``Infinity`` literals are accepted (the signature decides on them)."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"request body is not UTF-8 text: {exc}", field="body") from exc
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"request body is not valid JSON: {exc}", field="body") from exc
    except (RecursionError, ValueError) as exc:
        raise ProtocolError(f"request body is not valid JSON: {exc}", field="body") from exc


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, np.ndarray):
        return _tolist(value)
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, pd.Timestamp | np.datetime64):
        return str(value)
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def dumps(body: Any) -> bytes:
    """Strict JSON (non-finite floats must already be None) with numpy scalars and bytes handled."""
    try:
        return json.dumps(body, default=_json_default, allow_nan=False, separators=(",", ":")).encode()
    except ValueError:
        return json.dumps(_sanitize(body), default=_json_default, allow_nan=False, separators=(",", ":")).encode()


def _sanitize(value: Any) -> Any:
    if isinstance(value, float):
        return _plain(value)
    if isinstance(value, list | tuple):
        return [_sanitize(v) for v in value]
    if isinstance(value, dict):
        return {k: _sanitize(v) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------------------------
# Encoding predictions
# ----------------------------------------------------------------------------------------------


def _tolist(arr: np.ndarray) -> list[Any]:
    """``arr.tolist()`` with NaN/±inf as None, datetimes as ISO strings and bytes as text."""
    kind = arr.dtype.kind
    if kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            obj = arr.astype(object)
            obj[~finite] = None
            return obj.tolist()
        return arr.tolist()
    if kind in "Mm":
        return np.where(pd.isna(arr), None, arr.astype(str)).tolist()
    if kind == "S":
        return np.char.decode(arr, "utf-8", errors="replace").tolist()
    if kind == "O":
        out = np.empty(arr.size, dtype=object)
        for i, v in enumerate(arr.ravel().tolist()):
            out[i] = _scalar(v)
        return out.reshape(arr.shape).tolist()
    return arr.tolist()


def _scalar(v: Any) -> Any:
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return _plain(v)
    if v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, list | tuple):
        return [_scalar(x) for x in v]
    return _sanitize(_json_default(v))


def _as_output_array(output: Any) -> np.ndarray | pd.DataFrame:
    if isinstance(output, pd.DataFrame):
        return output
    if isinstance(output, pd.Series):
        return output.to_numpy()
    if isinstance(output, np.ndarray):
        return output
    if isinstance(output, list | tuple):
        try:
            return np.asarray(output)
        except ValueError:
            return np.asarray(output, dtype=object)
    return np.asarray([output])


def encode_predictions(output: Any) -> list[Any]:
    """Predictions as a JSON-able list: one item per row (records for DataFrame outputs)."""
    value = _as_output_array(output)
    if isinstance(value, pd.DataFrame):
        columns = [str(c) for c in value.columns]
        cols = [_tolist(value.iloc[:, i].to_numpy()) for i in range(value.shape[1])]
        return [dict(zip(columns, row, strict=True)) for row in zip(*cols, strict=True)] if cols else []
    if value.ndim == 0:
        return [_tolist(value.reshape(1))[0]]
    return _tolist(value)


def v2_datatype(dtype: np.dtype) -> str:
    """The OIP v2 datatype of a numpy dtype (strings, bytes, objects and datetimes are BYTES)."""
    kind = dtype.kind
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'U' if kind == 'u' else ''}INT{dtype.itemsize * 8}"
    if kind == "f" and dtype.itemsize in (2, 4, 8):
        return f"FP{dtype.itemsize * 8}"
    if kind == "f":
        return "FP64"
    return "BYTES"


def _flat_tensor(name: str, arr: np.ndarray) -> dict[str, Any]:
    if arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype("float64")
    if arr.dtype.kind == "O" or not isinstance(arr.dtype, np.dtype):
        arr = np.asarray(arr, dtype=object)
    datatype = v2_datatype(arr.dtype)
    return {"name": name, "shape": [int(d) for d in arr.shape], "datatype": datatype, "data": _tolist(arr.ravel())}


def encode_v2_tensors(value: Any, name: str = "predict") -> list[dict[str, Any]]:
    """OIP v2 tensors for an array (one tensor called ``name``) or a DataFrame (one tensor per column).

    Used for response outputs and, by clients and tests, for request inputs.
    """
    value = _as_output_array(value)
    if isinstance(value, pd.DataFrame):
        tensors = []
        for i, column in enumerate(value.columns):
            s = value.iloc[:, i]
            arr = s.to_numpy(dtype="float64", na_value=np.nan) if _is_nullable_numeric(s) else s.to_numpy()
            if isinstance(s.dtype, pd.BooleanDtype | pd.StringDtype) or arr.dtype.kind == "M":
                arr = np.asarray(_tolist(np.asarray(arr)), dtype=object)
            tensors.append(_flat_tensor(str(column), arr))
        return tensors
    if value.ndim == 0:
        value = value.reshape(1)
    return [_flat_tensor(name, value)]


def _is_nullable_numeric(s: pd.Series) -> bool:
    return (
        isinstance(s.dtype, pd.api.extensions.ExtensionDtype)
        and pd.api.types.is_numeric_dtype(s.dtype)
        and not (pd.api.types.is_bool_dtype(s.dtype))
    )


# ----------------------------------------------------------------------------------------------
# OIP v2 requests
# ----------------------------------------------------------------------------------------------


def _flatten(data: Any, name: str, depth: int = 0) -> list[Any]:
    if depth > MAX_DEPTH:
        raise ProtocolError(f"input {name!r}: data is nested more than {MAX_DEPTH} levels deep", field=name)
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(x, list) for x in data):
        return data
    out: list[Any] = []
    for x in data:
        out.extend(_flatten(x, name, depth + 1))
    return out


def _tensor_values(name: str, datatype: str, flat: list[Any]) -> np.ndarray:
    """A 1-D numpy array of ``flat`` checked against the declared OIP datatype."""
    target = DATATYPES[datatype]

    def bad(what: str) -> ProtocolError:
        return ProtocolError(f"input {name!r} is declared {datatype} but its data holds {what}", field=name)

    if target is None:  # BYTES: strings (null allowed for missing values)
        for v in flat:
            if v is not None and not isinstance(v, str):
                raise bad(f"a {type(v).__name__} ({_short(v)})")
        return np.asarray(flat, dtype=object)
    if not flat:
        return np.empty(0, dtype=target)
    if target.kind == "b":
        if not all(isinstance(v, bool) for v in flat):
            v = next(v for v in flat if not isinstance(v, bool))
            raise bad(f"a non-boolean value ({_short(v)})")
        return np.asarray(flat, dtype=bool)
    for v in flat:
        if isinstance(v, bool) or not isinstance(v, int | float):
            if v is None and target.kind == "f":
                continue
            raise bad(f"a non-numeric value ({_short(v)})")
    if target.kind == "f":
        src = np.asarray([math.nan if v is None else v for v in flat], dtype="float64")
        with np.errstate(over="ignore"):
            out = src.astype(target)
        if (np.isinf(out) & ~np.isinf(src)).any():
            raise bad(f"values outside the {datatype} range")
        return out
    if not all(isinstance(v, int) for v in flat):
        v = next(v for v in flat if not isinstance(v, int))
        raise bad(f"a non-integer value ({_short(v)})")
    info = np.iinfo(target)
    lo, hi = min(flat), max(flat)
    if lo < info.min or hi > info.max:
        raise bad(f"values outside the {datatype} range [{info.min}, {info.max}]")
    return np.asarray(flat, dtype=target)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _decode_tensor(index: int, tensor: Any) -> tuple[str, np.ndarray]:
    if not isinstance(tensor, Mapping):
        raise ProtocolError(f"inputs[{index}] must be an object with name, shape, datatype and data", field="inputs")
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise ProtocolError(f"inputs[{index}] needs a non-empty string 'name'", field=f"inputs[{index}].name")
    for key in ("shape", "datatype", "data"):
        if key not in tensor:
            raise ProtocolError(f"input {name!r} has no {key!r}", field=name)
    shape, datatype, data = tensor["shape"], tensor["datatype"], tensor["data"]
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
        raise ProtocolError(f"input {name!r}: shape must be a list of non-negative integers", field=name)
    if not isinstance(datatype, str) or datatype not in DATATYPES:
        raise ProtocolError(
            f"input {name!r} has datatype {datatype!r}; expected one of {', '.join(DATATYPES)}", field=name
        )
    flat = _flatten(data, name)
    expected = math.prod(shape)
    if len(flat) != expected:
        raise ProtocolError(
            f"input {name!r} has shape {shape} ({expected} values) but its data holds {len(flat)} values",
            field=name,
        )
    return name, _tensor_values(name, datatype, flat).reshape(shape)


def decode_v2(body: Any, signature: Mapping[str, Any] | None = None) -> pd.DataFrame | np.ndarray:
    """Model input of an OIP v2 inference request (before signature validation)."""
    if not isinstance(body, Mapping):
        raise ProtocolError("an inference request must be a JSON object with an 'inputs' list", field="body")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("an inference request needs a non-empty 'inputs' list", field="inputs")
    tensors = [_decode_tensor(i, t) for i, t in enumerate(inputs)]
    names = [n for n, _ in tensors]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ProtocolError(f"input {dupes[0]!r} is given more than once", field=dupes[0])
    kind = _input_kind(signature)
    if kind == "tensor" or (kind is None and len(tensors) == 1 and tensors[0][1].ndim != 1):
        if len(tensors) != 1:
            raise ProtocolError(
                f"the model takes one input tensor but the request has {len(tensors)} ({', '.join(names)})",
                field="inputs",
                status=422,
            )
        return tensors[0][1]
    columns: dict[str, np.ndarray] = {}
    rows: int | None = None
    for name, arr in tensors:
        if arr.ndim == 2 and arr.shape[1] == 1:
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise ProtocolError(
                f"input {name!r} is a column of the model's input and must have shape [n] or [n, 1], "
                f"not {list(arr.shape)}",
                field=name,
                status=422,
            )
        if rows is not None and len(arr) != rows:
            raise ProtocolError(
                f"input {name!r} has {len(arr)} rows but {names[0]!r} has {rows}", field=name, status=422
            )
        rows = len(arr)
        columns[name] = arr
    return pd.DataFrame(columns)


def split_v2_binary(body: bytes, header_length: str) -> Any:
    """An OIP v2 request using the binary tensor data extension (Triton's, sent by ``tritonclient``):
    the JSON header (``header_length`` bytes) followed by the raw data of each input that declares
    ``parameters.binary_data_size``, in order. The raw data is decoded (little-endian; BYTES as
    4-byte-length-prefixed UTF-8) into each tensor's ``data``, so :func:`decode_v2` checks it as usual.
    """
    if not header_length.isdigit() or int(header_length) > len(body):
        raise ProtocolError(
            f"Inference-Header-Content-Length {header_length!r} does not fit a {len(body)}-byte body", field="body"
        )
    size = int(header_length)
    request = parse_json(body[:size])
    inputs = request.get("inputs") if isinstance(request, Mapping) else None
    offset = size
    for i, tensor in enumerate(inputs if isinstance(inputs, list) else []):
        params = tensor.get("parameters") if isinstance(tensor, Mapping) else None
        if not isinstance(params, Mapping) or "binary_data_size" not in params:
            continue
        name = str(tensor.get("name", f"inputs[{i}]"))
        n, datatype = params["binary_data_size"], tensor.get("datatype")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0 or offset + n > len(body):
            raise ProtocolError(f"input {name!r}: binary_data_size {n!r} overruns the request body", field=name)
        if not isinstance(datatype, str) or datatype not in DATATYPES:
            raise ProtocolError(
                f"input {name!r} has datatype {datatype!r}; expected one of {', '.join(DATATYPES)}", field=name
            )
        raw = body[offset : offset + n]
        offset += n
        target = DATATYPES[datatype]
        if target is None:
            values: list[Any] = []
            pos = 0
            while pos < len(raw):
                length = int.from_bytes(raw[pos : pos + 4], "little") if pos + 4 <= len(raw) else -1
                if length < 0 or pos + 4 + length > len(raw):
                    raise ProtocolError(f"input {name!r}: malformed BYTES binary data", field=name)
                values.append(raw[pos + 4 : pos + 4 + length].decode("utf-8", errors="replace"))
                pos += 4 + length
        else:
            if n % target.itemsize:
                raise ProtocolError(f"input {name!r}: {n} bytes is not a whole number of {datatype} values", field=name)
            arr = np.frombuffer(raw, dtype=target.newbyteorder("<"))
            values = [None if v != v else v for v in arr.tolist()] if target.kind == "f" else arr.tolist()
        tensor = {k: v for k, v in tensor.items() if k != "parameters"}
        tensor["data"] = values
        inputs[i] = tensor  # type: ignore[index]
    if offset != len(body):
        raise ProtocolError(
            f"the request body has {len(body) - offset} bytes beyond its declared binary data", field="body"
        )
    return request


def encode_v2_binary(tensor: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """An encoded output tensor as the binary tensor data extension sends it: the tensor without
    ``data`` but with ``parameters.binary_data_size``, and its raw little-endian bytes."""
    target = DATATYPES[tensor["datatype"]]
    data = tensor["data"]
    if target is None:
        parts = [b"" if v is None else (v if isinstance(v, bytes) else str(v).encode("utf-8")) for v in data]
        raw = b"".join(len(p).to_bytes(4, "little") + p for p in parts)
    else:
        if target.kind == "f":
            data = [math.nan if v is None else v for v in data]
        raw = np.asarray(data, dtype=target.newbyteorder("<")).tobytes()
    header = {k: v for k, v in tensor.items() if k != "data"}
    header["parameters"] = {**tensor.get("parameters", {}), "binary_data_size": len(raw)}
    return header, raw


def _input_kind(signature: Mapping[str, Any] | None) -> str | None:
    if not signature:
        return None
    schema = signature.get("inputs") if "inputs" in signature else signature
    return schema.get("type") if isinstance(schema, Mapping) else None


def v2_schema_tensors(schema: Mapping[str, Any] | None, name: str = "input") -> list[dict[str, Any]]:
    """OIP v2 model-metadata tensors (name, datatype, shape) of a signature's inputs or outputs schema."""
    if not schema:
        return []
    if schema.get("type") == "columns":
        return [
            {"name": c["name"], "datatype": _COLUMN_DATATYPES.get(c["type"], "BYTES"), "shape": [-1]}
            for c in schema.get("columns", [])
        ]
    dtype = schema.get("dtype")
    try:
        datatype = "BYTES" if dtype in ("str", "bytes", "object") else v2_datatype(np.dtype(dtype))
    except TypeError:
        datatype = "BYTES"
    return [{"name": name, "datatype": datatype, "shape": list(schema.get("shape", []))}]


# ----------------------------------------------------------------------------------------------
# Simple JSON and MLflow requests
# ----------------------------------------------------------------------------------------------


# Fast path for the common request: every signature column is ``double`` and every value a JSON number
# (or null). Such a request decodes and validates to one float64 frame in signature order whatever the
# column order, so it is built in one shot from a 2-D array rather than column by column; the
# signature check then passes it through untouched. Anything else (other column types, extra or
# missing columns, strings, booleans, nested values, ragged rows) returns None and takes the general
# path, which produces the same frame or the usual error.
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _double_columns(signature: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The signature's column names when it is a columns schema of ``double`` columns only."""
    if not signature:
        return None
    schema = signature.get("inputs") if "inputs" in signature else signature
    if not isinstance(schema, Mapping) or schema.get("type") != "columns":
        return None
    columns = schema.get("columns")
    if not isinstance(columns, list) or not columns:
        return None
    names = []
    for col in columns:
        if not isinstance(col, Mapping) or col.get("type") != "double" or not isinstance(col.get("name"), str):
            return None
        names.append(col["name"])
    return tuple(names) if len(set(names)) == len(names) else None


def _plain_numbers(rows: list[list[Any]]) -> bool:
    """Every value is a float, an int64-range int (not a bool) or None: what pandas turns into float64."""
    for row in rows:
        for v in row:
            t = type(v)
            if t is float or v is None:
                continue
            if t is not int or not _INT64_MIN <= v <= _INT64_MAX:
                return False
    return True


def _double_frame(names: tuple[str, ...], rows: list[list[Any]]) -> pd.DataFrame:
    # np.array turns None into NaN, as pandas does for a numeric column with missing values
    return pd.DataFrame(np.array(rows, dtype=np.float64), columns=_column_index(names), copy=False)


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    return pd.Index(names)  # immutable: one instance is shared by every frame of the signature


def _fast_split(names: tuple[str, ...], columns: Any, data: list[Any]) -> pd.DataFrame | None:
    if type(columns) is not list or len(columns) != len(names) or not data:
        return None
    width = len(names)
    for row in data:
        if type(row) is not list or len(row) != width:
            return None
    if not _plain_numbers(data):
        return None
    if tuple(columns) != names:
        position = {c: i for i, c in enumerate(columns) if type(c) is str}
        if len(position) != width or position.keys() != set(names):
            return None
        order = [position[n] for n in names]
        return _double_frame(names, [[row[i] for i in order] for row in data])
    return _double_frame(names, data)


def _fast_records(names: tuple[str, ...], records: list[Any]) -> pd.DataFrame | None:
    width = len(names)
    rows = []
    try:
        for record in records:
            if type(record) is not dict or len(record) != width:
                return None
            rows.append([record[n] for n in names])
    except KeyError:
        return None
    return _double_frame(names, rows) if _plain_numbers(rows) else None


def _records(
    records: Any, field: str, kind: str | None, doubles: tuple[str, ...] | None = None
) -> pd.DataFrame | np.ndarray:
    if doubles is not None and type(records) is list and records:
        fast = _fast_records(doubles, records)
        if fast is not None:
            return fast
    if not isinstance(records, list):
        raise ProtocolError(f"{field!r} must be a list", field=field)
    if not records:
        raise ProtocolError(f"{field!r} is empty: send at least one record", field=field)
    if all(isinstance(r, Mapping) for r in records):
        if kind == "tensor":
            raise ProtocolError(
                f"the model takes a tensor; send {field!r} as a list of rows (lists of values), not objects",
                field=field,
                status=422,
            )
        return pd.DataFrame.from_records(records)
    if any(isinstance(r, Mapping) for r in records):
        raise ProtocolError(f"{field!r} mixes objects and non-objects", field=field)
    return _array(records, field)


def _array(data: Any, field: str) -> np.ndarray:
    _flatten(data, field)  # bounds the depth before numpy recurses
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"{field!r} must be a rectangular list of lists ({exc})", field=field) from exc
    if arr.dtype.kind == "O":
        for v in arr.ravel():
            if isinstance(v, dict | list):
                raise ProtocolError(f"{field!r} must be a rectangular list of lists of values", field=field)
    return arr


def _columns(columns: Any, field: str) -> pd.DataFrame:
    if not isinstance(columns, Mapping) or not columns:
        raise ProtocolError(f"{field!r} must be a non-empty object of column name -> list of values", field=field)
    length: int | None = None
    for name, values in columns.items():
        if not isinstance(values, list):
            raise ProtocolError(f"column {name!r} in {field!r} must be a list of values", field=name)
        for v in values:
            if isinstance(v, dict | list):
                raise ProtocolError(f"column {name!r} in {field!r} holds a nested value ({_short(v)})", field=name)
        if length is not None and len(values) != length:
            raise ProtocolError(f"column {name!r} has {len(values)} values but the others have {length}", field=name)
        length = len(values)
    if not length:
        raise ProtocolError(f"{field!r} has no rows", field=field)
    return pd.DataFrame({str(k): v for k, v in columns.items()})


def _check_record_values(frame: pd.DataFrame, field: str) -> None:
    # dtypes first: only object columns can hold nested values, and selecting a column costs far more
    for label, dtype in zip(frame.columns, frame.dtypes, strict=True):
        if dtype.kind == "O":
            for v in frame[label]:
                if isinstance(v, dict | list):
                    raise ProtocolError(
                        f"column {str(label)!r} in {field!r} holds a nested value ({_short(v)})", field=str(label)
                    )


def _frame_or_array(value: pd.DataFrame | np.ndarray, field: str) -> pd.DataFrame | np.ndarray:
    if isinstance(value, pd.DataFrame):
        _check_record_values(value, field)
    return value


def decode_simple(body: Any, signature: Mapping[str, Any] | None = None) -> pd.DataFrame | np.ndarray:
    """Model input of a simple JSON request: ``{"records": [...]}``, ``{"columns": {...}}`` or a bare list."""
    kind = _input_kind(signature)
    doubles = _double_columns(signature)
    if isinstance(body, list):
        return _frame_or_array(_records(body, "records", kind, doubles), "records")
    if not isinstance(body, Mapping):
        raise ProtocolError("send a JSON object with 'records' or 'columns' (or a list of records)", field="body")
    given = [k for k in ("records", "columns") if k in body]
    if len(given) != 1:
        raise ProtocolError(
            "send exactly one of 'records' (a list of objects) or 'columns' (an object of lists)", field="body"
        )
    if given[0] == "records":
        return _frame_or_array(_records(body["records"], "records", kind, doubles), "records")
    return _columns(body["columns"], "columns")


def decode_mlflow(body: Any, signature: Mapping[str, Any] | None = None) -> pd.DataFrame | np.ndarray:
    """Model input of an MLflow ``/invocations`` body (one of :data:`MLFLOW_KEYS`)."""
    if not isinstance(body, Mapping):
        raise ProtocolError(f"send a JSON object with one of {', '.join(MLFLOW_KEYS)}", field="body")
    given = [k for k in MLFLOW_KEYS if k in body]
    if len(given) != 1:
        raise ProtocolError(
            f"send exactly one of {', '.join(MLFLOW_KEYS)} (got {', '.join(given) if given else 'none'})",
            field="body",
        )
    key = given[0]
    value = body[key]
    kind = _input_kind(signature)
    if key == "dataframe_split":
        if not isinstance(value, Mapping) or "data" not in value:
            raise ProtocolError("'dataframe_split' must be an object with 'columns' and 'data'", field=key)
        data = value["data"]
        columns = value.get("columns")
        if not isinstance(data, list) or not all(isinstance(r, list) for r in data):
            raise ProtocolError("'dataframe_split.data' must be a list of rows (lists)", field=key)
        if columns is None:
            return _array(data, key)
        doubles = _double_columns(signature)
        if doubles is not None:
            fast = _fast_split(doubles, columns, data)
            if fast is not None:
                return fast
        if not isinstance(columns, list) or not all(isinstance(c, str | int) for c in columns):
            raise ProtocolError("'dataframe_split.columns' must be a list of column names", field=key)
        for i, row in enumerate(data):
            if len(row) != len(columns):
                raise ProtocolError(
                    f"'dataframe_split.data' row {i} has {len(row)} values but there are {len(columns)} columns",
                    field=key,
                )
        frame = pd.DataFrame({i: [row[i] for row in data] for i in range(len(columns))}, index=pd.RangeIndex(len(data)))
        frame.columns = pd.Index([str(c) for c in columns])
        if frame.columns.has_duplicates:
            raise ProtocolError("'dataframe_split.columns' has duplicate names", field=key)
        _check_record_values(frame, key)
        return frame
    if key == "dataframe_records":
        return _frame_or_array(_records(value, key, kind, _double_columns(signature)), key)
    # instances / inputs: a list of rows or records, or an object of columns (named tensors)
    if isinstance(value, Mapping):
        if kind == "tensor" and len(value) == 1:
            return _array(next(iter(value.values())), key)
        return _columns(value, key)
    return _frame_or_array(_records(value, key, kind, _double_columns(signature)), key)


# ----------------------------------------------------------------------------------------------
# Signature enforcement
# ----------------------------------------------------------------------------------------------


def to_model_input(signature: Mapping[str, Any] | None, data: Any) -> Any:
    """``data`` checked against the signature and cast for the model; ProtocolError(422) naming the field."""
    if not signature:
        return data
    if isinstance(data, pd.DataFrame):
        data = _binary_columns(signature, data)
    try:
        return validate_input(dict(signature), data)
    except InvalidInput as exc:
        raise ProtocolError(exc.message, field=exc.field, status=422, details=exc.details) from exc


def _binary_columns(signature: Mapping[str, Any], frame: pd.DataFrame) -> pd.DataFrame:
    """JSON has no bytes: text sent for a ``binary`` column is taken as its UTF-8 encoding."""
    schema = signature.get("inputs") if "inputs" in signature else signature
    if not isinstance(schema, Mapping) or schema.get("type") != "columns":
        return frame
    binary = [c["name"] for c in schema.get("columns", []) if c.get("type") == "binary" and c["name"] in frame]
    if not binary:
        return frame
    frame = frame.copy()
    for name in binary:
        frame[name] = pd.Series(
            [v.encode("utf-8") if isinstance(v, str) else v for v in frame[name]], index=frame.index, dtype=object
        )
    return frame


def rows_of(data: Any) -> list[dict[str, Any]]:
    """The model input as a list of row dicts (for the prediction log): records, or ``{"input": row}``."""
    if isinstance(data, pd.DataFrame):
        return encode_predictions(data)
    if isinstance(data, np.ndarray):
        values = encode_predictions(data)
        return [{"input": v} for v in values]
    return [{"input": data}]
