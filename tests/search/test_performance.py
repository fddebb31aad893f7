"""10,000 runs with 5 params and 5 metrics each: a params+metrics filter ordered by a metric, first page.

On a development machine the query takes ~25 ms on SQLite and ~15-25 ms on PostgreSQL (after
ANALYZE); the bound asserted here is loose so a busy CI machine does not flake, yet far below what a
plan without the indexes costs.
"""

from __future__ import annotations

import random
import statistics
import time

import pytest

from shipyard.store import Database
from shipyard.tracking.search import build_search_query

from .helpers import RunRow, insert_runs, new_experiment

N_RUNS = 10_000
FILTER = "params.model = 'rf' and params.depth >= 10 and metrics.m1 > 0.5"
ORDER = ["metrics.m0 DESC"]
BOUND_SECONDS = 0.25


class Big:
    def __init__(self, db: Database):
        self.experiment = new_experiment(db)
        rnd = random.Random(7)
        self.rows = [
            RunRow(
                f"{self.experiment[:16]}{i:08d}",
                name=f"run-{i}",
                start_time=1_700_000_000_000 + rnd.randrange(10**6),
                metrics={f"m{k}": rnd.random() for k in range(5)},
                params={
                    "model": rnd.choice(["rf", "xgb", "lr", "svm"]),
                    "depth": str(rnd.randrange(1, 20)),
                    "lr": rnd.choice(["0.1", "0.01", "1e-3"]),
                    "seed": str(rnd.randrange(100)),
                    "optimizer": rnd.choice(["sgd", "adam"]),
                },
            )
            for i in range(N_RUNS)
        ]
        insert_runs(db, self.experiment, self.rows)
        if db.dialect == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("ANALYZE runs, params, latest_metrics, tags")

    def expected(self) -> list[str]:
        matching = [
            r for r in self.rows if r.params["model"] == "rf" and int(r.params["depth"]) >= 10 and r.metrics["m1"] > 0.5
        ]
        matching.sort(key=lambda r: r.id)
        matching.sort(key=lambda r: r.start_time, reverse=True)
        matching.sort(key=lambda r: r.metrics["m0"], reverse=True)
        return [r.id for r in matching[:100]]


_BIG: dict[str, Big] = {}


@pytest.fixture
def big(db: Database) -> Big:
    if db.dialect not in _BIG:
        _BIG[db.dialect] = Big(db)
    return _BIG[db.dialect]


def test_first_page_of_ten_thousand_runs(db: Database, big: Big) -> None:
    query = build_search_query([big.experiment], FILTER, ORDER).limit(100)
    timings = []
    with db.read() as conn:
        for _ in range(5):
            started = time.perf_counter()
            found = list(conn.execute(query).scalars())
            timings.append(time.perf_counter() - started)
    assert found == big.expected()
    median = statistics.median(timings)
    print(f"\n{db.dialect}: {N_RUNS} runs, first 100 of {FILTER!r} by {ORDER}: median {median * 1000:.1f} ms")
    assert median < BOUND_SECONDS


def test_sqlite_plan_uses_the_indexes(sqlite_db: Database) -> None:
    big = _BIG.get("sqlite") or _BIG.setdefault("sqlite", Big(sqlite_db))
    query = build_search_query([big.experiment], FILTER, ORDER).limit(100)
    with sqlite_db.read() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(row[-1] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql))
    assert "SEARCH params USING INDEX ix_params_key (key=?)" in plan, plan
    assert "SEARCH latest_metrics USING INDEX ix_latest_metrics_key_value (key=? AND value>?)" in plan, plan
    assert "SEARCH order_0 USING INDEX sqlite_autoindex_latest_metrics_1 (run_id=? AND key=?)" in plan, plan
    assert "SEARCH runs USING INDEX ix_runs_experiment_id_start_time (experiment_id=?)" in plan, plan
    assert "SCAN" not in plan, plan


def test_postgresql_plan_uses_the_indexes(pg_db: Database) -> None:
    big = _BIG.get("postgresql") or _BIG.setdefault("postgresql", Big(pg_db))
    query = build_search_query([big.experiment], FILTER, ORDER).limit(100)
    with pg_db.read() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "Seq Scan on params" not in plan, plan
    assert "Seq Scan on latest_metrics" not in plan, plan
