"""10,000 runs with 5 params and 5 metrics each: a params+metrics filter ordered by a metric, first page.

The searched experiment holds the 10,000 runs; on SQLite another experiment holds 10,000 more with
the same keys, to show the cost follows the runs searched, not the store. On a (busy, 2-core)
development machine the query takes 35-50 ms on SQLite — most of it ordering by a metric, one
primary-key probe per run, bound by SQLite's default 2 MB page cache (~28 ms with a 64 MB one) — and
20-35 ms on PostgreSQL after ANALYZE. The bound asserted here is loose so a busy CI machine does not
flake, yet far below what a plan without the indexes costs.
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


def make_runs(experiment: str, rnd: random.Random) -> list[RunRow]:
    return [
        RunRow(
            f"{experiment[:16]}{i:08d}",
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


class Big:
    def __init__(self, db: Database):
        rnd = random.Random(7)
        if db.dialect == "sqlite":
            noise = new_experiment(db)
            insert_runs(db, noise, make_runs(noise, rnd))
        self.experiment = new_experiment(db)
        self.rows = make_runs(self.experiment, rnd)
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
    # One primary-key probe per run of the experiment for each condition and for the order.
    assert "SEARCH runs USING INDEX ix_runs_experiment_id_start_time (experiment_id=?)" in plan, plan
    assert plan.count("CORRELATED SCALAR SUBQUERY") == 3, plan
    assert plan.count("SEARCH params USING INDEX sqlite_autoindex_params_1 (run_id=? AND key=?)") == 2, plan
    assert "SEARCH latest_metrics USING INDEX sqlite_autoindex_latest_metrics_1 (run_id=? AND key=?)" in plan, plan
    assert "SEARCH order_0 USING INDEX sqlite_autoindex_latest_metrics_1 (run_id=? AND key=?)" in plan, plan
    assert "SCAN" not in plan, plan


def test_postgresql_plan_uses_the_indexes(pg_db: Database) -> None:
    big = _BIG.get("postgresql") or _BIG.setdefault("postgresql", Big(pg_db))
    query = build_search_query([big.experiment], FILTER, ORDER).limit(100)
    with pg_db.read() as conn:
        sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql))
    assert "Seq Scan on params" not in plan, plan
    assert "Seq Scan on latest_metrics" not in plan, plan
