"""Profiles on reference bins: bucket layout, exact merging (a hypothesis property), JSON round trips."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.core.errors import InvalidInput
from shipyard.monitoring.profiles import (
    ColumnBins,
    ColumnProfile,
    Profile,
    ReferenceBins,
    fit_bins,
    profile_frame,
)

RNG = np.random.default_rng(7)
REFERENCE = pd.DataFrame(
    {
        "x": RNG.normal(10, 2, 5_000),
        "city": RNG.choice(["paris", "oslo", "rome"], 5_000, p=[0.5, 0.3, 0.2]),
        "flag": RNG.random(5_000) > 0.3,
        "k": 3.0,
        "empty": np.nan,
    }
)
BINS = fit_bins(REFERENCE)
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _json(d: dict) -> dict:
    return json.loads(json.dumps(d, allow_nan=False))


def test_fit_bins_kinds_and_layout() -> None:
    cols = BINS.columns
    assert [cols[c].kind for c in ("x", "city", "flag", "k", "empty")] == [
        "numeric",
        "categorical",
        "categorical",
        "numeric",
        "numeric",
    ]
    x = cols["x"]
    assert len(x.edges) == 11 and x.edges[0] == REFERENCE["x"].min() and x.edges[-1] == REFERENCE["x"].max()
    assert set(x.edges) <= set(x.fine_edges) and len(x.fine_edges) == 201
    labels = x.bucket_labels()
    assert labels[0] == "below" and labels[-2:] == ["above", "missing"] and labels[-3].endswith("]")
    assert cols["city"].categories == ["paris", "oslo", "rome"]
    assert cols["city"].bucket_labels()[-3:] == ["other", "unseen", "missing"]
    assert sorted(cols["flag"].categories) == ["False", "True"]
    assert cols["k"].edges == [3.0, 3.0]  # a constant: the single closed bin [3, 3]
    assert cols["empty"].edges == [] and cols["empty"].bucket_labels() == ["below", "above", "missing"]


def test_quantile_bins_hold_equal_mass_and_ties_merge_edges() -> None:
    p = profile_frame(REFERENCE, BINS).columns["x"]
    inner = p.counts[1:-2]
    assert inner.sum() == 5_000 and inner.min() >= 490 and inner.max() <= 510
    skewed = pd.DataFrame({"z": np.r_[np.zeros(800), np.arange(1, 201)]})
    z = fit_bins(skewed).columns["z"]
    assert z.edges[0] == 0 and len(z.edges) == len(set(z.edges)) < 11
    counts = profile_frame(skewed, fit_bins(skewed)).columns["z"].counts
    assert counts[1] >= 800 and counts.sum() == 1_000


def test_numeric_buckets_edges_out_of_range_and_missing() -> None:
    bins = fit_bins(pd.DataFrame({"v": [0.0, 1.0, 2.0, 3.0, 4.0]}), n_bins=2)
    col = ColumnProfile(bins.columns["v"])
    col.update([-1.0, 0.0, 2.0, 4.0, 4.5, None, np.nan, np.inf, -np.inf])
    assert bins.columns["v"].edges == [0.0, 2.0, 4.0]
    # below, [0, 2), [2, 4], above, missing — the maximum is inside, NaN and ±inf are missing
    assert col.counts.tolist() == [1, 1, 2, 1, 4]
    assert col.count == 5 and col.missing == 4 and col.below == 1 and col.above == 1
    assert col.min == -1.0 and col.max == 4.5 and col.mean == pytest.approx(1.9)
    assert col.below_sum == -1.0 and col.above_sum == 4.5


def test_inputs_of_every_shape() -> None:
    b = BINS.columns["x"]
    for values in ([9.0, None, 11.0], np.array([9.0, np.nan, 11.0]), pd.Series([9, None, 11], dtype="Int64")):
        col = ColumnProfile(b)
        col.update(values)
        assert (col.count, col.missing) == (2, 1)
    col = ColumnProfile(b)
    col.update(pd.Series(["9.5", "oops", None], dtype=object))  # not a number: missing
    assert (col.count, col.missing) == (1, 2)
    cat = ColumnProfile(BINS.columns["flag"])
    cat.update(pd.Series([True, False, None], dtype="boolean"))
    assert (cat.count, cat.missing, cat.unseen) == (2, 1, 0)


def test_categorical_cap_other_and_unseen() -> None:
    values = [f"v{i}" for i in range(5) for _ in range(10 - i)] + ["rare1", "rare2"]
    bins = fit_bins(pd.DataFrame({"c": values}), max_categories=3)
    c = bins.columns["c"]
    assert c.categories == ["v0", "v1", "v2"] and set(c.others) == {"v3", "v4", "rare1", "rare2"}
    ref = profile_frame(pd.DataFrame({"c": values}), bins).columns["c"]
    assert ref.counts.tolist() == [10, 9, 8, 7 + 6 + 2, 0, 0]  # "other" exists in the reference
    col = ColumnProfile(c)
    col.update(["v0", "v4", "brand-new", "brand-new", None, 1.0])
    assert col.counts.tolist() == [1, 0, 0, 1, 3, 1]
    assert col.unseen_top() == [("brand-new", 2), ("1", 1)]


def test_integral_floats_and_integers_are_one_category() -> None:
    bins = fit_bins(pd.DataFrame({"code": [1, 2, 2]}), categorical=["code"])
    col = ColumnProfile(bins.columns["code"])
    col.update(pd.Series([1.0, 2.0, None]))
    assert col.counts.tolist() == [1, 1, 0, 0, 1]


def test_profile_update_missing_column_counts_as_missing() -> None:
    p = Profile.empty(BINS)
    p.update(REFERENCE[["x"]].head(10))
    assert p.rows == 10 and p.columns["city"].missing == 10 and p.columns["city"].count == 0


def test_fit_bins_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput) as err:
        fit_bins(REFERENCE, ["nope"])
    assert err.value.field == "columns"
    with pytest.raises(InvalidInput):
        fit_bins(REFERENCE, n_bins=0)
    with pytest.raises(InvalidInput):
        fit_bins(REFERENCE, max_categories=0)
    with pytest.raises(InvalidInput):
        fit_bins(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"])}), ["t"])
    assert fit_bins(pd.DataFrame({"t": pd.to_datetime(["2024-01-01"]), "x": [1.0]})).columns.keys() == {"x"}


def test_merging_profiles_on_other_bins_is_refused() -> None:
    other = fit_bins(REFERENCE.assign(x=REFERENCE["x"] + 1))
    with pytest.raises(InvalidInput):
        profile_frame(REFERENCE, BINS).merge(profile_frame(REFERENCE, other))
    stored = _json(profile_frame(REFERENCE, BINS).to_dict())
    with pytest.raises(InvalidInput):
        Profile.from_dict(stored, other)


def test_json_round_trip() -> None:
    df = pd.concat([REFERENCE, pd.DataFrame({"x": [1e6, -1e6], "city": ["lima", None]})], ignore_index=True)
    p = profile_frame(df, BINS)
    d = _json(p.to_dict())
    bins = ReferenceBins.from_dict(_json(BINS.to_dict()))
    assert bins == BINS and bins.digest() == BINS.digest()
    q = Profile.from_dict(d, bins)
    assert q.rows == p.rows
    for name, col in p.columns.items():
        back = q.columns[name]
        assert back.counts.tolist() == col.counts.tolist() and back.missing == col.missing
        assert (back.mean, back.std, back.min, back.max) == (col.mean, col.std, col.min, col.max)
        assert back.quantile(0.5) == col.quantile(0.5)
    assert q.columns["city"].unseen_top() == [("lima", 1)]
    again = _json(q.to_dict())
    for stored in (again, d):  # a queried KLL sketch may serialise its (equivalent) sorted state
        for col in stored["columns"].values():
            col.pop("kll", None)
    assert again == d
    assert d["columns"]["empty"]["mean"] is None and d["columns"]["k"]["std"] == 0.0
    merged = q.merge(p)
    assert merged.columns["x"].count == 2 * p.columns["x"].count


def test_column_bins_round_trip_and_validation() -> None:
    b = BINS.columns["x"]
    assert ColumnBins.from_dict(_json(b.to_dict())) == b
    with pytest.raises(InvalidInput):
        ColumnBins(name="bad", kind="numeric", edges=[0.0, 0.5, 1.0], fine_edges=[0.0, 1.0])
    with pytest.raises(InvalidInput):
        ColumnBins(name="bad", kind="text")


def test_empty_profiles_have_no_nan() -> None:
    p = Profile.empty(BINS)
    x = p.columns["x"]
    assert (x.count, x.mean, x.std, x.min, x.max, x.quantile(0.5)) == (0, None, None, None, None, None)
    assert x.counts.sum() == 0
    _json(p.to_dict())
    one = profile_frame(REFERENCE.head(1), BINS).columns["x"]
    assert one.std is None and one.mean == one.min == one.max == one.quantile(0.9)
    with pytest.raises(InvalidInput):
        x.quantile(1.5)


floats = st.one_of(
    st.floats(min_value=-50, max_value=50, allow_nan=False),
    st.sampled_from([np.nan, np.inf, -np.inf, 5.0, 10.0]),  # missing values and ties
)


@FAST
@given(st.lists(floats, max_size=400), st.lists(floats, max_size=400))
def test_numeric_merge_equals_profile_of_concatenation(a: list[float], b: list[float]) -> None:
    bins = BINS.columns["x"]
    pa, pb, whole = ColumnProfile(bins), ColumnProfile(bins), ColumnProfile(bins)
    pa.update(a)
    pb.update(b)
    whole.update(a + b)
    merged = pa + pb
    assert merged.counts.tolist() == whole.counts.tolist()
    assert (merged.count, merged.missing, merged.min, merged.max) == (whole.count, whole.missing, whole.min, whole.max)
    np.testing.assert_allclose(merged.fine_sums, whole.fine_sums, rtol=1e-9, atol=1e-9)
    if whole.count:
        assert merged.mean == pytest.approx(whole.mean, abs=1e-9)
    if whole.count > 1:
        assert merged.std == pytest.approx(whole.std, rel=1e-6, abs=1e-9)
        values = np.sort(np.asarray([v for v in a + b if np.isfinite(v)]))
        for q in (0.1, 0.5, 0.9):
            # KLL is exact below its capacity; allow its rank error anyway.
            lo, hi = np.quantile(values, [max(q - 0.03, 0), min(q + 0.03, 1)], method="inverted_cdf")
            assert lo <= merged.quantile(q) <= hi


@FAST
@given(
    st.lists(st.sampled_from(["paris", "oslo", "rome", "lima", "", None]), max_size=200),
    st.lists(st.sampled_from(["paris", "oslo", "tokyo", None]), max_size=200),
)
def test_categorical_merge_equals_profile_of_concatenation(a: list, b: list) -> None:
    bins = BINS.columns["city"]
    pa, pb, whole = ColumnProfile(bins), ColumnProfile(bins), ColumnProfile(bins)
    pa.update(a)
    pb.update(b)
    whole.update(a + b)
    merged = pa.merge(pb)
    assert merged.counts.tolist() == whole.counts.tolist()
    assert merged.missing == whole.missing == sum(v is None for v in a + b)
    assert dict(merged.unseen_top()) == dict(whole.unseen_top())


def test_large_stream_merges_within_sketch_error() -> None:
    rng = np.random.default_rng(3)
    chunks = [rng.normal(10, 2, 50_000) for _ in range(4)]
    parts = []
    for c in chunks:
        p = ColumnProfile(BINS.columns["x"])
        p.update(c)
        parts.append(p)
    merged = parts[0] + parts[1] + parts[2] + parts[3]
    values = np.concatenate(chunks)
    whole = ColumnProfile(BINS.columns["x"])
    whole.update(values)
    assert merged.counts.tolist() == whole.counts.tolist()
    assert merged.std == pytest.approx(values.std(ddof=1), rel=1e-9)
    for q in (0.01, 0.25, 0.5, 0.75, 0.99):
        rank = np.searchsorted(np.sort(values), merged.quantile(q)) / len(values)
        assert abs(rank - q) < 0.02
