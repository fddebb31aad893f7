"""Property tests of evaluation slices: every row lands in exactly one slice of each column, and each
slice's metrics are the metrics of its own rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, mean_absolute_error

from shipyard.governance.slices import MAX_DISTINCT_AS_VALUES, MISSING, evaluate, slice_keys


@st.composite
def labelled(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(1, 120))
    ints = st.integers(0, 1)
    return pd.DataFrame(
        {
            "y": draw(st.lists(ints, min_size=n, max_size=n)),
            "p": draw(st.lists(ints, min_size=n, max_size=n)),
            "colour": draw(st.lists(st.sampled_from(["red", "green", None]), min_size=n, max_size=n)),
            "amount": draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=n, max_size=n)),
        }
    )


@settings(max_examples=60, deadline=None)
@given(labelled())
def test_slices_partition_the_rows(frame: pd.DataFrame) -> None:
    result = evaluate(
        "classification", frame["y"], frame["p"].to_numpy(), None, ["0", "1"], frame[["colour", "amount"]]
    )
    assert result["rows"] == len(frame)
    assert result["metrics"]["accuracy"] == pytest.approx(accuracy_score(frame["y"], frame["p"]))
    for column in ("colour", "amount"):
        slices = result["slices"][column]
        assert sum(s["count"] for s in slices.values()) == len(frame)
        keys = slice_keys(frame[column])
        for value, figures in slices.items():
            rows = (keys == value).to_numpy()
            assert figures["count"] == rows.sum()
            assert figures["accuracy"] == pytest.approx(accuracy_score(frame["y"][rows], frame["p"][rows]))
    colours = set(result["slices"]["colour"])
    assert colours <= {"red", "green", MISSING}
    if frame["amount"].nunique() > MAX_DISTINCT_AS_VALUES:
        assert len(result["slices"]["amount"]) <= 4  # quantile bins, not one slice per value


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100, allow_nan=False), min_size=2, max_size=80), st.integers(0, 3))
def test_regression_slices(values: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = pd.Series(values)
    predicted = truth.to_numpy() + rng.normal(0, 1, len(values))
    groups = pd.DataFrame({"g": rng.choice(["a", "b"], len(values))})
    result = evaluate("regression", truth, predicted, None, [], groups)
    assert result["metrics"]["mae"] == pytest.approx(mean_absolute_error(truth, predicted))
    for value, figures in result["slices"]["g"].items():
        rows = (groups["g"] == value).to_numpy()
        assert figures["mae"] == pytest.approx(mean_absolute_error(truth[rows], predicted[rows]))
