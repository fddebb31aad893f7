"""Processes materialising the same model into the shared cache at once (Dask workers scoring
partitions do): every one gets a whole, verified directory; none fails because another won the race."""

from __future__ import annotations

import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.artifacts.trees import verify_tree


def _materialise(home: str, digest: str) -> str:
    client = Client("", home=home)
    try:
        return str(client.materialize_model(digest))
    finally:
        client.close()


def test_racing_processes_share_one_cache_entry(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    client = Client("", home=home)
    X = np.random.default_rng(0).random((50, 3))
    version = client.register_model(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), "m")
    with ProcessPoolExecutor(6) as pool:
        for _ in range(4):  # several rounds: the race is lost by some process in most of them
            paths = set(pool.map(_materialise, [home] * 12, [version.digest] * 12))
            assert len(paths) == 1
            (path,) = paths
            assert verify_tree(client.artifacts, version.digest, path) == []
            shutil.rmtree(path)
    client.close()
