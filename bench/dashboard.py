"""What the dashboard costs: comparing runs with long metric series, and every page on the demo store.

    .venv/bin/python bench/dashboard.py [--repeat 3] [--points 150000] [--requests 15] [--no-mlflow]

``compare``
    Two runs, each with a ``loss`` series of ``--points`` steps. Shipyard: ``shipyard server``
    (1 worker, SQLite, auth on, pinned to core 0) answering ``GET /runs/compare?ids=A,B`` — the whole
    HTML page with both series downsampled on the server (M4: each bucket's first, min, max, last;
    2,000 points a series). MLflow 3.17.2 (``mlflow server``, 1 worker, SQLite, core 0), the same data
    logged through its REST API, answering what its run-comparison chart requests:
    ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=A&run_ids=B&metric_key=loss``
    (its server-side sampling, 320 points a run, evenly spaced — a spike between samples is lost), and
    the full histories (``metrics/get-history`` per run, every page) that a full-fidelity chart needs.
    Requests are sequential from this process (core 1); medians of ``--requests`` after a warm-up.
``pages``
    Every dashboard page on a store filled by ``shipyard demo``: median latency of ``--requests``
    sequential GETs each (no anchor: MLflow has no such pages).

Prints a summary; writes everything to ``bench/.work/dashboard.json``. Medians over ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import governance as g  # noqa: E402 - the server/process helpers shared with the governance bench

MLFLOW_SAMPLES = 320  # what MLflow's UI asks get-history-bulk-interval for


def timed_get(url: str, headers: dict[str, str], requests: int) -> dict[str, Any]:
    """Median and spread of ``requests`` sequential GETs (after two warm-ups), and the body size."""
    times: list[float] = []
    size = 0
    body = b""
    for index in range(requests + 2):
        request = urllib.request.Request(url, headers=headers)
        began = time.perf_counter()
        with urllib.request.urlopen(request, timeout=120) as response:
            body = response.read()
            if response.status != 200:
                raise RuntimeError(f"{url} answered {response.status}")
        if index >= 2:
            times.append((time.perf_counter() - began) * 1000)
        size = len(body)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "bytes": size, "body": body}


def series(points: int, seed: int) -> list[float]:
    """A noisy decaying loss with one spike, so a sampler that skips it shows."""
    values = [2.0 * math.exp(-i / (points / 5)) + 0.05 * math.sin(i * 0.37 + seed) for i in range(points)]
    values[points // 2 + 17 * seed] = 9.0
    return values


# --------------------------------------------------------------------------------------------------


def shipyard_server(home: Path, log_path: Path) -> g.Server:
    """``shipyard server`` over ``home`` (1 worker, auth on, no background loops), pinned to core 0."""
    port = g.free_port()
    command = [str(g.SHIPYARD), "--home", str(home), "server", "--port", str(port), "--log-level", "warning"]
    return g.Server("shipyard", [*command, "--no-monitors", "--no-events"], g.clean_env(), log_path, port)


def shipyard_compare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from shipyard import Client
    from shipyard.core.settings import Settings
    from shipyard.governance.bootstrap import issue_admin_token

    home = work / "shipyard-compare"
    client = Client("", home=home)
    client.create_experiment("bench")
    run_ids = []
    for seed in (1, 2):
        run = client.create_run("bench", name=f"run-{seed}")
        values = series(args.points, seed)
        client.log_batch(run.id, [("loss", v, i) for i, v in enumerate(values)], synchronous=True)
        client.end_run(run.id)
        run_ids.append(run.id)
    client.close()
    token = issue_admin_token(Settings.resolve(home=home, remote_uri=""), name="bench")
    out: list[dict[str, Any]] = []
    for repeat in range(args.repeat):
        server = shipyard_server(home, work / f"shipyard-{repeat}.log")
        try:
            result = timed_get(
                f"{server.base}/runs/compare?ids={','.join(run_ids)}",
                {"authorization": f"Bearer {token}", "accept": "text/html"},
                args.requests,
            )
        finally:
            server.stop()
        body = result.pop("body").decode()
        result["has_spike"] = "9.0" in body or "9," in body
        result["series_points"] = _figure_points(body)
        out.append(result)
    return _medians(out)


def _figure_points(html: str) -> list[int]:
    """Points per trace in the page's embedded figures (data-figure attributes)."""
    import html as html_lib

    counts = []
    for raw in re.findall(r"data-figure='([^']*)'", html):
        figure = json.loads(html_lib.unescape(raw))
        counts += [len(trace.get("x") or []) for trace in figure.get("data", [])]
    return counts


def mlflow_compare(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import run as bench_run

    mlflow_bin = bench_run.ensure_mlflow_venv().parent / "mlflow"
    store = work / "mlflow"
    store.mkdir()
    out: dict[str, list[dict[str, Any]]] = {"bulk_interval": [], "full_history": []}
    run_ids: list[str] = []
    for repeat in range(args.repeat):
        port = g.free_port()
        command = [
            str(mlflow_bin),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{store / 'mlflow.db'}",
            "--default-artifact-root",
            str(store / "artifacts"),
            "--uvicorn-opts",
            "--no-access-log",
        ]
        env = g.clean_env(shipyard=False, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        server = g.Server("mlflow", command, env, work / f"mlflow-{repeat}.log", port)
        try:
            api = server.base + "/api/2.0/mlflow"
            if not run_ids:
                status, answer = g.http(api + "/experiments/create", body={"name": "bench"})
                experiment = answer["experiment_id"]
                for seed in (1, 2):
                    status, answer = g.http(api + "/runs/create", body={"experiment_id": experiment})
                    run_id = answer["run"]["info"]["run_id"]
                    values = series(args.points, seed)
                    for start in range(0, args.points, 1000):  # log-batch takes at most 1,000 metrics
                        batch = [
                            {"key": "loss", "value": v, "timestamp": 0, "step": start + i}
                            for i, v in enumerate(values[start : start + 1000])
                        ]
                        status, answer = g.http(api + "/runs/log-batch", body={"run_id": run_id, "metrics": batch})
                        if status != 200:
                            raise RuntimeError(f"MLflow log-batch answered {status}: {answer}")
                    run_ids.append(run_id)
            ajax = server.base + "/ajax-api/2.0/mlflow/metrics"
            query = "&".join(f"run_ids={r}" for r in run_ids)
            bulk = timed_get(
                f"{ajax}/get-history-bulk-interval?{query}&metric_key=loss&max_results={MLFLOW_SAMPLES}",
                {},
                args.requests,
            )
            metrics = json.loads(bulk.pop("body"))["metrics"]
            bulk["series_points"] = [sum(1 for m in metrics if m["run_id"] == r) for r in run_ids]
            bulk["has_spike"] = any(m["value"] == 9.0 for m in metrics)
            out["bulk_interval"].append(bulk)
            if repeat == 0:  # seconds per read: measured in the first server only
                out["full_history"].append(_full_history(ajax, run_ids, min(args.requests, 3)))
        finally:
            server.stop()
    return {name: _medians(rows) for name, rows in out.items()}


def _full_history(ajax: str, run_ids: list[str], requests: int) -> dict[str, Any]:
    times = []
    points = []
    for index in range(requests + 1):
        began = time.perf_counter()
        points = []
        for run_id in run_ids:
            count, token = 0, None
            while True:
                url = f"{ajax}/get-history?run_id={run_id}&metric_key=loss&max_results=25000"
                status, answer = g.http(url + (f"&page_token={token}" if token else ""))
                count += len(answer.get("metrics", []))
                token = answer.get("next_page_token")
                if not token:
                    break
            points.append(count)
        if index:
            times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times), "series_points": points}


def _medians(rows: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {"runs": rows}
    for key in ("median_ms", "min_ms", "bytes"):
        values = [r[key] for r in rows if key in r]
        if values:
            merged[key] = statistics.median(values)
    for key in ("series_points", "has_spike"):
        if rows and key in rows[0]:
            merged[key] = rows[0][key]
    return merged


# --------------------------------------------------------------------------------------------------


def pages_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from rich.console import Console

    from shipyard import Client
    from shipyard.core.settings import Settings
    from shipyard.demo import run_demo
    from shipyard.governance.bootstrap import issue_admin_token

    sys.path.insert(0, str(g.ROOT / "scripts"))
    from screenshots import pages

    home = work / "demo"
    g.log("running the demo for the page timings …")
    run_demo(home, console=Console(quiet=True))
    client = Client("", home=home)
    wanted = pages(client)
    client.close()
    token = issue_admin_token(Settings.resolve(home=home, remote_uri=""), name="bench")
    per_page: dict[str, list[float]] = {path: [] for _, path in wanted}
    for repeat in range(args.repeat):
        server = shipyard_server(home, work / f"pages-{repeat}.log")
        try:
            for _, path in wanted:
                result = timed_get(
                    server.base + path, {"authorization": f"Bearer {token}", "accept": "text/html"}, args.requests
                )
                per_page[path].append(result["median_ms"])
        finally:
            server.stop()
    return {path: statistics.median(values) for path, values in per_page.items()}


def summary(results: dict[str, Any]) -> str:
    lines = []
    compare = results.get("compare") or {}
    if compare:
        shipyard = compare["shipyard"]
        lines.append(f"compare 2 runs × {results['points']:,} points (medians of {results['requests']} requests):")
        lines.append(
            f"  Shipyard /runs/compare page         {shipyard['median_ms']:8.1f} ms  "
            f"{shipyard['bytes'] / 1024:8.0f} KiB  points/trace {shipyard['series_points']}"
        )
        mlflow = compare.get("mlflow") or {}
        if "bulk_interval" in mlflow:
            bulk, full = mlflow["bulk_interval"], mlflow["full_history"]
            lines.append(
                f"  MLflow get-history-bulk-interval    {bulk['median_ms']:8.1f} ms  "
                f"{bulk['bytes'] / 1024:8.0f} KiB  points/run {bulk['series_points']} "
                f"(spike kept: {bulk['has_spike']})"
            )
            lines.append(
                f"  MLflow full get-history (both runs) {full['median_ms']:8.1f} ms  points/run {full['series_points']}"
            )
            lines.append(
                f"  ratio MLflow bulk-interval / Shipyard page: {bulk['median_ms'] / shipyard['median_ms']:.2f}×;"
                f" full history / Shipyard page: {full['median_ms'] / shipyard['median_ms']:.1f}×"
            )
        elif "error" in mlflow:
            lines.append(f"  MLflow could not run: {mlflow['error']}")
    pages = results.get("pages") or {}
    if pages:
        lines.append("dashboard pages on the demo store (median ms):")
        for path, ms in pages.items():
            lines.append(f"  {ms:8.1f}  {path}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--points", type=int, default=150_000)
    parser.add_argument("--requests", type=int, default=15)
    parser.add_argument("--only", default="compare,pages")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    only = set(args.only.split(","))
    results: dict[str, Any] = {"points": args.points, "requests": args.requests, "repeat": args.repeat}
    with tempfile.TemporaryDirectory(prefix="shipyard-dashboard-bench-") as scratch:
        work = Path(scratch)
        if "compare" in only:
            g.log(f"compare: logging 2 × {args.points:,} points into Shipyard …")
            results["compare"] = {"shipyard": shipyard_compare(args, work)}
            if not args.no_mlflow:
                g.log("compare: MLflow …")
                try:
                    results["compare"]["mlflow"] = mlflow_compare(args, work)
                except Exception as exc:  # reported; Shipyard is still measured
                    results["compare"]["mlflow"] = {"error": f"{type(exc).__name__}: {exc}"}
        if "pages" in only:
            results["pages"] = pages_bench(args, work)
    results["environment"] = g.environment()
    (BENCH / ".work").mkdir(exist_ok=True)
    (BENCH / ".work" / "dashboard.json").write_text(json.dumps(results, indent=2, default=str))
    print(summary(results))


if __name__ == "__main__":
    main()
