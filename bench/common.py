"""What both workload scripts share: arguments, deterministic data and the one-line JSON result.

This file is imported by ``workloads_shipyard.py`` (project venv) and ``workloads_mlflow.py``
(benchmark venv), so it uses the standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any

WORKLOADS = ("per_call", "batched", "search", "registry")

METRIC_KEYS = ("loss", "accuracy", "precision", "recall", "f1")
MODEL_KINDS = ("rf", "lr", "svm", "gb", "knn")
SEARCH_FILTER_VALUE = 0.9
SEARCH_MODEL = "rf"
SEARCH_ORDER_KEY = "accuracy"
SEARCH_PAGE = 100
EXPERIMENT = "bench"
MODEL_NAME = "bench-model"
ALIAS = "champion"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run one benchmark workload and print one JSON line.")
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("--home", required=True, help="empty directory for this tool's store and artifacts")
    parser.add_argument("--variant", default="default", help="tool-specific variant (mlflow: async, no-infer)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=200, help="points per log_batch call")
    parser.add_argument("--search-runs", type=int, default=10_000)
    parser.add_argument("--search-repeat", type=int, default=7, help="timed search calls (median reported)")
    parser.add_argument("--versions", type=int, default=100)
    args = parser.parse_args(argv)
    if args.metrics > len(METRIC_KEYS):
        parser.error(f"--metrics is at most {len(METRIC_KEYS)}")
    return args


def metric_keys(n: int) -> tuple[str, ...]:
    return METRIC_KEYS[:n]


def step_values(steps: int, n_keys: int) -> list[list[float]]:
    """values[step][key_index]: smooth deterministic curves, computed before any timing."""
    return [[0.5 + 0.4 * math.sin(0.01 * step + k) for k in range(n_keys)] for step in range(steps)]


def search_rows(n: int, seed: int = 42) -> Iterator[tuple[dict[str, str], dict[str, float]]]:
    """The same ``n`` runs (5 params, 5 metrics each) for both tools."""
    rng = random.Random(seed)
    for i in range(n):
        params = {
            "model": MODEL_KINDS[rng.randrange(len(MODEL_KINDS))],
            "max_depth": str(rng.randint(2, 16)),
            "n_estimators": str(rng.choice((50, 100, 200, 400))),
            "learning_rate": f"{rng.choice((0.001, 0.01, 0.1, 0.3))}",
            "seed": str(i),
        }
        metrics = {
            "accuracy": round(rng.uniform(0.5, 1.0), 6),
            "loss": round(rng.uniform(0.0, 2.0), 6),
            "precision": round(rng.uniform(0.4, 1.0), 6),
            "recall": round(rng.uniform(0.4, 1.0), 6),
            "f1": round(rng.uniform(0.4, 1.0), 6),
        }
        yield params, metrics


def expected_search(n: int) -> list[float]:
    """The accuracies the search must return, best first (the check that both tools answer alike)."""
    hits = [
        m[SEARCH_ORDER_KEY]
        for p, m in search_rows(n)
        if m[SEARCH_ORDER_KEY] > SEARCH_FILTER_VALUE and p["model"] == SEARCH_MODEL
    ]
    return sorted(hits, reverse=True)[:SEARCH_PAGE]


def registry_models(n: int) -> tuple[list[Any], Any]:
    """``n`` distinct fitted LogisticRegressions (different C, so different bytes) and the data."""
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(n_samples=200, n_features=10, random_state=0)
    models = [LogisticRegression(C=0.05 * (i + 1), max_iter=500).fit(X, y) for i in range(n)]
    return models, X


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def median(values: list[float]) -> float:
    return statistics.median(values)


def versions(*dists: str) -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in dists:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def emit(result: dict[str, Any]) -> None:
    """The one JSON line the driver reads (last line of stdout)."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True), flush=True)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
