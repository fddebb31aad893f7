"""The main job: `shipyard demo` runs the lifecycle end to end, and can run again on the same home."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from shipyard import Client
from shipyard.demo import MODEL_NAME, run_demo


def test_demo_runs_end_to_end_twice(tmp_path: Path) -> None:
    out = io.StringIO()
    first = run_demo(tmp_path / "home", console=Console(file=out, width=200))
    assert first["runs"] == 6
    assert first["champion_accuracy"] > 0.9
    text = out.getvalue()
    assert "champion" in text and first["digest"] in text

    client = Client(home=tmp_path / "home")
    champion = client.get_version_by_alias(MODEL_NAME, "champion")
    assert champion.version == first["version"] and champion.digest == first["digest"]
    assert champion.source_run_id == first["best_run_id"]
    best = client.get_run(first["best_run_id"])
    assert best.parent_run_id == first["parent_run_id"]
    assert best.metrics["roc_auc"] == max(
        r.metrics["roc_auc"] for r in client.search_runs(filter=f"parent_run_id = '{first['parent_run_id']}'").runs
    )
    client.close()

    second = run_demo(tmp_path / "home", console=Console(file=io.StringIO()))
    assert second["version"] == first["version"] + 1
