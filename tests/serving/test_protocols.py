"""The serving wire formats: OIP v2 tensors, simple JSON and MLflow bodies, decoded and encoded."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from shipyard.registry.signature import infer_signature
from shipyard.serving.protocols import (
    DATATYPES,
    ProtocolError,
    decode_mlflow,
    decode_simple,
    decode_v2,
    dumps,
    encode_predictions,
    encode_v2_tensors,
    parse_json,
    to_model_input,
    v2_schema_tensors,
)

COLUMNS_SIG = {
    "inputs": {
        "type": "columns",
        "columns": [
            {"name": "age", "type": "long", "nullable": False},
            {"name": "income", "type": "double", "nullable": False},
            {"name": "city", "type": "string", "nullable": False},
        ],
    }
}
TENSOR_SIG = {"inputs": {"type": "tensor", "dtype": "float64", "shape": [-1, 3]}}


def wire(body: Any) -> Any:
    """What the server sees after the body crossed the network."""
    return parse_json(dumps(body))


def tensor(name: str, shape: list[int], datatype: str, data: Any) -> dict[str, Any]:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


def raises(status: int, field: str | None, fn, *args: Any) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        fn(*args)
    assert info.value.status == status, info.value.message
    if field is not None:
        assert info.value.field == field, info.value.message
        if field not in ("body", "dtype", "inputs") and not field.startswith("shape"):
            assert field in info.value.message
    return info.value


# ----------------------------------------------------------------------------------------------
# OIP v2


def test_v2_columns_decode_to_a_frame_in_signature_order() -> None:
    body = {
        "inputs": [
            tensor("city", [2], "BYTES", ["Oslo", "Lima"]),
            tensor("income", [2, 1], "FP64", [[1.5], [2.5]]),
            tensor("age", [2], "INT64", [30, 40]),
        ]
    }
    frame = to_model_input(COLUMNS_SIG, decode_v2(body, COLUMNS_SIG))
    assert list(frame.columns) == ["age", "income", "city"]
    assert frame["age"].tolist() == [30, 40] and frame["income"].tolist() == [1.5, 2.5]
    assert frame["city"].tolist() == ["Oslo", "Lima"]


def test_v2_tensor_is_reshaped_row_major() -> None:
    body = {"inputs": [tensor("x", [2, 3], "FP32", [1, 2, 3, 4, 5, 6])]}
    arr = to_model_input(TENSOR_SIG, decode_v2(body, TENSOR_SIG))
    assert arr.dtype == np.float64 and arr.tolist() == [[1, 2, 3], [4, 5, 6]]
    nested = {"inputs": [tensor("x", [2, 3], "FP64", [[1, 2, 3], [4, 5, 6]])]}
    assert decode_v2(nested, TENSOR_SIG).tolist() == [[1, 2, 3], [4, 5, 6]]


def test_v2_malformed_tensors_are_400_naming_the_tensor() -> None:
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [2, 2], "FP64", [1, 2, 3])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [2], "FP128", [1, 2])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [2], "INT64", [1, 2.5])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [2], "INT64", [1, True])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "INT8", [300])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "UINT8", [-1])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "BOOL", [1])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "BYTES", [1])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "FP32", ["1"])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "FP32", [1e300])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "INT64", [math.nan])]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [-1], "INT64", [])]}, None)
    raises(400, "x", decode_v2, {"inputs": [{"name": "x", "shape": [1], "data": [1]}]}, None)
    raises(400, "x", decode_v2, {"inputs": [tensor("x", [1], "FP64", [1]), tensor("x", [1], "FP64", [1])]}, None)
    raises(400, "inputs", decode_v2, {"inputs": []}, None)
    raises(400, "body", decode_v2, [1, 2], None)


def test_v2_signature_violations_are_422() -> None:
    raises(422, "age", decode_v2, {"inputs": [tensor("age", [1, 2], "INT64", [1, 2])]}, COLUMNS_SIG)
    two = {"inputs": [tensor("age", [2], "INT64", [1, 2]), tensor("income", [1], "FP64", [1.0])]}
    raises(422, "income", decode_v2, two, COLUMNS_SIG)
    raises(
        422, "inputs", decode_v2, {"inputs": [tensor("a", [1], "FP64", [1]), tensor("b", [1], "FP64", [1])]}, TENSOR_SIG
    )
    raises(
        422,
        "shape[1]",
        lambda: to_model_input(TENSOR_SIG, decode_v2({"inputs": [tensor("x", [1, 2], "FP64", [1, 2])]}, TENSOR_SIG)),
    )
    missing = {"inputs": [tensor("age", [1], "INT64", [1]), tensor("city", [1], "BYTES", ["x"])]}
    raises(422, "income", lambda: to_model_input(COLUMNS_SIG, decode_v2(missing, COLUMNS_SIG)))
    wrong = {
        "inputs": [
            tensor("age", [1], "FP64", [1.5]),
            tensor("income", [1], "FP64", [1]),
            tensor("city", [1], "BYTES", ["x"]),
        ]
    }
    raises(422, "age", lambda: to_model_input(COLUMNS_SIG, decode_v2(wrong, COLUMNS_SIG)))


def test_non_finite_values_are_refused_where_the_signature_forbids_them() -> None:
    inf_age = {"dataframe_records": [{"age": math.inf, "income": 1.0, "city": "x"}]}
    raises(422, "age", lambda: to_model_input(COLUMNS_SIG, decode_mlflow(wire(inf_age), COLUMNS_SIG)))
    nan_income = {"dataframe_records": [{"age": 1, "income": math.nan, "city": "x"}]}
    frame = to_model_input(COLUMNS_SIG, decode_mlflow(parse_json(json.dumps(nan_income)), COLUMNS_SIG))
    assert math.isnan(frame["income"][0])  # NaN is an ordinary double value
    int_tensor = {"inputs": {"type": "tensor", "dtype": "int64", "shape": [-1]}}
    raises(422, "dtype", lambda: to_model_input(int_tensor, decode_mlflow({"instances": [1, math.inf]}, int_tensor)))


def test_v2_model_metadata_tensors() -> None:
    assert v2_schema_tensors(COLUMNS_SIG["inputs"]) == [
        {"name": "age", "datatype": "INT64", "shape": [-1]},
        {"name": "income", "datatype": "FP64", "shape": [-1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1]},
    ]
    assert v2_schema_tensors(TENSOR_SIG["inputs"]) == [{"name": "input", "datatype": "FP64", "shape": [-1, 3]}]


def test_outputs_encode_strictly() -> None:
    out = encode_v2_tensors(np.array([[1.0, np.nan], [np.inf, 2.0]], dtype=np.float32))
    assert out == [{"name": "predict", "shape": [2, 2], "datatype": "FP32", "data": [1.0, None, None, 2.0]}]
    assert encode_predictions(np.array(["a", "b"])) == ["a", "b"]
    assert encode_predictions(pd.DataFrame({"p": [0.5], "label": ["y"]})) == [{"p": 0.5, "label": "y"}]
    assert encode_predictions(pd.Series([1, 2])) == [1, 2]
    assert encode_predictions(np.float64(3.0)) == [3.0]
    assert json.loads(dumps({"x": [np.int64(1), math.nan, b"ab"]})) == {"x": [1, None, "ab"]}


# ----------------------------------------------------------------------------------------------
# simple JSON and MLflow


FRAME = pd.DataFrame({"age": [30, 40], "income": [1.5, 2.5], "city": ["Oslo", "Lima"]})


@pytest.mark.parametrize(
    "decode,body",
    [
        (decode_simple, {"records": FRAME.to_dict("records")}),
        (decode_simple, FRAME.to_dict("records")),
        (decode_simple, {"columns": FRAME.to_dict("list")}),
        (decode_mlflow, {"dataframe_split": FRAME.to_dict("split")}),
        (decode_mlflow, {"dataframe_split": {"columns": list(FRAME.columns), "data": FRAME.values.tolist()}}),
        (decode_mlflow, {"dataframe_records": FRAME.to_dict("records")}),
        (decode_mlflow, {"instances": FRAME.to_dict("records")}),
        (decode_mlflow, {"inputs": FRAME.to_dict("list")}),
    ],
)
def test_record_and_column_formats_decode_to_the_same_frame(decode, body) -> None:
    frame = to_model_input(COLUMNS_SIG, decode(wire(body), COLUMNS_SIG))
    assert frame["age"].tolist() == [30, 40]
    assert frame["income"].tolist() == [1.5, 2.5]
    assert frame["city"].tolist() == ["Oslo", "Lima"]


def test_tensor_models_take_rows() -> None:
    rows = [[1, 2, 3], [4, 5, 6]]
    for decode, body in (
        (decode_simple, {"records": rows}),
        (decode_mlflow, {"instances": rows}),
        (decode_mlflow, {"inputs": rows}),
        (decode_mlflow, {"inputs": {"x": rows}}),
        (decode_mlflow, {"dataframe_split": {"data": rows}}),
    ):
        assert to_model_input(TENSOR_SIG, decode(body, TENSOR_SIG)).tolist() == rows


def test_malformed_simple_and_mlflow_bodies_are_400() -> None:
    raises(400, "body", decode_simple, {"records": [], "columns": {}}, None)
    raises(400, "records", decode_simple, {"records": []}, None)
    raises(400, "records", decode_simple, {"records": [{"a": 1}, 2]}, None)
    raises(400, "b", decode_simple, {"columns": {"a": [1, 2], "b": [1]}}, None)
    raises(400, "a", decode_simple, {"columns": {"a": [[1]]}}, None)
    raises(400, "a", decode_simple, {"records": [{"a": {"nested": 1}}]}, None)
    raises(400, "body", decode_mlflow, {"instances": [1], "inputs": [1]}, None)
    raises(400, "body", decode_mlflow, {"data": [1]}, None)
    raises(400, "dataframe_split", decode_mlflow, {"dataframe_split": {"columns": ["a"], "data": [[1, 2]]}}, None)
    raises(400, "instances", decode_mlflow, {"instances": [[1, 2], [3]]}, None)
    raises(422, "records", decode_simple, {"records": [{"a": 1}]}, TENSOR_SIG)
    raises(400, "body", parse_json, b"{not json")
    raises(400, "body", parse_json, b"\xff\xfe")
    raises(400, "body", parse_json, b"[" * 100_000)


# ----------------------------------------------------------------------------------------------
# Properties

names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=8)


@st.composite
def frames(draw: st.DrawFn) -> pd.DataFrame:
    rows = draw(st.integers(1, 8))
    columns = draw(st.lists(names, min_size=1, max_size=4, unique=True))
    data: dict[str, Any] = {}
    for name in columns:
        kind = draw(st.sampled_from(["int", "float", "bool", "str"]))
        if kind == "int":
            values = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=rows, max_size=rows))
            data[name] = np.array(values, dtype="int64")
        elif kind == "float":
            values = draw(st.lists(st.floats(allow_nan=True, allow_infinity=False), min_size=rows, max_size=rows))
            data[name] = np.array(values, dtype="float64")
        elif kind == "bool":
            data[name] = np.array(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)), dtype=bool)
        else:
            data[name] = np.array(draw(st.lists(st.text(max_size=5), min_size=rows, max_size=rows)), dtype=object)
    return pd.DataFrame(data)


def assert_same_frame(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert list(got.columns) == list(want.columns)
    for column in want.columns:
        g, w = got[column], want[column]
        if w.dtype.kind in "ifb":
            assert g.dtype == w.dtype, (column, g.dtype, w.dtype)
            np.testing.assert_array_equal(g.to_numpy(), w.to_numpy())
        else:
            assert g.tolist() == w.tolist()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_v2_frames_round_trip(frame: pd.DataFrame) -> None:
    signature = infer_signature(frame)
    decoded = decode_v2(wire({"inputs": encode_v2_tensors(frame)}), signature)
    assert_same_frame(to_model_input(signature, decoded), frame)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames())
def test_records_and_split_round_trip(frame: pd.DataFrame) -> None:
    signature = infer_signature(frame)
    records = encode_predictions(frame)
    for decode, body in (
        (decode_simple, {"records": records}),
        (decode_mlflow, {"dataframe_records": records}),
        (
            decode_mlflow,
            {"dataframe_split": {"columns": list(frame.columns), "data": [list(r.values()) for r in records]}},
        ),
    ):
        got = to_model_input(signature, decode(wire(body), signature))
        want = frame.copy()
        for column in frame.columns:  # a float column with only NaN comes back as nulls: same values
            if want[column].dtype.kind == "f":
                got[column] = got[column].astype("float64")
        assert_same_frame(got, want)


dtypes = st.sampled_from(
    ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"]
)


@settings(max_examples=80, deadline=None)
@given(dtypes.flatmap(lambda d: hnp.arrays(d, hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=4))))
def test_v2_arrays_round_trip(arr: np.ndarray) -> None:
    if arr.dtype.kind == "f":
        arr = np.where(np.isinf(arr), 0, arr).astype(arr.dtype)
    signature = {"inputs": {"type": "tensor", "dtype": arr.dtype.name, "shape": [-1, *arr.shape[1:]]}}
    body = wire({"inputs": encode_v2_tensors(arr, "x")})
    assert body["inputs"][0]["datatype"] in DATATYPES
    decoded = to_model_input(signature, decode_v2(body, signature))
    assert decoded.dtype == arr.dtype and decoded.shape == arr.shape
    np.testing.assert_array_equal(decoded, arr)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
tensors_like = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["age", "income", "city", "x"]) | json_values,
        "shape": st.lists(st.integers(-1, 3), max_size=3) | json_values,
        "datatype": st.sampled_from([*DATATYPES, "FP8"]) | json_values,
        "data": json_values,
    }
)
garbage = st.one_of(
    json_values,
    st.fixed_dictionaries({"inputs": st.lists(tensors_like, max_size=3) | json_values}),
    st.fixed_dictionaries({"records": json_values}),
    st.fixed_dictionaries({"columns": st.dictionaries(st.sampled_from(["age", "income", "city"]), json_values)}),
    st.fixed_dictionaries(
        {st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"]): json_values}
    ),
    st.fixed_dictionaries({"dataframe_split": st.fixed_dictionaries({"columns": json_values, "data": json_values})}),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(garbage, st.sampled_from([None, COLUMNS_SIG, TENSOR_SIG]))
def test_garbage_bodies_only_raise_protocol_errors(body: Any, signature: Any) -> None:
    for decode in (decode_v2, decode_simple, decode_mlflow):
        try:
            to_model_input(signature, decode(body, signature))
        except ProtocolError as exc:
            assert 400 <= exc.status < 500 and exc.message


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_bytes_only_raise_protocol_errors(raw: bytes) -> None:
    try:
        parse_json(raw)
    except ProtocolError as exc:
        assert exc.status == 400


DOUBLES_SIG = {"inputs": {"type": "columns", "columns": [{"name": n, "type": "double"} for n in ("a", "b", "c")]}}
_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.none(),
    st.booleans(),
    st.sampled_from(["x", [1.0], {"k": 1}]),
)


def _outcome(decode: Any, body: Any) -> Any:
    try:
        frame = to_model_input(DOUBLES_SIG, decode(body, DOUBLES_SIG))
    except ProtocolError as exc:
        return ("error", exc.status, exc.field, exc.message)
    return ("ok", list(frame.columns), str(frame.columns.dtype), [str(t) for t in frame.dtypes], repr(frame.values))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    columns=st.lists(st.sampled_from(["a", "b", "c", "d", 0]), min_size=1, max_size=4),
    rows=st.lists(st.lists(_VALUES, min_size=0, max_size=4), min_size=0, max_size=3),
)
def test_all_double_fast_path_matches_the_general_path(
    monkeypatch: pytest.MonkeyPatch, columns: list[Any], rows: list[list[Any]]
) -> None:
    """A signature of double columns only takes a one-shot float64 fast path; with it switched off the
    general column-by-column path must give the very same frame or the very same error."""
    import shipyard.serving.protocols as protocols

    records = [{str(c): v for c, v in zip(columns, row, strict=False)} for row in rows]
    bodies = [
        (decode_mlflow, {"dataframe_split": {"columns": columns, "data": rows}}),
        (decode_simple, {"records": records}),
        (decode_mlflow, {"dataframe_records": records}),
        (decode_mlflow, {"instances": records}),
    ]
    fast = [_outcome(decode, body) for decode, body in bodies]
    with monkeypatch.context() as m:
        m.setattr(protocols, "_double_columns", lambda signature: None)
        general = [_outcome(decode, body) for decode, body in bodies]
    assert fast == general


def test_all_double_fast_path_in_any_column_order() -> None:
    body = {"dataframe_split": {"columns": ["c", "a", "b"], "data": [[3, 1.5, None], [6.0, 4, 5]]}}
    frame = to_model_input(DOUBLES_SIG, decode_mlflow(body, DOUBLES_SIG))
    assert list(frame.columns) == ["a", "b", "c"] and set(frame.dtypes) == {np.dtype("float64")}
    np.testing.assert_array_equal(frame.to_numpy(), [[1.5, np.nan, 3.0], [4.0, 5.0, 6.0]])
    records = decode_simple({"records": [{"b": 2, "c": 3.0, "a": 1}]}, DOUBLES_SIG)
    assert to_model_input(DOUBLES_SIG, records).to_numpy().tolist() == [[1.0, 2.0, 3.0]]
