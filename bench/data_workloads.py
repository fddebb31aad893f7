"""Dataset snapshots: Shipyard vs DVC (``dvc add``) vs ``sha256sum`` on the same files, in one process tree.

Driven by ``bench/run.py --only snapshot`` (see docs/benchmarks.md, "Dataset snapshots vs DVC").
This module is also the child for the in-process measurements, run in the project venv::

    python bench/data_workloads.py sdk --home H --path DIR --name NAME [--profile OUT.pstats]
    python bench/data_workloads.py hashlib --path DIR

Data: ``--data-files`` files of ``--data-file-bytes`` random bytes each (deterministic seed; 1,000 x
1,000,000 = 1 GB by default), generated once under ``bench/.work/data-NxB/repo/data/``, in 10
sub-directories. ``repo/`` is also the DVC project (``dvc init --no-scm``), so ``dvc add data``
and Shipyard snapshot the very same directory.

Per repeat, each contender in turn (the order rotates between repeats), starting from an empty
store each time (DVC: a new ``.dvc`` with an empty cache and its own site cache dir; Shipyard: a new
home, so an empty object store and stat cache):

1. ``cold``: snapshot the directory;
2. ``unchanged``: snapshot it again, nothing changed;
3. ``changed``: rewrite one file with new bytes of the same size (not timed), snapshot again.

Contenders: ``dvc`` (``dvc add data``, a CLI subprocess), ``shipyard-cli`` (``shipyard --home H
data add DIR --name bench --json``, a CLI subprocess), ``shipyard-sdk`` (a fresh Python process
calls ``Client(home=H).log_dataset(DIR, name=...)`` and reports the time of that call alone), and
``sha256sum`` (one process over all files; ``xargs -P2`` with two; Python ``hashlib`` for reference).
Every timed step starts after ``sync`` so one contender's dirty pages are not written back on
another's clock; the data itself is in the page cache for everybody (read before the first repeat).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
DVC_VENV = BENCH / ".venv-dvc"
DVC_REQUIREMENTS = BENCH / "requirements-dvc.txt"
SHIPYARD_PYTHON = ROOT / ".venv" / "bin" / "python"
SHIPYARD_CLI = ROOT / ".venv" / "bin" / "shipyard"

WORKLOADS = {"snapshot": "dataset snapshots vs DVC (cold, unchanged, one file changed) and sha256sum"}
FULL = {"data_files": 1000, "data_file_bytes": 1_000_000}
QUICK = {"data_files": 100, "data_file_bytes": 100_000}
SEED = 20261126
SUBDIRS = 10
NAME = "bench"
STEPS = ("cold", "unchanged", "changed")
SNAPSHOTTERS = ("dvc", "shipyard-cli", "shipyard-sdk")
CONTENDERS = (*SNAPSHOTTERS, "sha256sum")
# step -> (target, kind): ratio = DVC time / Shipyard time must reach it; seconds = Shipyard time must not exceed it
TARGETS = {"cold": (3.0, "ratio"), "unchanged": (0.2, "seconds"), "changed": (0.5, "seconds")}
HASH_TARGET = 2.0  # Shipyard's cold-snapshot throughput within 2x of sha256sum's


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("snapshot workload (dataset snapshots vs DVC)")
    group.add_argument("--data-files", type=int, help="files in the dataset (1000; --quick 100)")
    group.add_argument("--data-file-bytes", type=int, help="bytes per file (1000000; --quick 100000)")
    group.add_argument(
        "--data-contenders",
        default=",".join(CONTENDERS),
        help="which of %(default)s to run (default: all)",
    )
    group.add_argument(
        "--data-profile",
        action="store_true",
        help="after the timed repeats, cProfile one extra (untimed) Shipyard SDK cold/unchanged/changed sequence",
    )


def sizes_from(args: argparse.Namespace) -> dict[str, int]:
    sizes = dict(QUICK if args.quick else FULL)
    for key in sizes:
        value = getattr(args, key, None)
        if value is not None:
            sizes[key] = value
    return sizes


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment


def ensure_dvc_venv(log: Callable[[str], None] = _log) -> Path:
    """Create bench/.venv-dvc with the pinned DVC once; a stamp holds the requirements' hash."""
    dvc = DVC_VENV / "bin" / "dvc"
    python = DVC_VENV / "bin" / "python"
    digest = hashlib.sha256(DVC_REQUIREMENTS.read_bytes()).hexdigest()
    stamp = DVC_VENV / ".installed"
    if dvc.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return dvc
    log(f"creating {DVC_VENV.relative_to(ROOT)} from {DVC_REQUIREMENTS.name} (once; about a minute)")
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not python.exists():
        subprocess.run([base if Path(base).exists() else sys.executable, "-m", "venv", str(DVC_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-r", str(DVC_REQUIREMENTS)], check=True)
    stamp.write_text(digest + "\n")
    return dvc


def dvc_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DVC_", "SHIPYARD_", "PYTHON"))}
    env["DVC_NO_ANALYTICS"] = "1"
    env["DVC_STUDIO_OFFLINE"] = "1"
    env["DVC_IGNORE_ISATTY"] = "1"
    env["DVC_GLOBAL_CONFIG_DIR"] = str(scratch / "dvc-global")
    env["DVC_SYSTEM_CONFIG_DIR"] = str(scratch / "dvc-system")
    env["DVC_SITE_CACHE_DIR"] = str(scratch / "dvc-site-cache")
    return env


def shipyard_env(base: dict[str, str]) -> dict[str, str]:
    """run.py's child environment, but bytecode may be written: the CLI should start as installed, from .pyc."""
    env = dict(base)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


# --------------------------------------------------------------------------- data


def data_root(files: int, file_bytes: int) -> Path:
    return WORK / f"data-{files}x{file_bytes}"


def file_paths(data: Path, files: int) -> list[Path]:
    per = -(-files // SUBDIRS)
    return [data / f"part-{i // per:02d}" / f"file-{i:05d}.bin" for i in range(files)]


def ensure_data(files: int, file_bytes: int, log: Callable[[str], None] = _log) -> Path:
    """Generate the dataset once (random bytes from a fixed seed); returns the DVC project dir holding ``data/``."""
    root = data_root(files, file_bytes)
    repo, data = root / "repo", root / "repo" / "data"
    stamp = root / "complete.json"
    spec = {"files": files, "file_bytes": file_bytes, "seed": SEED, "subdirs": SUBDIRS}
    paths = file_paths(data, files)
    if stamp.exists() and json.loads(stamp.read_text()) == spec and all(p.stat().st_size == file_bytes for p in paths):
        return repo
    log(f"generating {files:,} files x {file_bytes:,} bytes in {data.relative_to(ROOT)} (once)")
    shutil.rmtree(root, ignore_errors=True)
    for i, path in enumerate(paths):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(random.Random(SEED * 1_000_003 + i).randbytes(file_bytes))
    stamp.write_text(json.dumps(spec))
    os.sync()
    return repo


def warm_page_cache(paths: list[Path]) -> None:
    for path in paths:
        with open(path, "rb") as f:
            while f.read(1 << 20):
                pass


def rewrite_one(path: Path) -> None:
    """New bytes of the same size, derived from the old ones (so always different, still deterministic)."""
    old = path.read_bytes()
    new = random.Random(hashlib.sha256(old).digest()).randbytes(len(old))
    with open(path, "r+b") as f:  # in place: same inode, new mtime/ctime
        f.write(new)


# --------------------------------------------------------------------------- contenders


class DataRunner:
    def __init__(self, args: argparse.Namespace, base_env: dict[str, str], session: Path, log: Callable[[str], None]):
        self.args = args
        self.sizes = sizes_from(args)
        self.log = log
        self.session = session
        self.logs = session / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ship_env = shipyard_env(base_env)
        self.dvc_env = dvc_env(session)
        self.count = 0
        self.flushed = 0.0

    def _run(self, label: str, command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
        """Run one timed subprocess (after ``sync``); (wall seconds, stdout).

        The ``sync`` after it is timed too (``self.flushed``): how long the kernel then took to write
        what the step left in the page cache (Shipyard fsyncs its objects; DVC does not).
        """
        self.count += 1
        log_path = self.logs / f"{self.count:03d}-{label}.log"
        os.sync()
        with open(log_path, "w") as stderr:
            start = time.perf_counter()
            proc = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
            wall = time.perf_counter() - start
        if proc.returncode != 0:
            tail = log_path.read_text()[-3000:]
            raise RuntimeError(f"{label} failed (exit {proc.returncode}): {' '.join(command)}\n{tail}")
        start = time.perf_counter()
        os.sync()
        self.flushed = time.perf_counter() - start
        return wall, proc.stdout

    # ---- DVC

    def dvc(self, repo: Path, changed_file: Path) -> dict:
        dvc = str(DVC_VENV / "bin" / "dvc")
        self._dvc_reset(repo)
        subprocess.run([dvc, "init", "--no-scm", "-q"], cwd=repo, env=self.dvc_env, check=True)
        for key, value in (("core.analytics", "false"), ("core.check_update", "false")):
            subprocess.run([dvc, "config", key, value], cwd=repo, env=self.dvc_env, check=True)
        out: dict = {"steps": {}}
        for step in STEPS:
            if step == "changed":
                rewrite_one(changed_file)
            wall, _ = self._run(f"dvc-{step}", [dvc, "add", "-q", "data"], self.dvc_env, repo)
            out["steps"][step] = {"seconds": wall, "sync_after": self.flushed, **self._dvc_out(repo)}
        out["cache_objects"] = sum(1 for p in (repo / ".dvc" / "cache").rglob("*") if p.is_file())
        self._dvc_reset(repo)
        return out

    def _dvc_reset(self, repo: Path) -> None:
        shutil.rmtree(repo / ".dvc", ignore_errors=True)
        shutil.rmtree(self.session / "dvc-site-cache", ignore_errors=True)
        for name in ("data.dvc", ".dvcignore", ".gitignore"):
            (repo / name).unlink(missing_ok=True)

    @staticmethod
    def _dvc_out(repo: Path) -> dict:
        text = (repo / "data.dvc").read_text()

        def field(key: str) -> str | None:
            m = re.search(rf"^\s*-?\s*{key}:\s*(\S+)", text, re.M)
            return m.group(1) if m else None

        return {"digest": field("md5"), "size": int(field("size") or -1), "files": int(field("nfiles") or -1)}

    # ---- Shipyard

    def shipyard(self, mode: str, data: Path, changed_file: Path, home: Path) -> dict:
        shutil.rmtree(home, ignore_errors=True)
        out: dict = {"steps": {}}
        for step in STEPS:
            if step == "changed":
                rewrite_one(changed_file)
            if mode == "cli":
                command = [str(SHIPYARD_CLI), "--home", str(home), "data", "add", str(data), "--name", NAME, "--json"]
                wall, stdout = self._run(f"shipyard-cli-{step}", command, self.ship_env, ROOT)
                result = _last_json(stdout)
                out["steps"][step] = {"seconds": wall, "sync_after": self.flushed, **_shipyard_fields(result)}
                out["steps"][step]["output"] = result
            else:
                command = [
                    str(SHIPYARD_PYTHON),
                    str(Path(__file__).resolve()),
                    "sdk",
                    "--home",
                    str(home),
                    "--path",
                    str(data),
                    "--name",
                    NAME,
                ]
                wall, stdout = self._run(f"shipyard-sdk-{step}", command, self.ship_env, ROOT)
                result = _last_json(stdout)
                out["steps"][step] = {
                    "seconds": result["call_seconds"],
                    "process_wall_seconds": wall,
                    "sync_after": self.flushed,
                    **{k: v for k, v in result.items() if k != "call_seconds"},
                }
        if not self.args.keep:
            shutil.rmtree(home, ignore_errors=True)
        return out

    def profile(self, data: Path, changed_file: Path, home: Path) -> dict:
        """One untimed SDK sequence under cProfile; the top functions by cumulative time, per step."""
        shutil.rmtree(home, ignore_errors=True)
        found = {}
        for step in STEPS:
            if step == "changed":
                rewrite_one(changed_file)
            stats = self.session / f"profile-{step}.pstats"
            command = [str(SHIPYARD_PYTHON), str(Path(__file__).resolve()), "sdk", "--home", str(home)]
            command += ["--path", str(data), "--name", NAME, "--profile", str(stats)]
            wall, stdout = self._run(f"profile-{step}", command, self.ship_env, ROOT)
            result = _last_json(stdout)
            found[step] = {"call_seconds": result["call_seconds"], "pstats": str(stats), "top": result.get("top", [])}
        shutil.rmtree(home, ignore_errors=True)
        return found

    # ---- hashing references

    def hashing(self, data: Path, paths: list[Path]) -> dict:
        rel = [str(p.relative_to(data)) for p in paths]
        single, _ = self._run("sha256sum", ["sha256sum", *rel], os.environ.copy(), data)
        per = -(-len(rel) // 2)
        self.count += 1
        os.sync()
        start = time.perf_counter()
        subprocess.run(
            ["xargs", "-0", "-P2", "-n", str(per), "sha256sum"],
            input="\0".join(rel).encode(),
            cwd=data,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        parallel = time.perf_counter() - start
        command = [str(SHIPYARD_PYTHON), str(Path(__file__).resolve()), "hashlib", "--path", str(data)]
        _, stdout = self._run("hashlib", command, self.ship_env, ROOT)
        py = _last_json(stdout)
        return {"sha256sum": single, "sha256sum_p2": parallel, "hashlib": py["seconds"], "hashlib_bytes": py["bytes"]}


def _last_json(stdout: str) -> dict:
    """The whole output as one JSON document (the CLI pretty-prints), else its last one-line JSON object."""
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        pass
    lines = [line for line in stdout.splitlines() if line.startswith("{") and line.rstrip().endswith("}")]
    if lines:
        return json.loads(lines[-1])
    raise RuntimeError(f"no JSON in output: {stdout[-2000:]!r}")


def _shipyard_fields(result: dict) -> dict:
    """digest / version / file count / size from whatever shape the CLI's JSON has."""
    flat: dict = {}

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not isinstance(v, dict | list) and k not in flat:
                    flat[k] = v
            for v in value.values():
                walk(v)

    walk(result)
    pick = {
        "digest": ("digest", "tree_digest", "content_digest"),
        "version": ("version",),
        "files": ("file_count", "files", "num_files", "nfiles"),
        "size": ("size", "size_bytes", "bytes", "total_bytes"),
        "hashed_files": ("hashed_files",),
    }
    out = {}
    for key, names in pick.items():
        for name in names:
            if name in flat:
                out[key] = flat[name]
                break
    return out


# --------------------------------------------------------------------------- driver


def run(args: argparse.Namespace, base_env: dict[str, str], session: Path, log: Callable[[str], None] = _log) -> dict:
    """All repeats of every contender; returns {"sizes", "raw", "summary", "versions", ...}."""
    sizes = sizes_from(args)
    files, file_bytes = sizes["data_files"], sizes["data_file_bytes"]
    total = files * file_bytes
    ensure_dvc_venv(log)
    repo = ensure_data(files, file_bytes, log)
    data = repo / "data"
    paths = file_paths(data, files)
    runner = DataRunner(args, base_env, session, log)
    contenders = [c for c in CONTENDERS if c in getattr(args, "data_contenders", ",".join(CONTENDERS)).split(",")]
    log(f"snapshot: {files:,} files, {total / 1e9:.3f} GB; repeat {args.repeat}; scratch in {session}")
    warm_page_cache(paths)
    # Warm-up, untimed: both CLIs once (page cache of their code; Shipyard writes its .pyc files).
    subprocess.run([str(DVC_VENV / "bin" / "dvc"), "--version"], env=runner.dvc_env, capture_output=True, check=True)
    if any(c.startswith("shipyard") for c in contenders):
        warm = [str(SHIPYARD_CLI), "--home", str(session / "warm"), "data", "add", "--help"]
        subprocess.run(warm, env=runner.ship_env, capture_output=True, check=True)
        shutil.rmtree(session / "warm", ignore_errors=True)

    raw: dict[str, list[dict]] = {c: [] for c in contenders}
    for r in range(args.repeat):
        order = contenders[r % len(contenders) :] + contenders[: r % len(contenders)]
        for i, who in enumerate(order):
            changed_file = paths[(r * len(contenders) + i) * 37 % files]
            log(f"snapshot #{r + 1}/{args.repeat}: {who} ...")
            load = os.getloadavg()
            if who == "dvc":
                result = runner.dvc(repo, changed_file)
            elif who.startswith("shipyard-"):
                mode = who.split("-", 1)[1]
                result = runner.shipyard(mode, data, changed_file, session / f"{who}-{r}")
            else:
                result = runner.hashing(data, paths)
            result["loadavg_before"] = load
            raw[who].append(result)
            log(f"snapshot #{r + 1}/{args.repeat}: {who} {_brief(result)}")
    out = {
        "sizes": sizes,
        "files": files,
        "bytes": total,
        "raw": raw,
        "summary": summarize(raw, files, total),
        "versions": {"dvc": _dvc_version(runner.dvc_env), "sha256sum": _first_line(["sha256sum", "--version"])},
    }
    if getattr(args, "data_profile", False):
        log("snapshot: profiling one Shipyard SDK sequence (untimed)")
        out["profile"] = runner.profile(data, paths[(args.repeat * 7 + 3) % files], session / "profile-home")
    return out


def _brief(result: dict) -> str:
    if "steps" in result:
        return " / ".join(f"{s} {_fmt(v['seconds'])}" for s, v in result["steps"].items())
    parts = (("sha256sum", "sha256sum"), ("-P2", "sha256sum_p2"), ("hashlib", "hashlib"))
    return ", ".join(f"{label} {_fmt(result[key])}" for label, key in parts)


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _dvc_version(env: dict[str, str]) -> str:
    return _first_line([str(DVC_VENV / "bin" / "dvc"), "--version"], env)


def _first_line(command: list[str], env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        return (proc.stdout.strip().splitlines() or [""])[0]
    except OSError:
        return ""


def summarize(raw: dict[str, list[dict]], files: int, total: int) -> dict:
    def med(who: str, step: str, key: str = "seconds") -> float | None:
        values = [r["steps"][step][key] for r in raw.get(who, []) if key in r["steps"][step]]
        return statistics.median(values) if values else None

    rows = []
    for step in STEPS:
        target, kind = TARGETS[step]
        dvc = med("dvc", step)
        row = {"step": step, "target": target, "target_kind": kind, "dvc": dvc, "dvc_all": _all(raw, "dvc", step)}
        for who in ("shipyard-cli", "shipyard-sdk"):
            mine = med(who, step)
            key = who.split("-")[1]
            row[key] = mine
            row[f"{key}_all"] = _all(raw, who, step)
            row[f"{key}_ratio"] = dvc / mine if dvc and mine else None
            if mine is None:
                row[f"{key}_met"] = None
            elif kind == "ratio":
                row[f"{key}_met"] = row[f"{key}_ratio"] is not None and row[f"{key}_ratio"] >= target
            else:
                row[f"{key}_met"] = mine <= target
        row["sdk_process"] = med("shipyard-sdk", step, "process_wall_seconds")
        rows.append(row)
    # extra row: cold snapshot plus the sync after it (the bytes on disk, not just in the page cache)
    flushed = {"step": "cold + sync", "target": None, "target_kind": None}
    for who, key in (("dvc", "dvc"), ("shipyard-cli", "cli"), ("shipyard-sdk", "sdk")):
        values = [r["steps"]["cold"]["seconds"] + r["steps"]["cold"].get("sync_after", 0.0) for r in raw.get(who, [])]
        flushed[key] = statistics.median(values) if values else None
        flushed[f"{key}_all"] = values
    for key in ("cli", "sdk"):
        ok = flushed["dvc"] and flushed[key]
        flushed[f"{key}_ratio"] = flushed["dvc"] / flushed[key] if ok else None
        flushed[f"{key}_met"] = None
    rows.append(flushed)
    hashing = {}
    hashes = raw.get("sha256sum", [])
    if hashes:
        for key in ("sha256sum", "sha256sum_p2", "hashlib"):
            seconds = statistics.median(h[key] for h in hashes)
            hashing[key] = {"seconds": seconds, "mb_per_s": total / seconds / 1e6, "all": [h[key] for h in hashes]}
        for who in ("shipyard-cli", "shipyard-sdk", "dvc"):
            cold = med(who, "cold")
            if cold:
                rate = total / cold / 1e6
                hashing[who] = {
                    "seconds": cold,
                    "mb_per_s": rate,
                    "vs_sha256sum": hashing["sha256sum"]["mb_per_s"] / rate,
                    "met": hashing["sha256sum"]["mb_per_s"] / rate <= HASH_TARGET,
                }
    return {"steps": rows, "hashing": hashing, "checks": checks(raw, files, total)}


def _all(raw: dict[str, list[dict]], who: str, step: str) -> list[float]:
    return [r["steps"][step]["seconds"] for r in raw.get(who, [])]


def checks(raw: dict[str, list[dict]], files: int, total: int) -> dict:
    """Each tool saw every file and byte; unchanged kept the digest, changed moved it; re-adds hashed little."""
    found: dict[str, list[str]] = {}
    for who in SNAPSHOTTERS:
        problems = []
        for i, result in enumerate(raw.get(who, [])):
            steps = result["steps"]
            for step, got in steps.items():
                if got.get("files", files) != files or got.get("size", total) != total:
                    problems.append(f"#{i + 1} {step}: {got.get('files')} files, {got.get('size')} bytes")
            digests = [steps[s].get("digest") for s in STEPS]
            if None in digests:
                problems.append(f"#{i + 1}: no digest reported")
            elif digests[0] != digests[1] or digests[1] == digests[2]:
                problems.append(f"#{i + 1}: digests cold/unchanged/changed {digests}")
            versions = [steps[s].get("version") for s in STEPS]
            if None not in versions and not (versions[0] == versions[1] and versions[2] == versions[1] + 1):
                problems.append(f"#{i + 1}: versions cold/unchanged/changed {versions}")
            hashed = [steps[s].get("hashed_files") for s in STEPS]
            if hashed[0] is not None and hashed != [files, 0, 1]:
                problems.append(f"#{i + 1}: files hashed cold/unchanged/changed {hashed}")
        found[who] = problems
    return found


def table(data: dict) -> str:
    s = data["summary"]
    lines = [
        f"Dataset snapshots: {data['files']:,} files, {data['bytes'] / 1e9:.3f} GB; medians of "
        f"{len(data['raw']['dvc'])} repeats. Shipyard CLI = a `shipyard data add` process (like `dvc add`); "
        "Shipyard SDK = the log_dataset call alone.",
    ]
    head = ["step", "DVC", "Shipyard CLI", "vs DVC", "Shipyard SDK", "vs DVC", "target", "met CLI/SDK"]
    body = []
    for row in s["steps"]:
        if row["target_kind"] is None:
            target, met = "(extra)", ""
        else:
            target = f">= {row['target']:g}x DVC" if row["target_kind"] == "ratio" else f"<= {row['target']:g} s"
            met = f"{_yes(row['cli_met'])}/{_yes(row['sdk_met'])}"
        body.append(
            [
                row["step"],
                _f(row["dvc"]),
                _f(row["cli"]),
                _x(row["cli_ratio"]),
                _f(row["sdk"]),
                _x(row["sdk_ratio"]),
                target,
                met,
            ]
        )
    lines += _grid(head, body)
    if s["hashing"]:
        lines.append("")
        head = ["hashing", "seconds", "MB/s", "sha256sum / it", f"target <= {HASH_TARGET:g}x"]
        body = []
        for key, label in (
            ("sha256sum", "sha256sum, 1 process"),
            ("sha256sum_p2", "sha256sum, xargs -P2"),
            ("hashlib", "Python hashlib.sha256, 1 thread"),
            ("shipyard-cli", "Shipyard CLI cold snapshot"),
            ("shipyard-sdk", "Shipyard SDK cold snapshot"),
            ("dvc", "dvc add cold (md5)"),
        ):
            h = s["hashing"].get(key)
            if h is None:
                continue
            ratio = h.get("vs_sha256sum", s["hashing"]["sha256sum"]["mb_per_s"] / h["mb_per_s"])
            met = _yes(h["met"]) if "met" in h and key.startswith("shipyard") else ""
            body.append([label, _f(h["seconds"]), f"{h['mb_per_s']:,.0f}", f"{ratio:.2f}x", met])
        lines += _grid(head, body)
    bad = {who: p for who, p in s["checks"].items() if p}
    lines.append("")
    lines.append("checks: " + ("ok" if not bad else "; ".join(f"{w}: {', '.join(p)}" for w, p in bad.items())))
    return "\n".join(lines)


def _grid(head: list[str], body: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)) for line in body]
    return lines


def _f(seconds: float | None) -> str:
    return "-" if seconds is None else _fmt(seconds)


def _x(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:,.1f}x"


def _yes(flag: bool | None) -> str:
    return "-" if flag is None else "yes" if flag else "NO"


# --------------------------------------------------------------------------- children (project venv)


def _child_sdk(ns: argparse.Namespace) -> None:
    started = time.perf_counter()
    from shipyard import Client

    imported = time.perf_counter()
    client = Client(home=ns.home)
    opened = time.perf_counter()
    profiler = None
    if ns.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    version = client.log_dataset(ns.path, name=ns.name)
    call = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
    fields = _describe(version)
    snap = getattr(client, "last_snapshot", None)
    if snap is not None:
        fields["snapshot"] = {"hashed_files": snap.hashed_files, "hashed_bytes": snap.hashed_bytes}
        fields["snapshot"]["seconds"] = snap.seconds
    client.close()
    result = {
        "call_seconds": call,
        "import_seconds": imported - started,
        "client_seconds": opened - imported,
        **_shipyard_fields(fields),
        "snapshot_seconds": fields.get("snapshot", {}).get("seconds"),
        "result": {k: v for k, v in fields.items() if isinstance(v, str | int | float | bool) or v is None},
    }
    if profiler is not None:
        import pstats

        profiler.dump_stats(ns.profile)
        result["top"] = _top(pstats.Stats(profiler), 25)
    print(json.dumps(result, default=str), flush=True)


def _describe(obj: object) -> dict:
    import dataclasses

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if hasattr(obj, "model_dump"):
        return obj.model_dump()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, dict):
        return obj
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def _top(stats, limit: int) -> list[dict]:
    rows = []
    for (filename, line, func), (_, ncalls, tottime, cumtime, _) in stats.stats.items():
        where = filename.split("/src/", 1)[-1] if "/src/" in filename else os.path.basename(filename)
        rows.append({"function": f"{where}:{line}({func})", "calls": ncalls, "tottime": tottime, "cumtime": cumtime})
    rows.sort(key=lambda r: r["cumtime"], reverse=True)
    by_self = sorted(rows, key=lambda r: r["tottime"], reverse=True)[:limit]
    return rows[:limit] + [dict(r, by="tottime") for r in by_self]


def _child_breakdown(ns: argparse.Namespace) -> None:
    """Where a cold ``log_dataset`` spends its time in the worker threads (seconds summed over threads).

    Wraps, wherever the snapshot code has them, the per-file function (``_store_file``, and
    ``_ingest_local`` or the store's ``_copy_hashing``), the in-kernel copy ``_copy``, every
    ``sha256.update``, ``os.fsync``, ``tempfile.mkstemp``, ``os.replace`` and ``os.chmod``. ``--no-fsync``
    makes ``os.fsync`` a no-op, to show what durability costs on the wall clock. Not a benchmark
    figure: the instrumentation has its own (small) cost.
    """
    import tempfile
    import threading

    import shipyard.artifacts.store as store
    import shipyard.data.snapshot as snapmod
    from shipyard import Client

    totals: dict[str, float] = {}
    calls: dict[str, int] = {}
    lock = threading.Lock()

    def add(key: str, seconds: float) -> None:
        with lock:
            totals[key] = totals.get(key, 0.0) + seconds
            calls[key] = calls.get(key, 0) + 1

    def timed(key: str, fn: Callable) -> Callable:
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                add(key, time.perf_counter() - t0)

        return wrapper

    class Hash:
        def __init__(self, h):
            self._h = h

        def update(self, data) -> None:
            t0 = time.perf_counter()
            self._h.update(data)
            add("sha256 update", time.perf_counter() - t0)

        def __getattr__(self, name: str):
            return getattr(self._h, name)

    class Hashlib:
        def __getattr__(self, name: str):
            return getattr(hashlib, name)

        def sha256(self, *a):
            return Hash(hashlib.sha256(*a))

    for mod in (snapmod, store):
        if hasattr(mod, "hashlib"):
            mod.hashlib = Hashlib()
    wrapped = (
        (snapmod, "_store_file", "_store_file (per file, total)"),
        (snapmod, "_ingest_local", "_ingest_local (per file, total)"),
        (snapmod, "_copy", "_copy (into the store)"),
        (store, "_copy_hashing", "store._copy_hashing (total)"),
    )
    for mod, name, key in wrapped:
        if hasattr(mod, name):
            setattr(mod, name, timed(key, getattr(mod, name)))
    real_fsync = os.fsync
    skip = ns.no_fsync or ns.deferred_fsync
    os.fsync = timed("os.fsync", (lambda fd: None) if skip else real_fsync)
    tempfile.mkstemp = timed("tempfile.mkstemp", tempfile.mkstemp)
    os.replace = timed("os.replace", os.replace)
    os.chmod = timed("os.chmod", os.chmod)
    client = Client(home=ns.home)
    cpu0 = time.process_time()
    start = time.perf_counter()
    client.log_dataset(ns.path, name=ns.name)
    call = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    snap = getattr(client, "last_snapshot", None)
    client.close()
    os.fsync = real_fsync
    deferred = None
    if ns.deferred_fsync:  # what-if: the same durability with one fsync pass over the new objects at the end
        start = time.perf_counter()
        objects = [p for p in (Path(ns.home) / "artifacts" / "objects").rglob("*") if p.is_file()]
        dirs = {p.parent for p in objects}

        def flush(path: Path, flags: int = os.O_RDONLY) -> None:
            fd = os.open(path, flags)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(4) as ex:
            list(ex.map(flush, objects))
            list(ex.map(flush, dirs))
        deferred = {"seconds": time.perf_counter() - start, "objects": len(objects), "dirs": len(dirs)}
    start = time.perf_counter()
    os.sync()
    synced = time.perf_counter() - start
    result = {
        "call_seconds": call,
        "call_cpu_seconds": cpu,
        "snapshot_seconds": snap.seconds if snap is not None else None,
        "sync_after": synced,
        "no_fsync": ns.no_fsync,
        "deferred_fsync": deferred,
        "thread_seconds": {k: round(v, 4) for k, v in sorted(totals.items(), key=lambda kv: -kv[1])},
        "calls": calls,
        "loadavg": os.getloadavg(),
    }
    print(json.dumps(result), flush=True)


def _child_hashlib(ns: argparse.Namespace) -> None:
    paths = sorted(p for p in Path(ns.path).rglob("*") if p.is_file())
    start = time.perf_counter()
    size = 0
    for path in paths:
        with open(path, "rb") as f:
            hashlib.file_digest(f, "sha256")
        size += path.stat().st_size
    print(json.dumps({"seconds": time.perf_counter() - start, "bytes": size, "files": len(paths)}), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="child", required=True)
    sdk = sub.add_parser("sdk", help="time Client(home).log_dataset(path, name) in this process")
    sdk.add_argument("--home", required=True)
    sdk.add_argument("--path", required=True)
    sdk.add_argument("--name", default=NAME)
    sdk.add_argument("--profile", help="write cProfile stats of the call here")
    bd = sub.add_parser("breakdown", help="cold log_dataset with the worker threads' time split by operation")
    bd.add_argument("--home", required=True)
    bd.add_argument("--path", required=True)
    bd.add_argument("--name", default=NAME)
    bd.add_argument("--no-fsync", action="store_true", help="make os.fsync a no-op (what durability costs)")
    bd.add_argument(
        "--deferred-fsync",
        action="store_true",
        help="os.fsync a no-op during the call, then fsync every object (4 threads) after it, timed apart",
    )
    hl = sub.add_parser("hashlib", help="time hashlib.sha256 over every file, one thread")
    hl.add_argument("--path", required=True)
    ns = parser.parse_args(argv)
    if ns.child == "sdk":
        _child_sdk(ns)
    elif ns.child == "breakdown":
        _child_breakdown(ns)
    else:
        _child_hashlib(ns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
