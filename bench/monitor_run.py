"""A whole monitor run on a large window: time and memory of ``run_monitor`` as the window grows.

    .venv/bin/python bench/monitor_run.py [--rows 100000,1000000] [--repeat 3]

For each size N, a child process (fresh store in ``bench/.work/monitor-run-N``):

1. registers a model trained on 200,000 reference rows of the monitoring benchmark's generator
   (``monitoring_workloads.py``: 20 numeric + 5 categorical columns, 6 of them shifted in the current
   data), logged as a dataset so the monitor finds it in the model's lineage;
2. logs N current rows as batch predictions inside one hour, with labels for 10 % of them;
3. creates a monitor (hourly window, segments by ``c0``) and times ``run_monitor`` — streaming the
   window from the prediction log in 100,000-row batches into the accumulators, drift, performance,
   estimate, concept and multivariate checks, storing the window — and the peak RSS it added
   (VmHWM reset before the run via ``/proc/self/clear_refs``).

Memory should stay nearly flat as N grows ten-fold: what a run keeps is bounded (profile, a 20,000-row
sample, the labelled rows, 4 bytes of latency per row). Prints one JSON line per run and a summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
WORK = BENCH / ".work"
PYTHON = BENCH.parent / ".venv" / "bin" / "python"
HOUR = 3_600_000


def _vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(rows: int) -> dict:
    import shutil

    import monitoring_workloads as mw
    import numpy as np
    import pandas as pd
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from shipyard import Client

    home = WORK / f"monitor-run-{rows}"
    shutil.rmtree(home, ignore_errors=True)
    data_dir = mw.ensure_data(max(rows, 200_000), log=lambda message: None)
    reference = pd.read_parquet(data_dir / "reference.parquet").head(200_000)
    current = pd.read_parquet(data_dir / "current.parquet").head(rows)
    reference["target"] = (reference["f0"] > reference["f0"].median()).astype(int)
    client = Client(home=home)
    data = client.log_dataset(reference, "reference")
    model = make_pipeline(SimpleImputer(), StandardScaler(), LogisticRegression(max_iter=500)).fit(
        reference[mw.NUMERIC], reference["target"]
    )

    class Numeric:  # the model reads the numeric columns of whatever frame it is given
        def __init__(self, fitted):
            self.fitted = fitted
            self.classes_ = fitted.classes_

        def predict(self, frame):
            return self.fitted.predict(frame[mw.NUMERIC])

        def predict_proba(self, frame):
            return self.fitted.predict_proba(frame[mw.NUMERIC])

    client.register_model(
        Numeric(model), "bench", data_refs=[data.ref], input_example=reference.drop(columns=["target"]).head(3)
    )
    start = (1_700_000_000_000 // HOUR) * HOUR
    current["prediction"] = model.predict(current[mw.NUMERIC])
    current["ts"] = start + np.sort(np.random.default_rng(0).integers(0, HOUR, rows))
    truth = (current["f0"] > reference["f0"].median() + 0.3).astype(int)
    ids = client.log_predictions(current, "bench/1", timestamp_column="ts")
    labelled = slice(0, rows, 10)
    client.record_labels(dict(zip(ids[labelled], truth.iloc[labelled].tolist(), strict=True)))
    client.create_monitor("bench", model="bench/1", window="1h", segment_by=["c0"])
    del reference, current, truth, ids
    import gc

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        method = "VmHWM after clear_refs"
    except OSError:
        method = "VmHWM (not reset)"
    baseline = _vm("VmRSS")
    began = time.perf_counter()
    run = client.run_monitor("bench", now=start + HOUR + 60_000)
    seconds = time.perf_counter() - began
    extra = _vm("VmHWM") - baseline
    window = next(w for w in run.windows if w.segment == "")
    client.close()
    return {
        "rows": rows,
        "seconds": seconds,
        "extra_mb": extra,
        "memory_method": method,
        "drifted": window.metrics["drift"]["drifted"],
        "labelled": window.labelled,
        "segments": len([w for w in run.windows if w.segment]),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(BENCH))
        print(json.dumps(child(args.child)))
        return
    results: dict[int, list[dict]] = {}
    for _ in range(args.repeat):
        for rows in [int(r) for r in args.rows.split(",")]:
            out = subprocess.run(
                [str(PYTHON), __file__, "--child", str(rows)], check=True, capture_output=True, text=True
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            print(json.dumps(result), file=sys.stderr)
            results.setdefault(rows, []).append(result)
    print(f"{'rows':>10} {'run s (median)':>15} {'extra MB (median)':>18}  drifted")
    for rows, runs in results.items():
        print(
            f"{rows:>10} {statistics.median(r['seconds'] for r in runs):>15.2f} "
            f"{statistics.median(r['extra_mb'] for r in runs):>18.0f}  {runs[0]['drifted']}"
        )


if __name__ == "__main__":
    main()
