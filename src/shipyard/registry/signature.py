"""Model signatures and input examples: infer them, serialize them, and enforce them at predict time.

A signature is a plain JSON-able dict::

    {"inputs":  {"type": "columns", "columns": [{"name": "age", "type": "long", "nullable": false}, ...]},
     "outputs": {"type": "tensor", "dtype": "float64", "shape": [-1]}}

Column types are ``double float long integer boolean string datetime binary``. Tensor schemas carry a
numpy dtype name (``float64``, ``int32``, ``bool``; ``str``/``bytes``/``object`` for non-numeric data) and
a shape whose ``-1`` entries match any size (the first, the batch axis, is always ``-1`` when inferred).

``nullable`` records whether the example had missing values. It is enforced for long, integer,
boolean, string, datetime and binary columns; NaN is an ordinary value of double/float columns and
is always accepted there (tree models handle it natively and the example rarely shows it).

Input examples are stored with :func:`example_to_json`: at most :data:`MAX_EXAMPLE_ROWS` rows, in
column order, strictly JSON (no bare NaN/Infinity), so numbers, NaN and ±inf round-trip exactly
through :func:`example_from_json`. Non-JSON scalars are tagged: ``{"$float": "nan"|"inf"|"-inf"}``,
``{"$bytes": "<base64>"}``, ``{"$datetime": "<iso>"}``, ``{"$date": "<iso>"}``.
"""

from __future__ import annotations

import base64
import datetime as _dt
import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shipyard.core.errors import InvalidInput

MAX_EXAMPLE_ROWS = 20

COLUMN_TYPES = ("double", "float", "long", "integer", "boolean", "string", "datetime", "binary")

_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

Schema = dict[str, Any]
Signature = dict[str, Any]


# ----------------------------------------------------------------------------------------------
# Normalizing the accepted input shapes
# ----------------------------------------------------------------------------------------------


def _as_frame_or_array(data: Any, what: str = "input example") -> pd.DataFrame | np.ndarray:
    """DataFrame for column-shaped data (frames, dicts of columns, record lists), ndarray otherwise."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    if isinstance(data, np.ndarray):
        if data.dtype.names:
            return pd.DataFrame.from_records(data)
        return data
    if isinstance(data, Mapping):
        if not data:
            raise InvalidInput(f"{what} is an empty dict")
        columns = {str(k): v for k, v in data.items()}
        if all(np.ndim(v) == 0 for v in columns.values()):
            return pd.DataFrame([columns])  # one record given as a dict of scalars
        try:
            return pd.DataFrame(columns)
        except ValueError as exc:
            raise InvalidInput(f"{what}: columns of a dict must be equally long 1-D sequences ({exc})") from exc
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(r, Mapping) for r in data):
            return pd.DataFrame.from_records(list(data))
        try:
            return np.asarray(data)
        except ValueError as exc:
            raise InvalidInput(f"{what}: nested lists must be rectangular ({exc})") from exc
    raise InvalidInput(
        f"{what} must be a pandas DataFrame, a dict of columns, a list of records, "
        f"a numpy array or a list of lists; got {type(data).__name__}"
    )


def _column_labels(df: pd.DataFrame, what: str) -> list[str]:
    names = [str(c) for c in df.columns]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InvalidInput(f"{what} has duplicate column {name!r}", field=name)
        seen.add(name)
    return names


# ----------------------------------------------------------------------------------------------
# Inference
# ----------------------------------------------------------------------------------------------


def _infer_column_type(name: str, s: pd.Series) -> str:
    dtype = s.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return _infer_column_type(name, pd.Series(dtype.categories))
    if pd.api.types.is_bool_dtype(dtype):
        return "boolean"
    if pd.api.types.is_integer_dtype(dtype):
        np_dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))
        fits_int32 = np_dtype.itemsize < 4 or (np_dtype.itemsize == 4 and np_dtype.kind == "i")
        return "integer" if fits_int32 else "long"
    if pd.api.types.is_float_dtype(dtype):
        np_dtype = np.dtype(getattr(dtype, "numpy_dtype", dtype))
        return "float" if np_dtype.itemsize <= 4 else "double"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    kind = pd.api.types.infer_dtype(s, skipna=True)
    by_kind = {
        "string": "string",
        "bytes": "binary",
        "boolean": "boolean",
        "integer": "long",
        "floating": "double",
        "mixed-integer-float": "double",
        "decimal": "double",
        "datetime": "datetime",
        "datetime64": "datetime",
        "date": "datetime",
    }
    if kind in by_kind:
        return by_kind[kind]
    if kind == "empty":
        raise InvalidInput(f"cannot infer the type of column {name!r}: every value is missing", field=name)
    raise InvalidInput(f"cannot infer the type of column {name!r}: values are {kind}", field=name)


def _tensor_dtype_name(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "U":
        return "str"
    if kind == "S":
        return "bytes"
    if kind == "O":
        inferred = pd.api.types.infer_dtype(arr.ravel(), skipna=True) if arr.size else "empty"
        return {"string": "str", "bytes": "bytes"}.get(inferred, "object")
    if kind == "V":
        raise InvalidInput("structured numpy arrays are not supported as tensors")
    return arr.dtype.name


def _schema_of(data: Any, what: str) -> Schema:
    value = _as_frame_or_array(data, what)
    if isinstance(value, pd.DataFrame):
        names = _column_labels(value, what)
        columns = []
        for name, label in zip(names, value.columns, strict=True):
            s = value[label]
            columns.append({"name": name, "type": _infer_column_type(name, s), "nullable": bool(s.isna().any())})
        return {"type": "columns", "columns": columns}
    shape = [-1, *value.shape[1:]] if value.ndim else []
    return {"type": "tensor", "dtype": _tensor_dtype_name(value), "shape": [int(d) for d in shape]}


def infer_signature(input_example: Any, output: Any = None) -> Signature:
    """Signature of a model from an input example and, optionally, the model's output on it.

    Column-shaped examples (DataFrame, dict of columns, list of records) give a ``columns`` schema;
    arrays and lists of lists give a ``tensor`` schema. ``outputs`` is None when no output is given.
    An unnamed pandas Series output is described as a tensor, a named one as a single column.
    """
    inputs = _schema_of(input_example, "input example")
    outputs = None
    if output is not None:
        if isinstance(output, pd.Series) and output.name is None:
            output = output.to_numpy()
        outputs = _schema_of(output, "model output")
    return {"inputs": inputs, "outputs": outputs}


def check_signature(signature: Any) -> Signature:
    """Validate the structure of a signature dict (e.g. one written by hand); return it unchanged."""
    if not isinstance(signature, Mapping) or "inputs" not in signature:
        raise InvalidInput(
            "a signature must be a dict with an 'inputs' key (and optionally 'outputs')", field="signature"
        )
    for key in ("inputs", "outputs"):
        schema = signature.get(key)
        if schema is None:
            continue
        _check_schema(schema, f"signature.{key}")
    return dict(signature)


def _check_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, Mapping):
        raise InvalidInput(f"{where} must be a dict", field=where)
    kind = schema.get("type")
    if kind == "columns":
        columns = schema.get("columns")
        if not isinstance(columns, list) or not columns:
            raise InvalidInput(f"{where}.columns must be a non-empty list", field=where)
        seen: set[str] = set()
        for col in columns:
            if not isinstance(col, Mapping) or not isinstance(col.get("name"), str):
                raise InvalidInput(f"{where}: every column needs a string 'name'", field=where)
            if col.get("type") not in COLUMN_TYPES:
                raise InvalidInput(
                    f"{where}: column {col['name']!r} has type {col.get('type')!r}; "
                    f"expected one of {', '.join(COLUMN_TYPES)}",
                    field=col["name"],
                )
            if col["name"] in seen:
                raise InvalidInput(f"{where}: duplicate column {col['name']!r}", field=col["name"])
            seen.add(col["name"])
    elif kind == "tensor":
        dtype, shape = schema.get("dtype"), schema.get("shape")
        if dtype not in ("str", "bytes", "object"):
            try:
                np.dtype(dtype)
            except TypeError as exc:
                raise InvalidInput(f"{where}: unknown tensor dtype {dtype!r}", field=where) from exc
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= -1 for d in shape):
            raise InvalidInput(f"{where}.shape must be a list of ints (-1 for any size)", field=where)
    else:
        raise InvalidInput(f"{where}.type must be 'columns' or 'tensor', not {kind!r}", field=where)


# ----------------------------------------------------------------------------------------------
# Enforcement
# ----------------------------------------------------------------------------------------------


def validate_input(signature: Signature | Schema | None, data: Any) -> Any:
    """Check ``data`` against a signature (or its ``inputs`` schema) and return it ready for the model.

    Columns are returned in signature order (extra columns are dropped); values are cast where the
    cast is lossless (ints to double, integral floats to long, ISO strings to datetime, ...).
    Raises :class:`InvalidInput` naming the offending column or dimension otherwise.
    """
    if signature is None:
        return data
    schema = signature.get("inputs") if "inputs" in signature else signature
    if schema is None:
        return data
    if schema.get("type") == "columns":
        return _validate_columns(schema, data)
    if schema.get("type") == "tensor":
        return _validate_tensor(schema, data)
    raise InvalidInput(f"unsupported signature schema type {schema.get('type')!r}", field="signature")


def _validate_columns(schema: Schema, data: Any) -> pd.DataFrame:
    value = _as_frame_or_array(data, "input")
    if not isinstance(value, pd.DataFrame):
        names = ", ".join(repr(c["name"]) for c in schema["columns"][:5])
        raise InvalidInput(
            f"the model expects named columns ({names}{', ...' if len(schema['columns']) > 5 else ''}); "
            "send a DataFrame, a dict of columns or a list of records, not an array",
            field="input",
        )
    if _already_conforming(schema["columns"], value):
        return value  # the common case, decided without touching a single column
    labels: dict[str, Any] = {}
    for label in value.columns:
        if str(label) in labels:
            raise InvalidInput(f"input has duplicate column {str(label)!r}", field=str(label))
        labels[str(label)] = label
    missing = [c["name"] for c in schema["columns"] if c["name"] not in labels]
    if missing:
        listed = ", ".join(repr(m) for m in missing)
        raise InvalidInput(
            f"input is missing column{'s' if len(missing) > 1 else ''} {listed}",
            field=missing[0],
            details={"missing": missing},
        )
    ordered = [labels[c["name"]] for c in schema["columns"]]
    casts: dict[Any, pd.Series] = {}
    for col, label in zip(schema["columns"], ordered, strict=True):
        original = value[label]
        coerced = _coerce_column(col, original)
        if coerced is not original:
            casts[label] = coerced
    if not casts and list(value.columns) == ordered:
        return value  # already conforming: hand the caller's frame through untouched (same memory layout)
    result = value[ordered] if list(value.columns) != ordered else value.copy()
    for label, series in casts.items():
        result[label] = series
    return result


# Column type -> the numpy dtype that :func:`_coerce_column` hands back unchanged, with no check left
# to make: every value of that dtype is valid (NaN is an ordinary double/float; int64/int32/bool
# arrays cannot hold missing values or out-of-range numbers).
_EXACT_DTYPES = {
    "double": np.dtype("float64"),
    "float": np.dtype("float32"),
    "long": np.dtype("int64"),
    "integer": np.dtype("int32"),
    "boolean": np.dtype(bool),
}


def _already_conforming(columns: list[dict[str, Any]], frame: pd.DataFrame) -> bool:
    """True when ``frame`` has exactly the signature's columns, in order, each of its exact numpy dtype.

    Such a frame passes :func:`_validate_columns` untouched, so the per-column checks (a dozen pandas
    calls each) can be skipped: one dtype comparison per column decides it instead.
    """
    if len(frame.columns) != len(columns):
        return False
    expected = []
    for col in columns:
        dtype = _EXACT_DTYPES.get(col["type"])
        if dtype is None:
            return False
        expected.append(dtype)
    if not frame.columns.equals(_column_index(tuple(col["name"] for col in columns))):
        return False
    return all(isinstance(dt, np.dtype) and dt == want for dt, want in zip(frame.dtypes, expected, strict=True))


@functools.lru_cache(maxsize=64)
def _column_index(names: tuple[str, ...]) -> pd.Index:
    """The signature's column names as an Index (immutable, so one instance can be shared)."""
    return pd.Index(names)


def _bad(name: str, expected: str, got: str) -> InvalidInput:
    return InvalidInput(
        f"column {name!r} expects {expected} values but got {got}; it cannot be cast safely", field=name
    )


def _not_nullable(name: str, expected: str) -> InvalidInput:
    return InvalidInput(
        f"column {name!r} ({expected}) has missing values but the signature says it is not nullable", field=name
    )


def _describe(s: pd.Series) -> str:
    if _is_object(s) or isinstance(s.dtype, pd.StringDtype):
        kind = pd.api.types.infer_dtype(s, skipna=True)
        sample = next((v for v in s if not _is_missing(v)), None)
        return f"{kind} values (e.g. {sample!r})" if sample is not None else kind
    return f"dtype {s.dtype}"


def _is_object(s: pd.Series) -> bool:
    return isinstance(s.dtype, np.dtype) and s.dtype.kind == "O"


def _is_missing(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def _numeric_view(name: str, s: pd.Series, expected: str) -> pd.Series | None:
    """A float64/int64/nullable-int Series for numeric-looking data, None for booleans, raise for others."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        raise _bad(name, expected, "booleans")
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return s
    if _is_object(s):
        kind = pd.api.types.infer_dtype(s, skipna=True)
        if kind == "empty":
            return s.astype("float64")
        if kind in ("integer", "floating", "mixed-integer-float", "decimal"):
            return pd.to_numeric(s)
    raise _bad(name, expected, _describe(s))


def _coerce_column(col: Mapping[str, Any], s: pd.Series) -> pd.Series:
    name, kind, nullable = col["name"], col["type"], bool(col.get("nullable", True))
    has_null = bool(s.isna().any())
    if isinstance(s.dtype, pd.CategoricalDtype):
        # Categoricals are passed through as they are (LightGBM and others rely on the dtype);
        # their categories must be of the column's type.
        _coerce_column({**col, "nullable": True}, pd.Series(s.dtype.categories))
        if has_null and not nullable and kind not in ("double", "float"):
            raise _not_nullable(name, kind)
        return s
    if kind in ("double", "float"):
        num = _numeric_view(name, s, kind)
        assert num is not None
        target = "float64" if kind == "double" else "float32"
        if not isinstance(num.dtype, np.dtype):
            num = num.astype("float64")  # nullable Int64/Float64: NA -> NaN
        if num.dtype == np.dtype(target):
            return num
        with np.errstate(over="ignore"):
            result = num.astype(target)
        if kind == "float":
            before = np.isinf(num.to_numpy())
            if (np.isinf(result.to_numpy()) & ~before).any():
                raise _bad(name, kind, "values outside the float32 range")
        return result
    if kind in ("long", "integer"):
        num = _numeric_view(name, s, kind)
        assert num is not None
        lo, hi = (_INT64_MIN, _INT64_MAX) if kind == "long" else (_INT32_MIN, _INT32_MAX)
        np_target, nullable_target = ("int64", "Int64") if kind == "long" else ("int32", "Int32")
        present = num.dropna()
        if pd.api.types.is_float_dtype(present.dtype):
            values = present.to_numpy(dtype="float64")
            if not np.all(np.isfinite(values)) or not np.all(values == np.floor(values)):
                raise _bad(name, kind, "non-integral numbers")
        if len(present) and (present.min() < lo or present.max() > hi):
            raise _bad(name, kind, f"values outside the {kind} range")
        if has_null and not nullable:
            raise _not_nullable(name, kind)
        target = nullable_target if has_null else np_target
        return num if str(num.dtype) == target else num.astype(target)
    if has_null and not nullable:
        raise _not_nullable(name, kind)
    if kind == "boolean":
        if pd.api.types.is_bool_dtype(s.dtype):
            return s if has_null or s.dtype == np.dtype(bool) else s.astype(bool)
        if _is_object(s) and pd.api.types.infer_dtype(s, skipna=True) in ("boolean", "empty"):
            return s.astype("boolean") if has_null else s.astype(bool)
        raise _bad(name, kind, _describe(s))
    if kind == "string":
        if isinstance(s.dtype, pd.StringDtype):
            return s
        if _is_object(s) and pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty"):
            return s
        raise _bad(name, kind, _describe(s))
    if kind == "datetime":
        if pd.api.types.is_datetime64_any_dtype(s.dtype):
            return s
        if _is_object(s) or isinstance(s.dtype, pd.StringDtype):
            inferred = pd.api.types.infer_dtype(s, skipna=True)
            if inferred in ("string", "datetime", "datetime64", "date", "empty"):
                try:
                    return pd.to_datetime(s)
                except (ValueError, TypeError) as exc:
                    raise _bad(name, kind, f"unparseable timestamps ({exc})") from exc
        raise _bad(name, kind, _describe(s))
    if kind == "binary":
        if _is_object(s) and pd.api.types.infer_dtype(s, skipna=True) in ("bytes", "empty"):
            return s
        raise _bad(name, kind, _describe(s))
    raise InvalidInput(f"column {name!r} has unknown signature type {kind!r}", field=name)


def _validate_tensor(schema: Schema, data: Any) -> np.ndarray:
    if isinstance(data, pd.DataFrame | pd.Series):
        arr = data.to_numpy()
    else:
        value = _as_frame_or_array(data, "input")
        arr = value.to_numpy() if isinstance(value, pd.DataFrame) else value
    shape = schema.get("shape", [])
    if arr.ndim != len(shape):
        raise InvalidInput(
            f"input has shape {list(arr.shape)} but the model expects {len(shape)}-dimensional input of shape {shape}",
            field="shape",
        )
    for axis, (got, want) in enumerate(zip(arr.shape, shape, strict=True)):
        if want != -1 and got != want:
            raise InvalidInput(
                f"input dimension {axis} has size {got} but the model expects {want} (shape {shape})",
                field=f"shape[{axis}]",
            )
    return _coerce_tensor(schema["dtype"], arr)


def _coerce_tensor(dtype_name: str, arr: np.ndarray) -> np.ndarray:
    def bad(got: str) -> InvalidInput:
        return InvalidInput(
            f"input has {got} but the model expects {dtype_name}; it cannot be cast safely", field="dtype"
        )

    if dtype_name == "object":
        return arr
    if dtype_name in ("str", "bytes"):
        want_kind = "U" if dtype_name == "str" else "S"
        if arr.dtype.kind == want_kind:
            return arr
        if arr.dtype.kind == "O":
            inferred = pd.api.types.infer_dtype(arr.ravel(), skipna=False) if arr.size else "empty"
            if inferred in ({"str": "string", "bytes": "bytes"}[dtype_name], "empty"):
                return arr
        raise bad(f"dtype {arr.dtype}")
    target = np.dtype(dtype_name)
    if arr.dtype == target:
        return arr
    src = arr
    if arr.dtype.kind == "O":
        inferred = pd.api.types.infer_dtype(arr.ravel(), skipna=True) if arr.size else "empty"
        if inferred == "boolean" and target.kind == "b":
            return arr.astype(bool)
        if inferred not in ("integer", "floating", "mixed-integer-float", "empty"):
            raise bad(f"{inferred} values")
        src = arr.astype("float64")
    if target.kind == "b":
        raise bad(f"dtype {arr.dtype}")
    if src.dtype.kind == "b":
        raise bad("booleans")
    if src.dtype.kind not in "iuf":
        raise bad(f"dtype {arr.dtype}")
    if target.kind == "f":
        with np.errstate(over="ignore"):
            out = src.astype(target)
        if src.dtype.kind == "f" and (np.isinf(out) & ~np.isinf(src)).any():
            raise bad(f"values outside the {dtype_name} range")
        return out
    if target.kind in "iu":
        info = np.iinfo(target)
        if src.size:
            if src.dtype.kind == "f" and (not np.all(np.isfinite(src)) or not np.all(src == np.floor(src))):
                raise bad("non-integral numbers")
            if src.min() < info.min or src.max() > info.max:
                raise bad(f"values outside the {dtype_name} range")
        return src.astype(target)
    raise bad(f"dtype {arr.dtype}")


# ----------------------------------------------------------------------------------------------
# Input examples <-> JSON
# ----------------------------------------------------------------------------------------------


def _encode(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, int | np.integer):
        return int(v)
    if isinstance(v, float | np.floating):
        f = float(v)
        if math.isnan(f):
            return {"$float": "nan"}
        if math.isinf(f):
            return {"$float": "inf" if f > 0 else "-inf"}
        return f
    if isinstance(v, str):
        return v
    if isinstance(v, bytes | bytearray | np.bytes_):
        return {"$bytes": base64.b64encode(bytes(v)).decode("ascii")}
    if isinstance(v, np.datetime64):
        v = pd.Timestamp(v)
        if v is pd.NaT:
            return None
    if isinstance(v, _dt.datetime):  # includes pd.Timestamp
        return {"$datetime": v.isoformat()}
    if isinstance(v, _dt.date):
        return {"$date": v.isoformat()}
    if isinstance(v, np.ndarray):
        return [_encode(x) for x in v.tolist()]
    if isinstance(v, list | tuple):
        return [_encode(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _encode(x) for k, x in v.items()}
    return str(v)


_FLOATS = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if len(v) == 1:
            ((tag, payload),) = v.items()
            if tag == "$float":
                return _FLOATS[payload]
            if tag == "$bytes":
                return base64.b64decode(payload)
            if tag == "$datetime":
                return pd.Timestamp(payload)
            if tag == "$date":
                return _dt.date.fromisoformat(payload)
        return {k: _decode(x) for k, x in v.items()}
    return v


def example_to_json(input_example: Any) -> dict[str, Any]:
    """Serialize (at most the first 20 rows of) an input example to strict JSON-able data.

    Column-shaped examples give ``{"type": "dataframe", "columns": [...], "dtypes": [...], "data": [[...]]}``
    (row-major, column order kept); arrays give ``{"type": "ndarray", "dtype": ..., "shape": [...], "data": ...}``.
    """
    value = _as_frame_or_array(input_example)
    if isinstance(value, pd.DataFrame):
        head = value.iloc[:MAX_EXAMPLE_ROWS]
        columns = [c if isinstance(c, str | int) and not isinstance(c, bool) else str(c) for c in head.columns]
        cols_data = [[_encode(x) for x in head.iloc[:, i].tolist()] for i in range(head.shape[1])]
        rows = [list(row) for row in zip(*cols_data, strict=True)] if cols_data else [[] for _ in range(len(head))]
        return {
            "type": "dataframe",
            "columns": columns,
            "dtypes": [str(t) for t in head.dtypes],
            "data": rows,
        }
    arr = value[:MAX_EXAMPLE_ROWS] if value.ndim else value
    if arr.dtype.kind == "V":
        raise InvalidInput("structured numpy arrays are not supported as input examples")
    data = arr.astype(str).tolist() if arr.dtype.kind in "Mm" else _encode(arr.tolist())
    dtype = arr.dtype.name if arr.dtype.kind in "biuf" else arr.dtype.str
    return {"type": "ndarray", "dtype": dtype, "shape": list(arr.shape), "data": data}


def example_from_json(d: Mapping[str, Any]) -> pd.DataFrame | np.ndarray:
    """Inverse of :func:`example_to_json`."""
    if not isinstance(d, Mapping):
        raise InvalidInput("a serialized input example must be a dict", field="input_example")
    kind = d.get("type")
    if kind == "dataframe":
        columns = list(d.get("columns", []))
        rows = [list(r) for r in d.get("data", [])]
        dtypes = d.get("dtypes") or [None] * len(columns)
        if any(len(r) != len(columns) for r in rows) or len(dtypes) != len(columns):
            raise InvalidInput("serialized dataframe rows do not match its columns", field="input_example")
        series = {}
        for i in range(len(columns)):
            values = [_decode(r[i]) for r in rows]
            series[i] = _column_from_values(values, dtypes[i])
        frame = pd.DataFrame(series, index=pd.RangeIndex(len(rows)))
        if columns:
            frame.columns = pd.Index(columns)
        return frame
    if kind == "ndarray":
        dtype = np.dtype(d["dtype"])
        shape = tuple(d.get("shape", ()))
        raw = d["data"]
        data = raw if dtype.kind in "Mm" else _decode(raw)
        if dtype.kind == "O":
            arr = np.empty(shape, dtype=object)
            if arr.size:
                arr[...] = _nested_fill(data, len(shape))
            return arr
        return np.array(data, dtype=dtype).reshape(shape)
    raise InvalidInput(
        f"unknown input example type {kind!r} (expected 'dataframe' or 'ndarray')", field="input_example"
    )


def _nested_fill(data: Any, ndim: int) -> np.ndarray:
    """Build an object array of exactly ``ndim`` dimensions even when the leaves are themselves lists."""
    out = np.empty(_nested_shape(data, ndim), dtype=object)
    for idx in np.ndindex(out.shape):
        cell = data
        for i in idx:
            cell = cell[i]
        out[idx] = cell
    return out


def _nested_shape(data: Any, ndim: int) -> tuple[int, ...]:
    shape = []
    for _ in range(ndim):
        shape.append(len(data))
        data = data[0] if len(data) else []
    return tuple(shape)


def _column_from_values(values: list[Any], dtype: str | None) -> pd.Series:
    if dtype is None:
        return pd.Series(values)
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError):
        try:
            return pd.Series(values).astype(dtype)
        except (TypeError, ValueError):
            return pd.Series(values, dtype=object)
