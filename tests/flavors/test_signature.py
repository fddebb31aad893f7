"""Signature inference, input validation and input-example JSON round trips (with hypothesis)."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from hypothesis.extra import pandas as hpd

from shipyard.core.errors import InvalidInput
from shipyard.registry.signature import (
    MAX_EXAMPLE_ROWS,
    check_signature,
    example_from_json,
    example_to_json,
    infer_signature,
    validate_input,
)


def strict_json(value: Any) -> Any:
    """Serialize as strict JSON (fails on NaN/Infinity) and parse back."""
    return json.loads(json.dumps(value, allow_nan=False))


@pytest.fixture
def mixed() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "d": [1.5, np.nan, 3.0],
            "f": np.array([1, 2, 3], dtype="float32"),
            "l": [1, 2, 3],
            "i": np.array([1, 2, 3], dtype="int32"),
            "n": pd.array([1, None, 3], dtype="Int64"),
            "b": [True, False, True],
            "s": ["a", "b", None],
            "t": pd.to_datetime(["2024-01-01", "2024-01-02", "2024-01-03"]),
            "bin": [b"\x00", b"\xff", b"x"],
            "o": ["x", "y", "z"],
            "c": pd.Categorical(["lo", "hi", "lo"]),
        }
    ).astype({"o": object})


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------


def test_infer_columns_mixed_types(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    assert sig["outputs"] is None
    assert sig["inputs"] == {
        "type": "columns",
        "columns": [
            {"name": "d", "type": "double", "nullable": True},
            {"name": "f", "type": "float", "nullable": False},
            {"name": "l", "type": "long", "nullable": False},
            {"name": "i", "type": "integer", "nullable": False},
            {"name": "n", "type": "long", "nullable": True},
            {"name": "b", "type": "boolean", "nullable": False},
            {"name": "s", "type": "string", "nullable": True},
            {"name": "t", "type": "datetime", "nullable": False},
            {"name": "bin", "type": "binary", "nullable": False},
            {"name": "o", "type": "string", "nullable": False},
            {"name": "c", "type": "string", "nullable": False},
        ],
    }
    assert strict_json(sig) == sig
    assert check_signature(sig) == sig


def test_infer_tensors() -> None:
    X = np.zeros((7, 30))
    assert infer_signature(X)["inputs"] == {"type": "tensor", "dtype": "float64", "shape": [-1, 30]}
    images = np.zeros((2, 8, 8, 3), dtype="uint8")
    assert infer_signature(images)["inputs"] == {"type": "tensor", "dtype": "uint8", "shape": [-1, 8, 8, 3]}
    sig = infer_signature([[1, 2], [3, 4]], output=np.array(["a", "b"], dtype=object))
    assert sig["inputs"] == {"type": "tensor", "dtype": "int64", "shape": [-1, 2]}
    assert sig["outputs"] == {"type": "tensor", "dtype": "str", "shape": [-1]}


def test_infer_from_dicts_records_and_outputs() -> None:
    by_columns = infer_signature({"x": [1.0, 2.0], "y": ["a", "b"]})
    by_records = infer_signature([{"x": 1.0, "y": "a"}, {"x": 2.0, "y": "b"}])
    assert by_columns == by_records
    assert [c["name"] for c in by_columns["inputs"]["columns"]] == ["x", "y"]
    single = infer_signature({"x": 1, "flag": True})
    assert [c["type"] for c in single["inputs"]["columns"]] == ["long", "boolean"]
    out = infer_signature(np.zeros((2, 3)), output=pd.DataFrame({"p0": [0.1, 0.2], "p1": [0.9, 0.8]}))
    assert out["outputs"]["type"] == "columns"
    named = infer_signature(np.zeros((2, 3)), output=pd.Series([1, 2], name="score"))
    assert named["outputs"]["columns"] == [{"name": "score", "type": "long", "nullable": False}]


def test_infer_rejects_what_it_cannot_type() -> None:
    with pytest.raises(InvalidInput, match="'empty'"):
        infer_signature(pd.DataFrame({"ok": [1, 2], "empty": [None, None]}))
    with pytest.raises(InvalidInput, match="'mixed'"):
        infer_signature(pd.DataFrame({"mixed": [1, "a"]}))
    with pytest.raises(InvalidInput, match="must be a pandas DataFrame"):
        infer_signature(42)


def test_check_signature_rejects_malformed() -> None:
    with pytest.raises(InvalidInput, match="'inputs'"):
        check_signature({"outputs": None})
    with pytest.raises(InvalidInput, match="'x' has type 'decimal'"):
        check_signature({"inputs": {"type": "columns", "columns": [{"name": "x", "type": "decimal"}]}})
    with pytest.raises(InvalidInput, match="shape"):
        check_signature({"inputs": {"type": "tensor", "dtype": "float64", "shape": "(-1, 3)"}})


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def test_validate_reorders_drops_extras_and_passes_conforming_frames(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    assert validate_input(sig, mixed) is mixed
    shuffled = mixed[list(reversed(mixed.columns))].assign(extra=1)
    result = validate_input(sig, shuffled)
    assert list(result.columns) == list(mixed.columns)
    pd.testing.assert_frame_equal(result, mixed)
    assert validate_input(None, shuffled) is shuffled


def test_validate_categoricals_pass_through_when_categories_fit() -> None:
    sig = infer_signature(pd.DataFrame({"c": pd.Categorical(["a", "b"])}))
    data = pd.DataFrame({"c": pd.Categorical(["b", "b"], categories=["a", "b", "z"])})
    assert validate_input(sig, data)["c"].dtype == data["c"].dtype
    with pytest.raises(InvalidInput, match="column 'c' expects string"):
        validate_input(sig, pd.DataFrame({"c": pd.Categorical([1, 2])}))


def test_validate_missing_column_named(mixed: pd.DataFrame) -> None:
    sig = infer_signature(mixed)
    with pytest.raises(InvalidInput, match="missing columns 'l', 'b'") as err:
        validate_input(sig, mixed.drop(columns=["l", "b"]))
    assert err.value.field == "l"
    assert err.value.details == {"missing": ["l", "b"]}


def test_validate_string_in_numeric_column_named() -> None:
    sig = infer_signature(pd.DataFrame({"age": [30, 40], "income": [1.0, 2.0]}))
    with pytest.raises(InvalidInput, match="column 'income' expects double") as err:
        validate_input(sig, pd.DataFrame({"age": [1, 2], "income": ["lots", "some"]}))
    assert err.value.field == "income"
    with pytest.raises(InvalidInput, match="column 'income'"):
        validate_input(sig, [{"age": 1, "income": 2.0}, {"age": 2, "income": "n/a"}])
    with pytest.raises(InvalidInput, match="column 'age' expects long .* booleans"):
        validate_input(sig, pd.DataFrame({"age": [True, False], "income": [1.0, 2.0]}))


def test_validate_safe_casts() -> None:
    sig = {
        "inputs": {
            "type": "columns",
            "columns": [
                {"name": "x", "type": "double", "nullable": False},
                {"name": "n", "type": "long", "nullable": False},
                {"name": "k", "type": "integer", "nullable": True},
                {"name": "f", "type": "float", "nullable": False},
                {"name": "t", "type": "datetime", "nullable": False},
            ],
        }
    }
    data = {"x": [1, 2], "n": [3.0, 4.0], "k": [5.0, np.nan], "f": [0.5, 1.5], "t": ["2024-05-01", "2024-05-02"]}
    result = validate_input(sig, data)
    assert result.dtypes.astype(str).tolist() == ["float64", "int64", "Int32", "float32", "datetime64[us]"]
    assert result["n"].tolist() == [3, 4]
    assert result["k"].isna().tolist() == [False, True]
    # NaN is a value of double columns even when the example had none
    assert validate_input(sig, {**data, "x": [np.nan, 1.0]})["x"].isna().sum() == 1
    with pytest.raises(InvalidInput, match="'n' .* non-integral"):
        validate_input(sig, {**data, "n": [3.5, 4.0]})
    with pytest.raises(InvalidInput, match="'n' .* not nullable"):
        validate_input(sig, {**data, "n": [3.0, None]})
    with pytest.raises(InvalidInput, match="'f' .* float32 range"):
        validate_input(sig, {**data, "f": [1e300, 1.0]})
    with pytest.raises(InvalidInput, match="'k' .* integer range"):
        validate_input(sig, {**data, "k": [2.0**40, 1.0]})
    with pytest.raises(InvalidInput, match="'t' .* unparseable"):
        validate_input(sig, {**data, "t": ["yesterday", "today"]})
    with pytest.raises(InvalidInput, match="expects named columns"):
        validate_input(sig, np.zeros((2, 5)))


def test_validate_non_numeric_columns() -> None:
    sig = infer_signature(pd.DataFrame({"s": ["a", "b"], "flag": [True, False], "raw": [b"1", b"2"]}))
    assert validate_input(sig, {"s": ["z"], "flag": [False], "raw": [b"9"]}).shape == (1, 3)
    with pytest.raises(InvalidInput, match="'s' .* missing values"):
        validate_input(sig, {"s": [None, "a"], "flag": [True, True], "raw": [b"", b""]})
    with pytest.raises(InvalidInput, match="column 's' expects string"):
        validate_input(sig, {"s": [1, 2], "flag": [True, True], "raw": [b"", b""]})
    with pytest.raises(InvalidInput, match="column 'flag' expects boolean"):
        validate_input(sig, {"s": ["a", "b"], "flag": [1, 0], "raw": [b"", b""]})
    with pytest.raises(InvalidInput, match="column 'raw' expects binary"):
        validate_input(sig, {"s": ["a", "b"], "flag": [True, True], "raw": ["x", "y"]})


def test_validate_tensors() -> None:
    sig = infer_signature(np.zeros((4, 30), dtype="float32"))
    assert sig["inputs"]["shape"] == [-1, 30]
    ok = np.ones((2, 30), dtype="float32")
    assert validate_input(sig, ok) is ok
    cast = validate_input(sig, [[1] * 30])
    assert cast.dtype == np.float32 and cast.shape == (1, 30)
    with pytest.raises(InvalidInput, match="dimension 1 has size 29 .* expects 30") as err:
        validate_input(sig, np.zeros((2, 29)))
    assert err.value.field == "shape[1]"
    with pytest.raises(InvalidInput, match="3-dimensional|2-dimensional"):
        validate_input(sig, np.zeros((2, 30, 1)))
    with pytest.raises(InvalidInput, match="cannot be cast"):
        validate_input(sig, np.full((1, 30), "a"))
    as_frame = validate_input(sig, pd.DataFrame(np.ones((3, 30))))
    assert isinstance(as_frame, np.ndarray) and as_frame.dtype == np.float32
    int_sig = infer_signature(np.zeros((1, 2), dtype="int64"))
    assert validate_input(int_sig, np.array([[1.0, 2.0]])).dtype == np.int64
    with pytest.raises(InvalidInput, match="non-integral"):
        validate_input(int_sig, np.array([[1.5, 2.0]]))


# ---------------------------------------------------------------------------------------------
# Input examples
# ---------------------------------------------------------------------------------------------


def test_example_json_mixed_roundtrip(mixed: pd.DataFrame) -> None:
    mixed = mixed.assign(
        inf=[np.inf, -np.inf, np.nan],
        day=[dt.date(2024, 1, 1), None, dt.date(2024, 1, 3)],
        none_vs_nan=pd.Series([None, np.nan, "x"], dtype=object),
    )
    encoded = example_to_json(mixed)
    assert encoded["type"] == "dataframe"
    assert encoded["columns"] == list(mixed.columns)
    assert strict_json(encoded) == encoded
    back = example_from_json(strict_json(encoded))
    pd.testing.assert_frame_equal(back, mixed, check_exact=True)
    col = back["none_vs_nan"].tolist()
    assert col[0] is None and isinstance(col[1], float) and math.isnan(col[1])


def test_example_json_truncates_and_converts_inputs() -> None:
    df = pd.DataFrame({"b": np.arange(50.0), "a": np.arange(50)})
    encoded = example_to_json(df)
    assert encoded["columns"] == ["b", "a"]
    assert len(encoded["data"]) == MAX_EXAMPLE_ROWS
    assert encoded["data"][3] == [3.0, 3]
    records = example_to_json([{"x": 1, "y": "a"}, {"x": 2, "y": "b"}])
    assert records["columns"] == ["x", "y"] and records["data"] == [[1, "a"], [2, "b"]]
    assert example_to_json({"x": [1, 2], "y": ["a", "b"]})["data"] == records["data"]
    arr = example_to_json([[1.0, float("nan")], [float("inf"), 2.5]])
    assert arr == {
        "type": "ndarray",
        "dtype": "float64",
        "shape": [2, 2],
        "data": [[1.0, {"$float": "nan"}], [{"$float": "inf"}, 2.5]],
    }
    stamps = np.array(["2024-01-01T00:00:00.123", "NaT"], dtype="datetime64[ms]")
    np.testing.assert_array_equal(example_from_json(strict_json(example_to_json(stamps))), stamps)
    with pytest.raises(InvalidInput, match="unknown input example type"):
        example_from_json({"type": "parquet"})


def assert_frames_identical(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """NaN-aware, exact, and sensitive to the sign of zero."""
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)
    for i in range(expected.shape[1]):
        if expected.iloc[:, i].dtype.kind == "f":
            assert_same_signs(actual.iloc[:, i].to_numpy(), expected.iloc[:, i].to_numpy())


def assert_same_signs(actual: np.ndarray, expected: np.ndarray) -> None:
    """-0.0 must stay -0.0 (a NaN's sign bit is not a value and is not compared)."""
    numbers = ~np.isnan(expected)
    np.testing.assert_array_equal(np.signbit(actual[numbers]), np.signbit(expected[numbers]))


NUMERIC_DTYPES = st.sampled_from(["float64", "float32", "int64", "int32", "uint8", "bool"])
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
FLOATS32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@st.composite
def numeric_frames(draw: st.DrawFn) -> pd.DataFrame:
    names = draw(st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=5, unique=True))
    cols = []
    for name in names:
        dtype = draw(NUMERIC_DTYPES)
        elements = {"float64": FLOATS, "float32": FLOATS32}.get(dtype)
        cols.append(hpd.column(name, dtype=np.dtype(dtype), elements=elements))
    return draw(hpd.data_frames(cols, index=hpd.range_indexes(min_size=0, max_size=30)))


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(numeric_frames())
def test_example_json_roundtrip_numeric_frames(df: pd.DataFrame) -> None:
    encoded = strict_json(example_to_json(df))
    back = example_from_json(encoded)
    assert_frames_identical(back, df.iloc[:MAX_EXAMPLE_ROWS].reset_index(drop=True))


@settings(max_examples=60, deadline=None, database=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.float64, np.float32, np.int64, np.int16, np.bool_]),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=25),
        elements=None,
    )
)
def test_example_json_roundtrip_arrays(arr: np.ndarray) -> None:
    back = example_from_json(strict_json(example_to_json(arr)))
    expected = arr[:MAX_EXAMPLE_ROWS]
    assert back.dtype == expected.dtype and back.shape == expected.shape
    np.testing.assert_array_equal(back, expected)  # treats NaN == NaN
    if expected.dtype.kind == "f":
        assert_same_signs(back, expected)
