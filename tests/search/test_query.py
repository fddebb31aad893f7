"""What the compiled filters and orders select, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import math
import warnings

import pytest
import sqlalchemy as sa

from shipyard.core.errors import FilterSyntaxError
from shipyard.store import Database
from shipyard.store.schema import runs
from shipyard.tracking.search import build_search_query, compile_filter, parse_filter

from .helpers import RunRow, insert_runs, new_experiment, search

NAN, INF = math.nan, math.inf


class Dataset:
    """Five active runs and one deleted, with values chosen to tell every operator apart."""

    def __init__(self, db: Database):
        self.experiment = new_experiment(db)
        prefix = self.experiment[:20]
        self.ids = {label: f"{prefix}-{label}" for label in ("r1", "r2", "r3", "r4", "r5", "r6")}
        self.labels = {run_id: label for label, run_id in self.ids.items()}
        i = self.ids
        rows = [
            RunRow(
                i["r1"],
                name="alpha",
                status="FINISHED",
                user="alice",
                start_time=1000,
                end_time=2000,
                metrics={"acc": 0.95, "loss": 0.1, "val loss": 0.2},
                params={"model": "rf", "lr": "0.01", "depth": "10", "max-depth": "5"},
                tags={"team": "risk", "env": "prod"},
            ),
            RunRow(
                i["r2"],
                name="beta",
                status="FAILED",
                user="bob",
                start_time=2000,
                metrics={"acc": 0.80, "loss": NAN},
                params={"model": "xgb", "lr": "0.1", "depth": "abc"},
                tags={"team": "Risk"},
            ),
            RunRow(
                i["r3"],
                name="Gamma",
                status="RUNNING",
                user="alice",
                start_time=3000,
                metrics={"acc": INF, "train/loss": 0.5},
                params={"model": "rf", "lr": "1e-3", "depth": "7"},
                tags={"team": "growth", "note": "it's 50%"},
            ),
            RunRow(
                i["r4"],
                name="delta_1",
                status="KILLED",
                user="carol",
                start_time=4000,
                parent_run_id=i["r1"],
                description="baseline run",
                metrics={"acc": -INF},
                params={"model": "svm", "lr": "high"},
            ),
            RunRow(i["r5"], name="eps", status="FINISHED", user="dave", start_time=3000, tags={"team": "risk"}),
            RunRow(
                i["r6"],
                name="deleted",
                start_time=5000,
                lifecycle="deleted",
                metrics={"acc": 0.99},
                params={"model": "rf"},
            ),
        ]
        insert_runs(db, self.experiment, rows)

    def find(self, db: Database, filter_text: str | None, order_by: list[str] | None = None, **kw: object) -> list[str]:
        text = filter_text.format(**self.ids, exp=self.experiment) if filter_text else filter_text
        return [self.labels[run_id] for run_id in search(db, self.experiment, text, order_by, **kw)]  # type: ignore[arg-type]


_DATASETS: dict[str, Dataset] = {}


@pytest.fixture
def data(db: Database) -> Dataset:
    if db.dialect not in _DATASETS:
        _DATASETS[db.dialect] = Dataset(db)
    return _DATASETS[db.dialect]


CASES: list[tuple[str, set[str]]] = [
    # metrics: numbers, NaN, ±inf; a run without the metric never matches a comparison
    ("metrics.acc > 0.9", {"r1", "r3"}),
    ("metrics.acc >= 0.8", {"r1", "r2", "r3"}),
    ("metrics.acc < 0.9", {"r2", "r4"}),
    ("metrics.acc <= 0.8", {"r2", "r4"}),
    ("metrics.acc = 0.95", {"r1"}),
    ("metrics.acc == 0.95", {"r1"}),
    ("metrics.acc != 0.95", {"r2", "r3", "r4"}),
    ("metrics.acc <> 0.95", {"r2", "r3", "r4"}),
    ("metrics.acc = inf", {"r3"}),
    ("metrics.acc = -inf", {"r4"}),
    ("metrics.acc > -inf", {"r1", "r2", "r3"}),
    ("metrics.acc < -inf", set()),
    ("metrics.acc >= 1e308", {"r3"}),
    ("metrics.loss = NaN", {"r2"}),
    ("metrics.loss != nan", {"r1"}),
    ("metrics.loss > 0", {"r1"}),
    ("metrics.loss < 1", {"r1"}),
    ("metrics.loss >= -inf", {"r1"}),
    ("metrics.loss != 0.1", {"r2"}),
    ("metrics.loss < NaN", set()),
    ("metrics.loss >= NaN", set()),
    ("not metrics.loss > 0", {"r2", "r3", "r4", "r5"}),
    ("metrics.acc in (0.95, 0.8)", {"r1", "r2"}),
    ("metrics.loss in (NaN, 0.1)", {"r1", "r2"}),
    ("metrics.loss in (NaN)", {"r2"}),
    ("metrics.acc not in (0.95, inf)", {"r2", "r4"}),
    ("metrics.loss not in (nan)", {"r1"}),
    ("metrics.acc is null", {"r5"}),
    ("metrics.acc is not null", {"r1", "r2", "r3", "r4"}),
    ("metrics.nope > 0 or metrics.nope is not null", set()),
    ("metrics.`val loss` < 0.5", {"r1"}),
    ('metrics."val loss" = 0.2', {"r1"}),
    ("metrics.train/loss = 0.5", {"r3"}),
    # params: strings, or numbers when the value is an unquoted number
    ("params.model = 'rf'", {"r1", "r3"}),
    ('params.model = "rf"', {"r1", "r3"}),
    ("params.model != 'rf'", {"r2", "r4"}),
    ("params.model in ('rf', 'svm')", {"r1", "r3", "r4"}),
    ("params.model not in ('rf')", {"r2", "r4"}),
    ("params.model like 'r%'", {"r1", "r3"}),
    ("params.model like 'R%'", set()),
    ("params.model ilike 'R%'", {"r1", "r3"}),
    ("params.model like '_v_'", {"r4"}),
    ("params.model not like 'r%'", {"r2", "r4"}),
    ("params.model not ilike 'X%'", {"r1", "r3", "r4"}),
    ("params.model > 's'", {"r2", "r4"}),
    ("params.model <= 'rf'", {"r1", "r3"}),
    ("params.depth > 8", {"r1"}),
    ("params.depth < 8", {"r3"}),
    ("params.depth = 10", {"r1"}),
    ("params.depth = 10.0", {"r1"}),
    ("params.depth = 1e1", {"r1"}),
    ("params.depth = '10'", {"r1"}),
    ("params.depth = '10.0'", set()),
    ("params.depth != 10", {"r2", "r3"}),
    ("params.depth not in (10, 7)", {"r2"}),
    ("params.depth > 'a'", {"r2"}),
    ("params.lr < 0.05", {"r1", "r3"}),
    ("params.lr >= 0.01", {"r1", "r2"}),
    ("params.lr <= -1", set()),
    ("params.lr in (0.1, 'high')", {"r2", "r4"}),
    ("params.max-depth = 5", {"r1"}),
    ("params.depth is null", {"r4", "r5"}),
    ("params.depth is not null", {"r1", "r2", "r3"}),
    # tags: strings, case-sensitive except ilike
    ("tags.team = 'risk'", {"r1", "r5"}),
    ("tags.team != 'risk'", {"r2", "r3"}),
    ("tags.team like 'risk'", {"r1", "r5"}),
    ("tags.team ilike 'RISK'", {"r1", "r2", "r5"}),
    ("tags.team not ilike 'risk'", {"r3"}),
    ("tags.team < 'a'", {"r2"}),
    ("tags.team in ('Risk', 'growth')", {"r2", "r3"}),
    ("tags.note = 'it''s 50%'", {"r3"}),
    ("tags.note = 'it\\'s 50%'", {"r3"}),
    ("tags.note like '%50\\%'", {"r3"}),
    ("tags.note like '%5\\0%'", {"r3"}),
    ("tags.note like 'it_s%'", {"r3"}),
    ("tags.note like '%\\_%'", set()),
    ("tags.note like 'it*'", set()),
    ("tags.team is null", {"r4"}),
    ('tags.env = "prod"', {"r1"}),
    # attributes
    ("name = 'alpha'", {"r1"}),
    ("run_name = 'beta'", {"r2"}),
    ("attributes.name like '%a'", {"r1", "r2", "r3"}),
    ("name like 'g%'", set()),
    ("name ilike 'g%'", {"r3"}),
    ("name like 'delta\\_%'", {"r4"}),
    ("name < 'b'", {"r1", "r3"}),
    ("status = 'finished'", {"r1", "r5"}),
    ("status in ('FAILED', 'killed')", {"r2", "r4"}),
    ("status not in ('FAILED', 'killed')", {"r1", "r3", "r5"}),
    ("status != 'RUNNING'", {"r1", "r2", "r4", "r5"}),
    ("run.status = 'KILLED'", {"r4"}),
    ("user = 'alice'", {"r1", "r3"}),
    ("attr.user != 'alice'", {"r2", "r4", "r5"}),
    ("start_time > 2000", {"r3", "r4", "r5"}),
    ("start_time >= '1970-01-01T00:00:02'", {"r2", "r3", "r4", "r5"}),
    ("start_time < '1970-01-01T00:00:02Z'", {"r1"}),
    ("start_time = 3000", {"r3", "r5"}),
    ("start_time in (1000, '1970-01-01T00:00:04')", {"r1", "r4"}),
    ("start_time != 3000", {"r1", "r2", "r4"}),
    ("end_time is null", {"r2", "r3", "r4", "r5"}),
    ("end_time is not null", {"r1"}),
    ("end_time < 5000", {"r1"}),
    ("end_time != 2000", set()),
    ("not end_time < 5000", {"r2", "r3", "r4", "r5"}),
    ("parent_run_id = '{r1}'", {"r4"}),
    ("parent_run_id != '{r1}'", set()),
    ("parent_run_id is null", {"r1", "r2", "r3", "r5"}),
    ("description like '%base%'", {"r4"}),
    ("description != 'x'", {"r4"}),
    ("description is null", {"r1", "r2", "r3", "r5"}),
    ("run_id = '{r1}'", {"r1"}),
    ("id in ('{r1}', '{r2}')", {"r1", "r2"}),
    ("id not in ('{r1}', '{r2}')", {"r3", "r4", "r5"}),
    ("experiment_id = '{exp}'", {"r1", "r2", "r3", "r4", "r5"}),
    ("experiment_id != '{exp}'", set()),
    # logic
    ("metrics.acc > 0.9 or params.model = 'svm'", {"r1", "r3", "r4"}),
    ("params.model = 'rf' and metrics.acc > 0.9 or status = 'KILLED'", {"r1", "r3", "r4"}),
    ("status = 'KILLED' or params.model = 'rf' and metrics.acc > 1", {"r3", "r4"}),
    ("params.model = 'rf' and (metrics.acc > 1 or status = 'KILLED')", {"r3"}),
    ("(params.model = 'rf' or status = 'KILLED') and metrics.acc < 1", {"r1", "r4"}),
    ("not (params.model = 'rf')", {"r2", "r4", "r5"}),
    ("NOT params.model = 'rf' AND tags.team = 'risk'", {"r5"}),
    ("not (params.model = 'rf' and tags.team = 'risk')", {"r2", "r3", "r4", "r5"}),
    ("not not metrics.acc > 0.9", {"r1", "r3"}),
    ("metrics.acc > 0.9 and not metrics.acc > 0.9", set()),
    ("metrics.acc > 0.9 or not metrics.acc > 0.9", {"r1", "r2", "r3", "r4", "r5"}),
    ("", {"r1", "r2", "r3", "r4", "r5"}),
]


@pytest.mark.parametrize(("filter_text", "expected"), CASES, ids=[c[0] or "<empty>" for c in CASES])
def test_filter(data: Dataset, db: Database, filter_text: str, expected: set[str]) -> None:
    found = data.find(db, filter_text)
    assert len(found) == len(set(found))
    assert set(found) == expected


def test_deleted_runs_only_on_request(data: Dataset, db: Database) -> None:
    assert set(data.find(db, "metrics.acc > 0.9")) == {"r1", "r3"}
    assert set(data.find(db, "metrics.acc > 0.9", include_deleted=True)) == {"r1", "r3", "r6"}
    assert set(data.find(db, None, include_deleted=True)) == {"r1", "r2", "r3", "r4", "r5", "r6"}


def test_experiments(data: Dataset, db: Database) -> None:
    other = new_experiment(db)
    insert_runs(db, other, [RunRow(f"{other[:20]}-x", params={"model": "rf"})])
    both = search(db, [data.experiment, other], "params.model = 'rf'")
    assert {data.labels.get(run_id, "x") for run_id in both} == {"r1", "r3", "x"}
    assert search(db, [other], "params.model = 'rf'") == [f"{other[:20]}-x"]
    assert search(db, [], None) == []
    assert set(search(db, None, "params.model = 'rf'")) >= set(both)


ORDERS: list[tuple[list[str] | None, list[str]]] = [
    (None, ["r4", "r3", "r5", "r2", "r1"]),  # newest first; r3 and r5 tie on start_time, then by id
    ([], ["r4", "r3", "r5", "r2", "r1"]),
    (["metrics.acc DESC"], ["r3", "r1", "r2", "r4", "r5"]),
    (["metrics.acc"], ["r4", "r2", "r1", "r3", "r5"]),
    (["metrics.acc asc"], ["r4", "r2", "r1", "r3", "r5"]),
    # NaN after numbers, missing after NaN, in both directions; ties by start_time desc then id
    (["metrics.loss asc"], ["r1", "r2", "r4", "r3", "r5"]),
    (["metrics.loss desc"], ["r1", "r2", "r4", "r3", "r5"]),
    # numeric params numerically, then the others as text, then the missing
    (["params.depth"], ["r3", "r1", "r2", "r4", "r5"]),
    (["params.depth desc"], ["r1", "r3", "r2", "r4", "r5"]),
    (["params.lr"], ["r3", "r1", "r2", "r4", "r5"]),
    (["params.lr DESC"], ["r2", "r1", "r3", "r4", "r5"]),
    # text by code point (upper case first), whatever the server's collation
    (["tags.team"], ["r2", "r3", "r5", "r1", "r4"]),
    (["tags.team desc"], ["r5", "r1", "r3", "r2", "r4"]),
    (["name"], ["r3", "r1", "r2", "r4", "r5"]),
    (["attributes.name desc"], ["r5", "r4", "r2", "r1", "r3"]),
    (["start_time asc"], ["r1", "r2", "r3", "r5", "r4"]),
    (["end_time desc"], ["r1", "r4", "r3", "r5", "r2"]),
    (["description"], ["r4", "r3", "r5", "r2", "r1"]),
    (["status", "name"], ["r2", "r1", "r5", "r4", "r3"]),
    (["params.model", "metrics.acc desc"], ["r3", "r1", "r4", "r2", "r5"]),
    (["metrics.nope", "run_id desc"], ["r5", "r4", "r3", "r2", "r1"]),
]


@pytest.mark.parametrize(("order_by", "expected"), ORDERS, ids=[repr(o[0]) for o in ORDERS])
def test_order(data: Dataset, db: Database, order_by: list[str] | None, expected: list[str]) -> None:
    assert data.find(db, None, order_by) == expected


def test_order_with_filter(data: Dataset, db: Database) -> None:
    assert data.find(db, "metrics.acc > -inf", ["metrics.acc desc"]) == ["r3", "r1", "r2"]
    assert data.find(db, "params.model = 'rf'", ["metrics.acc"]) == ["r1", "r3"]


def test_ties_are_broken_deterministically_and_pages_do_not_overlap(db: Database) -> None:
    experiment = new_experiment(db)
    ids = [f"{experiment[:20]}-{n:03d}" for n in range(30)]
    rows = [
        RunRow(run_id, start_time=1000 + (n % 3), metrics={"m": float(n % 2)} if n % 5 else {})
        for n, run_id in enumerate(reversed(ids))
    ]
    insert_runs(db, experiment, rows)
    for order_by in (None, ["metrics.m desc"], ["metrics.m"], ["name"], ["status", "user"]):
        query = build_search_query([experiment], None, order_by)
        with db.read() as conn:
            full = list(conn.execute(query).scalars())
            pages = [list(conn.execute(query.limit(7).offset(offset)).scalars()) for offset in range(0, 30, 7)]
        assert sorted(full) == sorted(ids)
        assert [run_id for page in pages for run_id in page] == full
        assert full == search(db, experiment, None, order_by)
    by_name = search(db, experiment, None, ["name"])  # every name is the same: start_time desc, then id
    assert by_name == sorted(ids, key=lambda r: (-(1000 + (29 - ids.index(r)) % 3), r))


def test_param_values_that_are_not_plain_numbers(db: Database) -> None:
    experiment = new_experiment(db)
    values = {
        "num1": "1e5",
        "num2": "-0",
        "num3": "1E-5",
        "num4": "1e0001",
        "num5": "12.50",
        "huge": "1e9999",
        "neg_huge": "-1e9999",
        "big_exponent": "1e99999",
        "big_signed_exponent": "1E+12345",
        "neg_big_exponent": "1e-12345",
        "long": "1" * 1200,
        "dot": ".5",
        "plus": "+1",
        "zeros": "007",
        "space": " 1",
        "hex": "0x1F",
        "nan": "NaN",
        "inf": "Infinity",
        "dash": "1-2",
        "empty": "",
        "text": "abc",
        "json": "[1]",
    }
    prefix = experiment[:12]
    insert_runs(db, experiment, [RunRow(f"{prefix}-{k}", params={"w": v}) for k, v in values.items()])

    def found(filter_text: str) -> set[str]:
        return {run_id.removeprefix(prefix + "-") for run_id in search(db, experiment, filter_text)}

    numeric = {"num1", "num2", "num3", "num4", "num5", "huge", "neg_huge"}
    assert found("params.w >= -1e308") == numeric - {"neg_huge"}
    assert found("params.w >= 0") == numeric - {"neg_huge"}
    assert found("params.w > 1e300") == {"huge"}  # no overflow error on PostgreSQL
    assert found("params.w = 0") == {"num2"}
    assert found("params.w = 12.5") == {"num5"}
    assert found("params.w < 1") == {"num2", "num3", "neg_huge"}
    assert found("params.w = 10") == {"num4"}
    assert found("params.w != 0") == set(values) - {"num2"}
    assert found("params.w in (100000, 'abc')") == {"num1", "text"}
    assert found("params.w = '007'") == {"zeros"}
    ordered = [r.removeprefix(prefix + "-") for r in search(db, experiment, None, ["params.w"])]
    assert ordered[:7] == ["neg_huge", "num2", "num3", "num4", "num5", "num1", "huge"]
    assert set(ordered[7:]) == set(values) - numeric


def test_keys_and_values_with_odd_characters(db: Database) -> None:
    experiment = new_experiment(db)
    run_id = f"{experiment[:20]}-odd"
    insert_runs(
        db,
        experiment,
        [
            RunRow(
                run_id,
                name="ünï ✓",
                metrics={"my metric": 1.0, "a`b": 2.0},
                params={'say "hi"': "x'y\\z", "p%_": "%_\\"},
                tags={"k.with.dots": "🚀"},
            )
        ],
    )
    for text in [
        "metrics.`my metric` = 1",
        "metrics.`a``b` = 2",
        'params."say ""hi""" = \'x\'\'y\\\\z\'',
        "params.`p%_` = '%_\\\\'",
        "params.`p%_` like '\\%\\_\\\\'",
        "params.`p%_` like '\\%\\_%'",
        "tags.k.with.dots = '🚀'",
        "tags.k.with.dots like '_'",
        "name = 'ünï ✓'",
        "name like 'ü%✓'",
    ]:
        assert search(db, experiment, text) == [run_id], text
    for text in ["params.`p%_` like '%\\_\\%%'", "metrics.`my metric` != 1", "name like 'ü'"]:
        assert search(db, experiment, text) == [], text


def test_compile_filter_is_usable_on_its_own(data: Dataset, db: Database) -> None:
    query = sa.select(runs.c.name).where(compile_filter(parse_filter("params.model = 'rf'")))
    query = query.where(runs.c.experiment_id == data.experiment)
    with db.read() as conn:
        assert sorted(conn.execute(query).scalars()) == ["Gamma", "alpha", "deleted"]


def test_compiled_statements_are_cacheable(data: Dataset, db: Database) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = build_search_query([data.experiment], "params.depth > 8 and tags.team like 'r%'", ["params.lr"])
        second = build_search_query([data.experiment], "params.depth > 6 and tags.team like 'g%'", ["params.lr"])
        key1, key2 = first._generate_cache_key(), second._generate_cache_key()
        assert key1 is not None and key1 == key2  # same shape, other values: one cached statement
        with db.read() as conn:
            assert [data.labels[r] for r in conn.execute(first).scalars()] == ["r1"]
            assert [data.labels[r] for r in conn.execute(second).scalars()] == ["r3"]


def test_the_largest_filters_allowed_run(data: Dataset, db: Database) -> None:
    widest = " or ".join(
        f"params.depth in ({5 * i}, {5 * i + 1}, {5 * i + 2}, {5 * i + 3}, {5 * i + 4})" for i in range(200)
    )
    assert set(data.find(db, widest)) == {"r1", "r3"}
    strings = " or ".join(f"tags.team in ('{i}', 'x{i}', 'y{i}', 'z{i}', 'risk')" for i in range(200))
    assert set(data.find(db, strings)) == {"r1", "r5"}
    deepest = "not (" * 25 + "metrics.acc > 0.9" + ")" * 25
    assert set(data.find(db, deepest)) == {"r2", "r4", "r5"}


def test_build_search_query_reports_bad_filters(db: Database) -> None:
    with pytest.raises(FilterSyntaxError, match="column 15"):
        build_search_query(None, "metrics.acc > and x", None)


def test_filtered_metric_order_matches_the_general_plan(db: Database) -> None:
    """A filter that requires the order metric takes the index-driven plan; it must order exactly alike."""
    experiment = new_experiment(db)
    rows = [
        RunRow(
            f"{experiment[:20]}-{n:03d}",
            start_time=1000 + (n % 4),
            metrics={"m": float(n % 5)} if n % 7 else ({"m": float("nan")} if n % 2 else {}),
        )
        for n in range(60)
    ]
    insert_runs(db, experiment, rows)
    for direction in ("desc", "asc"):
        fast = build_search_query([experiment], "metrics.m >= 1", [f"metrics.m {direction}"])
        general = build_search_query([experiment], "metrics.m >= 1 or metrics.m >= 1", [f"metrics.m {direction}"])
        with db.read() as conn:
            fast_ids = list(conn.execute(fast).scalars())
            general_ids = list(conn.execute(general).scalars())
            paged = [i for off in range(0, 60, 9) for i in conn.execute(fast.limit(9).offset(off)).scalars()]
        assert fast_ids == general_ids and fast_ids
        assert paged == fast_ids
