"""Datasets through the SDK, embedded and remote, on SQLite and PostgreSQL (the ``client`` fixture)."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from shipyard import Client
from shipyard.core.errors import InvalidInput, NotFound


def _frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(10.0, 3.0, n)
    x[::17] = np.nan
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.integers(0, 50, n),
            "city": rng.choice(["paris", "lima", "oslo", None], n),
            "flag": rng.choice([True, False], n),
            "when": pd.date_range("2026-01-01", periods=n, freq="h"),
        }
    )


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_versions_from_a_dataframe_number_idempotently_and_profile(client: Client) -> None:
    df = _frame()
    v1 = client.log_dataset(df, name="churn", description="raw", tags={"team": "risk"})
    assert (v1.name, v1.version, v1.ref, v1.format, v1.file_count) == ("churn", 1, "churn@1", "parquet", 1)
    assert v1.digest.startswith("sha256:") and v1.row_count == len(df)
    assert v1.tags == {"team": "risk"} and v1.description == "raw" and v1.created_by
    assert v1.source_uri == "python:pandas.DataFrame"
    assert [c["name"] for c in v1.schema] == list(df.columns)
    assert {c["name"]: c["type"] for c in v1.schema}["k"] == "int64"

    # The same frame again: the same digest, so the latest version comes back, not a new number.
    again = client.log_dataset(df.copy(), name="churn")
    assert (again.version, again.digest, again.id) == (1, v1.digest, v1.id)

    v2 = client.log_dataset(df.head(100), name="churn", parents=["churn@1"])
    assert v2.version == 2 and v2.digest != v1.digest and v2.parents == ["churn@1"] and v2.row_count == 100
    assert [v.ref for v in client.dataset_versions("churn")] == ["churn@2", "churn@1"]
    assert client.get_dataset("churn").ref == client.get_dataset("churn@latest").ref == "churn@2"
    assert client.get_dataset("churn@1").id == v1.id
    (dataset,) = client.list_datasets()
    assert (dataset.name, dataset.latest_version, dataset.version_count) == ("churn", 2, 2)


def test_profile_values_match_pandas(client: Client) -> None:
    df = _frame(500, seed=3)
    v = client.log_dataset(df, name="stats")
    cols = v.profile["columns"]
    x = cols["x"]
    assert x["kind"] == "numeric" and x["type"] == "double"
    assert x["count"] == df.x.count() and x["missing"] == df.x.isna().sum()
    assert x["min"] == pytest.approx(df.x.min()) and x["max"] == pytest.approx(df.x.max())
    assert x["mean"] == pytest.approx(df.x.mean()) and x["std"] == pytest.approx(df.x.std())
    for q, value in x["quantiles"].items():
        assert value == pytest.approx(df.x.quantile(float(q)))
    assert len(x["histogram"]["counts"]) == 20 and len(x["histogram"]["edges"]) == 21
    assert sum(x["histogram"]["counts"]) == df.x.count()
    expected, _ = np.histogram(df.x.dropna(), bins=20, range=(df.x.min(), df.x.max()))
    assert x["histogram"]["counts"] == expected.tolist()
    assert abs(x["distinct"] - df.x.nunique()) <= 0.05 * df.x.nunique()

    k = cols["k"]
    assert (k["min"], k["max"]) == (int(df.k.min()), int(df.k.max())) and isinstance(k["min"], int)
    city = cols["city"]
    assert city["kind"] == "categorical" and city["missing"] == df.city.isna().sum()
    counts = df.city.value_counts()
    assert {t["value"]: t["count"] for t in city["top"]} == counts.to_dict()
    assert city["top"][0]["count"] == counts.max()
    assert "mean" not in city and "histogram" not in city
    flag = cols["flag"]
    assert (
        flag["kind"] == "boolean" and {t["value"]: t["count"] for t in flag["top"]} == df.flag.value_counts().to_dict()
    )
    when = cols["when"]
    assert when["kind"] == "datetime" and when["min"].startswith("2026-01-01T00:00")
    # Stored and returned as strict JSON: no NaN anywhere.
    json.dumps(v.profile, allow_nan=False)


def test_directory_of_csv_and_plain_files(client: Client, tmp_path: Path) -> None:
    csv = _write_tree(tmp_path / "csv", {"a.csv": b"id,score\n1,0.5\n2,1.5\n", "b/c.csv": b"id,score\n3,2.5\n"})
    v = client.log_dataset(csv, name="scores")
    assert (v.format, v.file_count, v.row_count) == ("csv", 2, 3)
    assert v.profile["columns"]["score"]["mean"] == pytest.approx(1.5)
    assert v.source_uri == csv.absolute().as_uri()
    table = client.load_dataset("scores@1", as_="arrow", record=False)
    assert isinstance(table, pa.Table) and sorted(table.column("id").to_pylist()) == [1, 2, 3]

    blobs = _write_tree(tmp_path / "blobs", {"img/1.png": b"\x89PNG1", "img/2.png": b"\x89PNG2", "README": b"hi"})
    f = client.log_dataset(blobs, name="images")
    assert (f.format, f.file_count, f.size, f.row_count, f.profile, f.schema) == ("files", 3, 12, None, None, None)
    with pytest.raises(InvalidInput, match="no table data"):
        client.load_dataset("images@1")


def test_get_files_materialises_a_verified_copy(client: Client, tmp_path: Path) -> None:
    src = _write_tree(tmp_path / "src", {"a.txt": b"alpha", "sub/b.txt": b"beta"})
    client.log_dataset(src, name="docs")
    (src / "a.txt").write_bytes(b"ALPHA!")
    client.log_dataset(src, name="docs")

    out = client.get_dataset_files("docs@1", tmp_path / "v1", link=False)
    assert (out / "a.txt").read_bytes() == b"alpha" and (out / "sub" / "b.txt").read_bytes() == b"beta"
    linked = client.get_dataset_files("docs@2", tmp_path / "v2")
    assert (linked / "a.txt").read_bytes() == b"ALPHA!"


def test_load_dataset_round_trips_and_records_consumers(client: Client) -> None:
    df = _frame(50)
    client.log_dataset(df, name="train")
    run = client.create_run(name="fit", capture_environment=False)
    loaded = client.load_dataset("train@1", consumers=[("run", run.id)])
    pd.testing.assert_frame_equal(loaded, df)
    lineage = client.dataset_lineage("train@1")
    assert [(n.type, n.id, n.name, n.role) for n in lineage.used_by] == [("run", run.id, "fit", "input")]
    with pytest.raises(NotFound, match="run 'nope' not found"):
        client.load_dataset("train@1", consumers=[("run", "nope")])


def test_lineage_with_producing_run_parents_and_models(client: Client) -> None:
    producer = client.create_run(name="etl", capture_environment=False)
    raw = client.log_dataset(_frame(30), name="raw", run_id=producer.id)
    clean = client.log_dataset(_frame(30).dropna(), name="clean", parents=[raw.ref], run_id=producer.id)
    consumer = client.create_run(name="train", capture_environment=False)
    client.record_dataset_usage(clean.ref, "run", consumer.id)
    client.record_dataset_usage(clean.ref, "run", consumer.id)  # idempotent

    lin = client.dataset_lineage("clean")
    assert [(n.type, n.name) for n in lin.parents] == [("dataset_version", "raw@1")]
    assert [(n.type, n.id, n.name, n.role) for n in lin.produced_by] == [("run", producer.id, "etl", "output")]
    assert [(n.type, n.name) for n in lin.used_by] == [("run", "train")]
    raw_lineage = client.dataset_lineage("raw@1")
    assert [n.name for n in raw_lineage.children] == ["clean@1"]

    # Re-adding identical content with a run records the edge, not a new version.
    other = client.create_run(name="etl-again", capture_environment=False)
    same = client.log_dataset(_frame(30), name="raw", run_id=other.id)
    assert same.version == 1
    assert {n.name for n in client.dataset_lineage("raw@1").produced_by} == {"etl", "etl-again"}


def test_diff_reports_files_schema_and_statistics(client: Client, tmp_path: Path) -> None:
    src = _write_tree(tmp_path / "d", {"keep.csv": b"a,b\n1,x\n2,y\n", "gone.csv": b"a,b\n3,z\n"})
    client.log_dataset(src, name="t")
    (src / "gone.csv").unlink()
    (src / "keep.csv").write_bytes(b"a,b,c\n1,x,1.5\n2,y,2.5\n10,w,3.5\n")
    (src / "new.csv").write_bytes(b"a,b,c\n4,q,1.0\n")
    client.log_dataset(src, name="t")

    d = client.diff_datasets("t@1", "t@2")
    assert not d.identical and (d.row_count_a, d.row_count_b) == (3, 4)
    assert [(f.path, f.change) for f in d.files] == [
        ("gone.csv", "removed"),
        ("keep.csv", "changed"),
        ("new.csv", "added"),
    ]
    by_name = {c.name: c for c in d.columns}
    assert by_name["c"].change == "added"
    a = by_name["a"]
    assert a.change == "stats_changed" and a.stats["max"] == {"a": 3, "b": 10, "delta": 7}
    assert a.stats["mean"]["a"] == pytest.approx(2.0) and a.stats["mean"]["b"] == pytest.approx(4.25)
    assert client.diff_datasets("t@2", "t").identical


def test_as_of_travels_in_time(client: Client) -> None:
    v1 = client.log_dataset(_frame(10, 1), name="tt")
    time.sleep(0.02)
    v2 = client.log_dataset(_frame(10, 2), name="tt")
    assert client.dataset_as_of("tt", str(v1.created_at)).version == 1
    assert client.dataset_as_of("tt", str(v2.created_at - 1)).version == 1
    assert client.dataset_as_of("tt", str(v2.created_at)).version == 2
    assert client.dataset_as_of("tt", "2999-01-01T00:00").version == 2
    with pytest.raises(NotFound, match="no version at or before 2001-01-01"):
        client.dataset_as_of("tt", "2001-01-01")
    with pytest.raises(InvalidInput, match="not a timestamp"):
        client.dataset_as_of("tt", "yesterday-ish")


def test_tags_can_be_set_later(client: Client) -> None:
    client.log_dataset(_frame(5), name="tagged")
    v = client.set_dataset_tags("tagged@1", {"stage": "gold"})
    assert v.tags == {"stage": "gold"} and client.get_dataset("tagged").tags == {"stage": "gold"}


def test_errors_name_what_is_wrong(client: Client, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="dataset 'ghost' not found"):
        client.get_dataset("ghost@1")
    client.log_dataset(_frame(5), name="real")
    with pytest.raises(NotFound, match="dataset 'real' has no version 7"):
        client.get_dataset("real@7")
    for bad in ("real@0", "real@x", "@3", "real@1@2"):
        with pytest.raises(InvalidInput) as err:
            client.get_dataset(bad)
        assert err.value.field in ("ref", "dataset name")
    with pytest.raises(NotFound, match="no such file or directory"):
        client.log_dataset(tmp_path / "missing", name="x")
    with pytest.raises(InvalidInput, match="contains '/', '@'"):
        client.log_dataset(_frame(5), name="bad@name")
    with pytest.raises(InvalidInput, match="pass a path, a pandas DataFrame"):
        client.log_dataset(42, name="x")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"this is not parquet at all")
    with pytest.raises(InvalidInput, match="cannot read the parquet data"):
        client.log_dataset(broken, name="broken")
    with pytest.raises(NotFound):
        client.get_dataset("broken")  # nothing half-registered
    with pytest.raises(NotFound, match="parent|not found"):
        client.log_dataset(_frame(6), name="orphan", parents=["ghost@1"])
    with pytest.raises(InvalidInput, match="consumer_type"):
        client.record_dataset_usage("real@1", "notebook", "x")
    with pytest.raises(InvalidInput, match='as_ must be "pandas" or "arrow"'):
        client.load_dataset("real@1", as_="polars")


def test_nan_and_infinity_are_missing_and_json_stays_valid(client: Client) -> None:
    df = pd.DataFrame({"v": [1.0, math.nan, math.inf, -math.inf, 3.0], "all_nan": [math.nan] * 5})
    v = client.log_dataset(df, name="weird")
    col = v.profile["columns"]["v"]
    assert (col["count"], col["missing"], col["min"], col["max"]) == (2, 3, 1.0, 3.0)
    empty = v.profile["columns"]["all_nan"]
    assert (empty["count"], empty["missing"]) == (0, 5) and "mean" not in empty
    json.dumps(v.model_dump(), allow_nan=False)


def test_concurrent_writers_get_distinct_version_numbers(client: Client) -> None:
    from concurrent.futures import ThreadPoolExecutor

    frames = [pd.DataFrame({"i": [i]}) for i in range(6)]
    with ThreadPoolExecutor(3) as pool:
        versions = list(pool.map(lambda df: client.log_dataset(df, name="race"), frames))
    assert sorted(v.version for v in versions) == [1, 2, 3, 4, 5, 6]
    assert len({v.digest for v in versions}) == 6
