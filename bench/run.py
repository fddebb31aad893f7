"""Shipyard vs MLflow on the same machine, each on its embedded default store.

    python bench/run.py [--repeat 3] [--quick] [--only per_call,search] [size flags]
    python bench/run.py --only snapshot [--repeat 5] [--data-profile]     # dataset snapshots vs DVC

Creates (once) ``bench/.venv-mlflow`` with the pins of ``bench/requirements-mlflow.txt`` (MLflow is
never a project dependency), then runs every workload ``--repeat`` times per tool as child
processes, alternating which tool goes first, each child on a fresh store in ``bench/.work``
(the search workload's populated store is reused across repeats of the same tool). Prints a table of
medians and ratios to stdout, progress to stderr, and writes everything to
``bench/.work/results.json``. See docs/benchmarks.md.

Workload ``snapshot`` (dataset snapshots against DVC and ``sha256sum``) is driven by
``bench/data_workloads.py``, with DVC in ``bench/.venv-dvc`` (``bench/requirements-dvc.txt``); its
results go under ``"data"`` in the same JSON file.

Workload ``serving`` (single-row HTTP inference: ``shipyard serve`` vs ``mlflow models serve`` and a
minimal Starlette floor, load from ``wrk``) is driven by ``bench/serving_workloads.py``; it is not in
the default selection (``--only serving``), and its results go under ``"serving"``. The same run
measures routing: an endpoint mid-canary (90/10) and one with a shadow rollout, against the
single-version endpoint, plus ``Router.choose`` per call in-process.

Workload ``monitoring`` (drift detection: Shipyard's ``detect_drift`` vs Evidently's
``DataDriftPreset`` on the same Parquet files, plus Shipyard's streaming profile updates) is driven by
``bench/monitoring_workloads.py``, with Evidently in ``bench/.venv-evidently``
(``bench/requirements-evidently.txt``); it is not in the default selection (``--only monitoring``),
and its results go under ``"monitoring"``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import data_workloads
import monitoring_workloads
import serving_workloads

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
MLFLOW_VENV = BENCH / ".venv-mlflow"
REQUIREMENTS = BENCH / "requirements-mlflow.txt"
SHIPYARD_PYTHON = ROOT / ".venv" / "bin" / "python"

# workload -> (what is reported, higher is better?, target ratio, description)
WORKLOADS = {
    "per_call": ("points/s", True, 100.0, "per-call log_metric"),
    "batched": ("points/s", True, 10.0, "log_batch"),
    "search": ("s (median)", False, 10.0, "search_runs"),
    "registry": ("s (total)", False, 3.0, "register + alias + load"),
}
# extra rows (no target of their own): an MLflow variant is compared with Shipyard's default, a
# Shipyard variant with MLflow's default
VARIANTS = {
    "per_call": [("mlflow", "async"), ("mlflow", "async-buffered")],
    "batched": [("shipyard", "sync")],
    "registry": [("mlflow", "no-infer")],
}

FULL = {
    "runs": 50,
    "metrics": 5,
    "steps": 200,
    "batch": 200,
    "search_runs": 10_000,
    "search_repeat": 7,
    "versions": 100,
}
QUICK = {"runs": 5, "metrics": 5, "steps": 40, "batch": 200, "search_runs": 500, "search_repeat": 5, "versions": 5}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="processes per tool and workload (median reported)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", default="", help="comma-separated workloads (default: all)")
    parser.add_argument(
        "--variants",
        default=",".join(v for vs in VARIANTS.values() for _, v in vs),
        help="extra MLflow rows to run (default: %(default)s; empty for none)",
    )
    parser.add_argument("--no-variants", action="store_true", help="same as --variants ''")
    parser.add_argument("--runs", type=int, help="runs for per_call/batched (50)")
    parser.add_argument("--metrics", type=int, help="metric keys per run (5)")
    parser.add_argument("--steps", type=int, help="steps per metric (200)")
    parser.add_argument("--batch", type=int, help="points per log_batch call (200)")
    parser.add_argument("--search-runs", type=int, help="runs to populate for search (10000)")
    parser.add_argument("--search-repeat", type=int, help="timed search calls per process (7)")
    parser.add_argument("--versions", type=int, help="model versions to register (100)")
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="measure Shipyard as committed at HEAD (a copy of src/ in bench/.work), not the working tree",
    )
    parser.add_argument("--keep", action="store_true", help="keep the stores in bench/.work")
    parser.add_argument("--output", default=str(WORK / "results.json"))
    data_workloads.add_arguments(parser)
    serving_workloads.add_arguments(parser)
    monitoring_workloads.add_arguments(parser)
    args = parser.parse_args()
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        value = getattr(args, key)
        if value is not None:
            sizes[key] = value
    args.sizes = sizes
    args.workloads = [w.strip() for w in args.only.split(",") if w.strip()] or [
        *WORKLOADS,
        *data_workloads.WORKLOADS,
    ]
    unknown = set(args.workloads) - set(WORKLOADS) - set(data_workloads.WORKLOADS) - set(serving_workloads.WORKLOADS)
    unknown -= set(monitoring_workloads.WORKLOADS)
    if unknown:
        parser.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    args.variants = [] if args.no_variants else [v.strip() for v in args.variants.split(",") if v.strip()]
    known = {v for vs in VARIANTS.values() for _, v in vs}
    if set(args.variants) - known:
        parser.error(f"unknown variants: {', '.join(sorted(set(args.variants) - known))}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def ensure_mlflow_venv() -> Path:
    """Create bench/.venv-mlflow with the pinned MLflow once; a stamp holds the requirements' hash."""
    python = MLFLOW_VENV / "bin" / "python"
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = MLFLOW_VENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    log(f"creating {MLFLOW_VENV.relative_to(ROOT)} from {REQUIREMENTS.name} (once; a few minutes)")
    base = _base_python()
    if not python.exists():
        subprocess.run([base, "-m", "venv", str(MLFLOW_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest + "\n")
    return python


def _base_python() -> str:
    """The interpreter the project venv was made from (same Python version for both tools)."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return base if Path(base).exists() else sys.executable


def snapshot_src() -> tuple[Path, str]:
    """Extract src/ as committed at HEAD into bench/.work/snapshot-SHA/ (once) and return it with the SHA.

    Shipyard children then import it through PYTHONPATH (ahead of the editable install), so commits
    or edits made while a long run is going on do not change what is measured halfway through.
    """
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    sha = sha.stdout.strip()
    dest = WORK / f"snapshot-{sha[:12]}"
    if not (dest / "src" / "shipyard" / "__init__.py").exists():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, "src"], cwd=ROOT, capture_output=True, check=True
        )
        partial = WORK / f".snapshot-{sha[:12]}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(partial, filter="data")
        shutil.rmtree(dest, ignore_errors=True)
        partial.rename(dest)
    return dest / "src", sha


def child_env(pythonpath: Path | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    env["DO_NOT_TRACK"] = "true"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def size_flags(sizes: dict[str, int]) -> list[str]:
    flags = []
    for key, value in sizes.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    return flags


class Runner:
    def __init__(self, args: argparse.Namespace, mlflow_python: Path, shipyard_src: Path | None = None):
        self.args = args
        self.shipyard_src = shipyard_src
        self.pythons = {"shipyard": SHIPYARD_PYTHON, "mlflow": mlflow_python}
        self.scripts = {"shipyard": BENCH / "workloads_shipyard.py", "mlflow": BENCH / "workloads_mlflow.py"}
        self.session = Path(tempfile.mkdtemp(prefix="session-", dir=WORK))
        self.logs = self.session / "logs"
        self.logs.mkdir()
        self.search_homes: dict[tuple[str, str], Path] = {}
        self.count = 0

    def home_for(self, tool: str, workload: str) -> Path:
        if workload == "search":  # population is slow and not timed: populate once per tool, reuse
            home = self.search_homes.get((tool, workload))
            if home is None:
                home = self.search_homes[(tool, workload)] = self.session / f"{tool}-search"
                home.mkdir()
            return home
        return Path(tempfile.mkdtemp(prefix=f"{tool}-{workload}-", dir=self.session))

    def run(self, tool: str, variant: str, workload: str) -> dict:
        self.count += 1
        home = self.home_for(tool, workload)
        command = [
            str(self.pythons[tool]),
            str(self.scripts[tool]),
            workload,
            "--home",
            str(home),
            "--variant",
            variant,
            *size_flags(self.args.sizes),
        ]
        label = tool if variant == "default" else f"{tool}[{variant}]"
        log_path = self.logs / f"{self.count:03d}-{label}-{workload}.log"
        start = time.perf_counter()
        with open(log_path, "w") as stderr:
            env = child_env(self.shipyard_src if tool == "shipyard" else None)
            proc = subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
        wall = time.perf_counter() - start
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"{label} {workload} failed (exit {proc.returncode}); log {log_path}:\n{tail}")
        result = json.loads(lines[-1])
        result["process_wall_seconds"] = wall
        if workload != "search" and not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)
        return result

    def cleanup(self) -> None:
        if not self.args.keep:
            for home in self.search_homes.values():
                shutil.rmtree(home, ignore_errors=True)


def headline(result: dict, workload: str) -> float:
    return result["rate"] if WORKLOADS[workload][1] else result["seconds"]


def fmt(value: float, unit: str) -> str:
    if unit == "points/s":
        return f"{value:,.0f}"
    return f"{value * 1000:,.1f} ms" if value < 1 else f"{value:,.2f} s"


def machine() -> dict:
    info = {"nproc": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in lscpu.splitlines():
            if line.startswith("Model name:"):
                info["cpu"] = line.split(":", 1)[1].strip()
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            info["memory_kb"] = int(f.readline().split()[1])
    except OSError:
        pass
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, text=True)
        info["shipyard_commit"] = head.stdout.strip() + ("+dirty src" if dirty.stdout.strip() else "")
    except OSError:
        pass
    info["openblas_env"] = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    return info


def main() -> int:
    args = parse_args()
    WORK.mkdir(exist_ok=True)
    if not SHIPYARD_PYTHON.exists():
        log("project venv missing: run `make test` or `make bench` first")
        return 2
    data_selected = [w for w in args.workloads if w in data_workloads.WORKLOADS]
    serving_selected = [w for w in args.workloads if w in serving_workloads.WORKLOADS]
    monitoring_selected = [w for w in args.workloads if w in monitoring_workloads.WORKLOADS]
    args.workloads = [w for w in args.workloads if w in WORKLOADS]
    needs_mlflow = args.workloads or serving_selected
    mlflow_python = ensure_mlflow_venv() if needs_mlflow else MLFLOW_VENV / "bin" / "python"
    shipyard_src = None
    host = machine()  # before the run: the commit measured
    if args.snapshot:
        shipyard_src, sha = snapshot_src()
        host["shipyard_commit"] = f"{sha[:12]} (snapshot)"
        log(f"measuring Shipyard as committed at {sha[:12]} ({shipyard_src.relative_to(ROOT)})")
    runner = Runner(args, mlflow_python, shipyard_src)
    selected = ", ".join(args.workloads + data_selected + serving_selected + monitoring_selected)
    sizes = args.sizes if args.workloads else data_workloads.sizes_from(args)
    if monitoring_selected and not args.workloads and not data_selected:
        sizes = monitoring_workloads.sizes_from(args)
    log(f"sizes {sizes}; repeat {args.repeat}; workloads {selected}; stores in {runner.session}")
    raw: dict[str, dict[str, list[dict]]] = {}
    data = serving = monitoring = None
    started = time.time()
    try:
        for workload in args.workloads:
            contenders = [("shipyard", "default"), ("mlflow", "default")]
            contenders += [(tool, v) for tool, v in VARIANTS.get(workload, []) if v in args.variants]
            per = raw.setdefault(workload, {})
            for r in range(args.repeat):
                order = contenders if r % 2 == 0 else contenders[::-1]
                for tool, variant in order:
                    label = tool if variant == "default" else f"{tool}[{variant}]"
                    log(f"{workload} #{r + 1}/{args.repeat}: {label} ...")
                    result = runner.run(tool, variant, workload)
                    per.setdefault(label, []).append(result)
                    unit = WORKLOADS[workload][0].split()[0]
                    shown = fmt(headline(result, workload), unit) + (" points/s" if unit == "points/s" else "")
                    log(f"{workload} #{r + 1}/{args.repeat}: {label} {shown}")
        if data_selected:
            data = data_workloads.run(args, child_env(shipyard_src), runner.session / "data", log)
        if serving_selected:
            serving = serving_workloads.run(
                args, child_env(shipyard_src), mlflow_python, runner.session / "serving", log
            )
        if monitoring_selected:
            monitoring = monitoring_workloads.run(args, child_env(shipyard_src), runner.session / "monitoring", log)
    finally:
        runner.cleanup()
    summary = summarize(raw)
    out = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "duration_seconds": time.time() - started,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "sizes": args.sizes,
        "repeat": args.repeat,
        "machine": host,
        "versions": {label: rs[0]["versions"] for per in raw.values() for label, rs in per.items()},
        "summary": summary,
        "raw": raw,
    }
    if data is not None:
        out["data"] = data
        out["versions"].update(data["versions"])
    if serving is not None:
        out["serving"] = serving
    if monitoring is not None:
        out["monitoring"] = monitoring
        out["versions"].update(monitoring["versions"])
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(out, indent=2, sort_keys=True))
    if summary:
        print(table(summary, args))
    if data is not None:
        print(("\n" if summary else "") + data_workloads.table(data))
    if serving is not None:
        print(("\n" if summary or data is not None else "") + serving_workloads.table(serving))
    if monitoring is not None:
        earlier = summary or data is not None or serving is not None
        print(("\n" if earlier else "") + monitoring_workloads.table(monitoring))
    log(f"wrote {args.output} ({out['duration_seconds']:.0f}s in all)")
    return 0


def summarize(raw: dict[str, dict[str, list[dict]]]) -> list[dict]:
    rows = []
    for workload, per in raw.items():
        unit, higher, target, what = WORKLOADS[workload]
        pairs = [("shipyard", "mlflow")]
        pairs += [("shipyard", label) for label in per if label.startswith("mlflow[")]
        pairs += [(label, "mlflow") for label in per if label.startswith("shipyard[")]
        for mine, theirs in pairs:
            ship = statistics.median(headline(r, workload) for r in per[mine])
            other = statistics.median(headline(r, workload) for r in per[theirs])
            ratio = ship / other if higher else other / ship
            rows.append(
                {
                    "workload": workload,
                    "what": what,
                    "unit": unit,
                    "label": mine,
                    "versus": theirs,
                    "shipyard": ship,
                    "other": other,
                    "ratio": ratio,
                    "target": target,
                    "met": ratio >= target,
                    "primary": (mine, theirs) == ("shipyard", "mlflow"),
                    "correct": all(_checked(r) for r in per[mine] + per[theirs]),
                    "shipyard_all": [headline(r, workload) for r in per[mine]],
                    "other_all": [headline(r, workload) for r in per[theirs]],
                }
            )
    return rows


def _checked(result: dict) -> bool:
    return result.get("correct", result.get("stored") == result.get("points"))


def table(rows: list[dict], args: argparse.Namespace) -> str:
    head = ["workload", "unit", "compared", "Shipyard", "MLflow", "speedup", "target", "met", "checked"]
    body = []
    for row in rows:
        unit = row["unit"].split()[0]
        body.append(
            [
                row["what"],
                row["unit"],
                f"{row['label']} vs {row['versus']}",
                fmt(row["shipyard"], unit),
                fmt(row["other"], unit),
                f"{row['ratio']:,.1f}x",
                f">= {row['target']:g}x" if row["primary"] else "(extra)",
                ("yes" if row["met"] else "NO") if row["primary"] else "",
                "ok" if row["correct"] else "MISMATCH",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = [
        f"Medians of {args.repeat} processes per tool; speedup = how many times faster Shipyard is "
        "(throughput ratio, or MLflow time / Shipyard time).",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)) for line in body]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
