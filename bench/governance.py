"""What governance costs: authentication per request, the journal's hash chain, signing models.

    .venv/bin/python bench/governance.py [--repeat 3] [--only auth,chain,signing] [--duration 10]

Four measurements (see docs/benchmarks.md, "Governance: authentication, signing, the hash chain"):

``auth``
    ``shipyard server`` (1 worker, SQLite store in a temp dir) answering ``GET /api/v1/models/bench``
    with a developer's bearer token (granted on that model only) vs the same store served with
    ``--no-auth``; and MLflow's own ``mlflow server --app-name basic-auth`` (``bench/.venv-mlflow``,
    1 uvicorn worker) answering ``GET /api/2.0/mlflow/registered-models/get?name=bench`` with HTTP
    Basic credentials of a user granted READ on that model, as shipped (no credential cache) and with
    its opt-in credential cache (``auth_cache_ttl_seconds = 60``), vs MLflow without ``--app-name``.
    Each server is a fresh subprocess per repeat pinned to core 0; the load generator (``wrk`` if
    installed, otherwise a child process of httpx client threads, the same for every row) runs on
    core 1 with a fixed number of concurrent clients, a warm-up and a measured window.
``chain``
    ``services.journal.verify()`` over 100,000 journal entries appended through ``Tx.journal`` (the
    code every service uses) in one transaction, on SQLite and on PostgreSQL (127.0.0.1:5432, its own
    temporary database, dropped at the end); plus the fetch alone and the hashing alone.
``signing``
    ``client.register_model(small sklearn model, name)`` (signed in the registering transaction, as
    shipped) and the same with the registry's signing hook removed for the call (what-if);
    ``client.load_model("models:/NAME/N")`` (signature verified, as shipped) and the same load without
    the signature check; ``verify_version_signature`` alone; raw ed25519 sign/verify from
    ``cryptography``.

Measures ``src/`` as committed at HEAD by default (``--no-snapshot``: the working tree). MLflow's
basic-auth app needs its ``auth`` extra (Flask-WTF, pinned in ``bench/requirements-mlflow.txt``); its
servers run with ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false`` (no huey job consumers on the server's
core). Prints a summary, writes everything to ``bench/.work/governance.json``. Medians of ``--repeat``.
"""

from __future__ import annotations

import argparse
import base64
import configparser
import contextlib
import gc
import json
import os
import platform
import resource
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
PYTHON = ROOT / ".venv" / "bin" / "python"
SHIPYARD = ROOT / ".venv" / "bin" / "shipyard"
SERVER_CORE, LOADGEN_CORE = "0", "1"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
MODEL = "bench"
SNAPSHOT_ENV = "GOVERNANCE_BENCH_SNAPSHOT"  # set in the re-executed driver: the commit whose src/ is measured
SECTIONS = ("auth", "chain", "signing")
ROWS = ("shipyard-auth", "shipyard-noauth", "mlflow-auth", "mlflow-auth-cache", "mlflow-noauth")


def log(message: str) -> None:
    print(f"[governance {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def loadavg() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------------------------------
# The load generator (child process, pinned to its own core)


def loadgen(url: str, headers: dict[str, str], clients: int, duration: float, warmup: float) -> dict[str, Any]:
    """``clients`` threads, each with its own keep-alive httpx.Client, send GETs back to back.
    Requests that finish inside the measured window count; latency is per request."""
    import httpx

    start = time.perf_counter() + 0.5
    window = (start + warmup, start + warmup + duration)
    results: list[list[tuple[float, float, int]]] = [[] for _ in range(clients)]
    failures: list[str] = []

    def worker(out: list[tuple[float, float, int]]) -> None:
        with httpx.Client(headers=headers, timeout=30) as client:
            while time.perf_counter() < start:
                time.sleep(0.001)
            while True:
                began = time.perf_counter()
                if began >= window[1]:
                    return
                try:
                    status = client.get(url).status_code
                except httpx.HTTPError as exc:
                    status = -1
                    if len(failures) < 5:
                        failures.append(repr(exc))
                out.append((time.perf_counter(), time.perf_counter() - began, status))

    threads = [threading.Thread(target=worker, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    while time.perf_counter() < window[0]:
        time.sleep(0.01)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    while time.perf_counter() < window[1]:
        time.sleep(0.01)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    for thread in threads:
        thread.join()
    measured = [r for out in results for r in out if window[0] <= r[0] <= window[1]]
    ok = [r[1] * 1000 for r in measured if r[2] == 200]
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "generator": f"httpx {httpx.__version__}, {clients} threads",
        "requests": len(measured),
        "rps": len(ok) / duration,
        "p50_ms": pct(ok, 0.50),
        "p99_ms": pct(ok, 0.99),
        "errors": len(measured) - len(ok),
        "statuses": sorted({r[2] for r in measured}),
        "failures": failures,
        "generator_cpu_share": cpu / duration,  # 1.0 = the generator used its whole core
    }


def run_wrk(wrk: str, url: str, headers: dict[str, str], clients: int, duration: float, warmup: float) -> dict:
    sys.path.insert(0, str(BENCH))
    import serving_workloads

    flags = [f for name, value in headers.items() for f in ("-H", f"{name}: {value}")]
    base = ["taskset", "-c", LOADGEN_CORE, wrk, "-t", "1", "-c", str(clients), *flags, "--latency"]
    if warmup > 0:
        subprocess.run([*base, "-d", f"{max(1, round(warmup))}s", url], capture_output=True, check=True)
    proc = subprocess.run([*base, "-d", f"{max(1, round(duration))}s", url], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr}")
    result = serving_workloads.parse_wrk(proc.stdout)
    result.update(generator=f"wrk -t1 -c{clients}", wrk_output=proc.stdout)
    return result


def measure(args: argparse.Namespace, url: str, headers: dict[str, str]) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk:
        return run_wrk(wrk, url, headers, args.clients, args.duration, args.warmup)
    command = ["taskset", "-c", LOADGEN_CORE, str(PYTHON), __file__, "loadgen", url, json.dumps(headers)]
    command += [str(args.clients), str(args.duration), str(args.warmup)]
    proc = subprocess.run(command, capture_output=True, text=True, env=clean_env())
    if proc.returncode != 0:
        raise RuntimeError(f"load generator failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------------
# Servers


def clean_env(shipyard: bool = True, **extra: str) -> dict[str, str]:
    """No SHIPYARD_*/MLFLOW_* from the caller; Shipyard children import the snapshot of src/ if any."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SHIPYARD_", "MLFLOW_"))}
    env.pop("PYTHONPATH", None)
    if shipyard and os.environ.get(SNAPSHOT_ENV):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true", **extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(url: str, headers: dict[str, str] | None = None, body: dict | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        text = exc.read()
        try:
            return exc.code, json.loads(text)
        except ValueError:
            return exc.code, text.decode(errors="replace")


class Server:
    """A server subprocess in its own process group, on core 0, stopped (group-wide) by ``stop``."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path, port: int):
        self.name, self.base, self.log_path = name, f"http://127.0.0.1:{port}", log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        began = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            cwd=log_path.parent,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.time() + 120
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({self.proc.returncode}):\n{log_path.read_text()[-3000:]}")
                try:
                    with urllib.request.urlopen(self.base + "/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    pass
                if time.time() > deadline:
                    raise RuntimeError(f"{name} did not answer /health in 120 s:\n{log_path.read_text()[-3000:]}")
                time.sleep(0.2)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.perf_counter() - began

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, 15)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, 9)
                self.proc.wait(timeout=10)
        self._log.close()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class AuthBench:
    def __init__(self, args: argparse.Namespace, work: Path):
        self.args, self.work = args, work
        self.shipyard_home = work / "shipyard-home"
        self.mlflow_dir = work / "mlflow"
        self.logs = work / "logs"
        self.logs.mkdir(parents=True)
        self.count = 0
        self.mlflow_bin: Path | None = None
        self.mlflow_error: str | None = None

    # -- set-up

    def setup_shipyard(self) -> None:
        from shipyard import Client

        with Client(home=self.shipyard_home) as client:  # embedded: the local admin
            client.create_model(MODEL, description="governance benchmark")
            client.create_principal("dana", kind="user")
            client.grant_role("dana", "developer", model=MODEL)
            self.shipyard_token = client.create_token("dana", name="bench").token

    def in_process(self) -> dict[str, Any]:
        """What the two checks cost per request without HTTP: the token lookup (one indexed SELECT +
        salted SHA-256 + constant-time compare), the permission check (one roles query), and the
        route's own service call, each timed over many calls on the benchmark's store."""
        from shipyard.core.settings import Settings
        from shipyard.services import Services

        services = Services(Settings.resolve(home=self.shipyard_home), require_auth=True)
        calls = 2_000
        checks = {
            "authenticate": lambda: services.access.authenticate(self.shipyard_token),
            "has_permission": lambda: services.access.has_permission("dana", "read", model=MODEL),
            "get_model": lambda: services.registry.get_model(MODEL),
        }
        out: dict[str, list[float]] = {name: [] for name in checks}
        try:
            for _ in range(self.args.repeat):
                for name, fn in checks.items():
                    fn()
                    began = time.perf_counter()
                    for _ in range(calls):
                        fn()
                    out[name].append((time.perf_counter() - began) / calls * 1e6)
        finally:
            services.close()
        return {"calls": calls, "us_runs": out, "us": {name: med(v) for name, v in out.items()}}

    def setup_mlflow(self) -> None:
        sys.path.insert(0, str(BENCH))
        import run

        self.mlflow_bin = run.ensure_mlflow_venv().parent / "mlflow"
        self.mlflow_dir.mkdir()
        self.admin_password = secrets.token_urlsafe(18)
        self.user_password = secrets.token_urlsafe(18)
        for name, ttl in (("basic_auth.ini", 0), ("basic_auth_cache.ini", 60)):
            config = configparser.ConfigParser()
            config["mlflow"] = {
                "default_permission": "READ",
                "database_uri": f"sqlite:///{self.mlflow_dir / 'basic_auth.db'}",
                "admin_username": "admin",
                "admin_password": self.admin_password,
                "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
                "auth_cache_ttl_seconds": str(ttl),
            }
            with open(self.mlflow_dir / name, "w") as out:
                config.write(out)
        server = self.start("mlflow-auth")  # bootstraps the admin, then: the model, a user, a grant
        try:
            admin = basic("admin", self.admin_password)
            api = server.base + "/api"
            grant = {"username": "dana", "resource_type": "registered_model", "resource_id": MODEL}
            steps = [
                ("2.0/mlflow/registered-models/create", {"name": MODEL}),
                ("2.0/mlflow/users/create", {"username": "dana", "password": self.user_password}),
                ("3.0/mlflow/users/permissions/grant", {**grant, "permission": "READ"}),
            ]
            for path, body in steps:
                status, answer = http(f"{api}/{path}", admin, body)
                if status != 200:
                    raise RuntimeError(f"MLflow {path} answered {status}: {answer}")
        finally:
            server.stop()

    # -- one server

    def start(self, row: str) -> Server:
        self.count += 1
        port = free_port()
        log_path = self.logs / f"{self.count:03d}-{row}.log"
        if row.startswith("shipyard"):
            command = [str(SHIPYARD), "--home", str(self.shipyard_home), "server", "--port", str(port)]
            command += ["--workers", "1", "--log-level", "warning", "--no-monitors"]
            if row == "shipyard-noauth":
                command.append("--no-auth")
            return Server(row, command, clean_env(), log_path, port)
        assert self.mlflow_bin is not None
        command = [str(self.mlflow_bin), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
        command += ["--backend-store-uri", f"sqlite:///{self.mlflow_dir / 'mlflow.db'}"]
        command += ["--default-artifact-root", str(self.mlflow_dir / "artifacts"), "--uvicorn-opts", "--no-access-log"]
        # no background job workers (7 huey consumer processes otherwise start beside the server, on its
        # core, importing MLflow while the load runs); they do not serve requests
        env = clean_env(shipyard=False, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false")
        if row != "mlflow-noauth":
            command += ["--app-name", "basic-auth"]
            ini = "basic_auth_cache.ini" if row == "mlflow-auth-cache" else "basic_auth.ini"
            env.update(
                MLFLOW_AUTH_CONFIG_PATH=str(self.mlflow_dir / ini),
                MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(16),
            )
        return Server(row, command, env, log_path, port)

    def request_for(self, row: str, base: str) -> tuple[str, dict[str, str], dict[str, str] | None]:
        """(url, headers of the measured request, headers that must be refused or None)."""
        if row.startswith("shipyard"):
            url = f"{base}/api/v1/models/{MODEL}"
            if row == "shipyard-auth":
                return url, {"Authorization": f"Bearer {self.shipyard_token}"}, {}
            return url, {}, None
        url = f"{base}/api/2.0/mlflow/registered-models/get?name={MODEL}"
        if row == "mlflow-noauth":
            return url, {}, None
        return url, basic("dana", self.user_password), {}

    def check(self, row: str, url: str, headers: dict[str, str], refused: dict[str, str] | None) -> None:
        status, answer = http(url, headers)
        name = (answer.get("registered_model") or answer).get("name") if isinstance(answer, dict) else None
        if status != 200 or name != MODEL:
            raise RuntimeError(f"{row}: {url} answered {status}: {str(answer)[:300]}")
        if refused is not None:
            status, answer = http(url, refused)
            if status != 401:
                raise RuntimeError(f"{row}: a request without credentials answered {status}, not 401")

    def run_row(self, row: str) -> dict[str, Any]:
        load_before = loadavg()
        server = self.start(row)
        try:
            url, headers, refused = self.request_for(row, server.base)
            self.check(row, url, headers, refused)
            result = measure(self.args, url, headers)
        finally:
            server.stop()
        result.update(row=row, startup_seconds=server.startup_seconds, load_before=load_before, load=loadavg())
        return result

    def run(self) -> dict[str, Any]:
        self.setup_shipyard()
        in_process = self.in_process()
        log(f"auth in-process, µs per call: {in_process['us']}")
        rows = [r for r in ROWS if r.startswith("shipyard")]
        if not self.args.no_mlflow:
            try:
                self.setup_mlflow()
                rows = list(ROWS)
            except Exception as exc:  # reported in the summary and the JSON, Shipyard still measured
                self.mlflow_error = f"{type(exc).__name__}: {exc}"
                log(f"MLflow basic-auth could not run: {self.mlflow_error}")
        results: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
        for repeat in range(self.args.repeat):
            order = rows[repeat % len(rows) :] + rows[: repeat % len(rows)]
            for row in order:
                result = self.run_row(row)
                log(
                    f"auth {repeat + 1}/{self.args.repeat} {row}: {fmt(result['rps'], ',.1f')} req/s, "
                    f"p50 {fmt(result['p50_ms'], '.1f')} ms, p99 {fmt(result['p99_ms'], '.1f')} ms, "
                    f"errors {result['errors']} {result.get('statuses', '')} {result.get('failures') or ''}, "
                    f"load {result['load']:.1f}"
                )
                results[row].append(result)
        return {
            "clients": self.args.clients,
            "duration_seconds": self.args.duration,
            "warmup_seconds": self.args.warmup,
            "generator": results[rows[0]][0]["generator"],
            "mlflow_error": self.mlflow_error,
            "in_process_us": in_process,
            "runs": results,
            "medians": {
                row: {
                    key: med([r[key] for r in runs if r.get(key) is not None])
                    for key in ("rps", "p50_ms", "p99_ms", "errors", "startup_seconds", "generator_cpu_share")
                }
                for row, runs in results.items()
            },
        }


# --------------------------------------------------------------------------------------------------
# The hash chain


@contextlib.contextmanager
def postgres_database():
    import psycopg

    name = f"shipyard_bench_governance_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def chain_backend(args: argparse.Namespace, home: Path, store_uri: str | None) -> dict[str, Any]:
    import sqlalchemy as sa

    from shipyard.core.settings import Settings
    from shipyard.services import Services
    from shipyard.store import chain
    from shipyard.store.schema import journal

    services = Services(Settings.resolve(home=home, store_uri=store_uri))
    try:
        n = args.entries
        began = time.perf_counter()
        with services.db.write(actor="bench") as tx:  # the code path of every journaled change
            for i in range(n):
                run_id = f"run{i // 10:06d}"
                payload = {"before": None, "after": {f"param_{i % 10}": str(i), "lr": "0.01"}}
                tx.journal("run.params_logged", "run", run_id, payload)
        append_seconds = time.perf_counter() - began
        total = services.journal.last_seq()
        verify, fetch, hashing = [], [], []
        for _ in range(args.repeat):
            began = time.perf_counter()
            verdict = services.journal.verify()
            verify.append(time.perf_counter() - began)
            if not verdict["ok"] or verdict["checked"] != total:
                raise RuntimeError(f"verify() did not check every entry: {verdict} (expected {total})")
            query = sa.select(journal).order_by(journal.c.seq)
            with services.db.read() as conn:  # the same query, rows streamed and dropped: the fetch alone
                began = time.perf_counter()
                fetched = sum(1 for _ in conn.execution_options(yield_per=10_000).execute(query))
                fetch.append(time.perf_counter() - began)
            with services.db.read() as conn:
                rows = list(conn.execution_options(yield_per=10_000).execute(query))
            gc.disable()  # the hashing alone, over rows already in memory (no collector passes over them)
            try:
                began = time.perf_counter()
                assert chain.verify(rows)["ok"] and fetched == total
                hashing.append(time.perf_counter() - began)
            finally:
                gc.enable()
            del rows
        return {
            "entries": total,
            "append_seconds": append_seconds,
            "append_entries_per_s": n / append_seconds,
            "verify_seconds": verify,
            "fetch_seconds": fetch,
            "hash_seconds": hashing,
            "verify_entries_per_s": total / med(verify),
            "fetch_entries_per_s": total / med(fetch),
            "hash_entries_per_s": total / med(hashing),
        }
    finally:
        services.close()


def chain_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend in args.backends:
        log(f"chain: {backend}, appending {args.entries:,} entries")
        home = work / f"chain-{backend}"
        if backend == "sqlite":
            out[backend] = chain_backend(args, home, None)
        else:
            with postgres_database() as uri:
                out[backend] = chain_backend(args, home, uri)
        r = out[backend]
        log(
            f"chain {backend}: verify {r['verify_entries_per_s']:,.0f} entries/s "
            f"(fetch {r['fetch_entries_per_s']:,.0f}/s, hash {r['hash_entries_per_s']:,.0f}/s), "
            f"append {r['append_entries_per_s']:,.0f}/s"
        )
    return out


# --------------------------------------------------------------------------------------------------
# Signing and verification


def signing_bench(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import warnings

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    from shipyard import Client
    from shipyard.governance import signing
    from shipyard.registry.flavors import load_model as load_from_dir

    warnings.filterwarnings("ignore")
    X, y = make_classification(n_samples=300, n_features=8, random_state=0)
    calls = args.calls
    models = [LogisticRegression(C=0.5 + i / 100, max_iter=200).fit(X, y) for i in range(2 * calls * args.repeat + 2)]
    client = Client(home=work / "signing-home")
    out: dict[str, list[Any]] = {k: [] for k in ("register", "register_unsigned", "load", "load_unverified")}
    out["verify_signature"] = []
    out["signing_hook"] = []
    out["load_first"] = []
    try:
        registry = client._backend.services.registry
        client.register_model(models.pop(), "warm-up")  # first call: imports, statement compilation
        client.load_model("models:/warm-up/1")
        for repeat in range(args.repeat):
            register, unsigned, load, plain, check, first = [], [], [], [], [], []
            versions: dict[int, Any] = {}
            original = list(registry.version_hooks)
            hook_seconds: list[float] = []

            def timed(*hook_args: Any, _hooks: list = original, _out: list = hook_seconds) -> None:
                began = time.perf_counter()  # the signing hook alone, inside the registering transaction
                for hook in _hooks:
                    hook(*hook_args)
                _out.append(time.perf_counter() - began)

            hooks = [timed]
            for i in range(calls):  # signed and unsigned alternate, each going first every other call
                for signed in (True, False) if i % 2 == 0 else (False, True):
                    fitted = models.pop()
                    if not signed:  # what-if: the same registration without the registry's signing hook
                        registry.version_hooks.clear()
                    try:
                        began = time.perf_counter()
                        version = client.register_model(fitted, "signed" if signed else "unsigned").version
                        (register if signed else unsigned).append(time.perf_counter() - began)
                    finally:
                        registry.version_hooks[:] = hooks
                    if signed:
                        versions[version] = fitted
            for i, (version, fitted) in enumerate(versions.items()):
                uri = f"models:/signed/{version}"
                began = time.perf_counter()  # the first load materialises the tree in the local cache
                model = client.load_model(uri)
                first.append(time.perf_counter() - began)

                def verified(uri: str = uri) -> Any:  # as shipped: signatures verified, files checked
                    return client.load_model(uri)

                def unverified(uri: str = uri) -> Any:  # the same without the signature check
                    resolved = client._call("registry", "resolve_tree", uri=uri)
                    return load_from_dir(client.materialize_model(resolved["digest"]))

                for fn, target in ((verified, load), (unverified, plain))[:: 1 if i % 2 == 0 else -1]:
                    began = time.perf_counter()
                    model = fn()
                    target.append(time.perf_counter() - began)
                began = time.perf_counter()
                verdict = client.verify_version_signature("signed", version)
                check.append(time.perf_counter() - began)
                if not verdict["valid"]:
                    raise RuntimeError(f"signed/{version} does not verify: {verdict}")
                if list(model.predict(X[:50])) != list(fitted.predict(X[:50])):
                    raise RuntimeError(f"signed/{version} does not predict like the model registered")
            registry.version_hooks[:] = original
            for key, values in (
                ("signing_hook", hook_seconds),
                ("register", register),
                ("register_unsigned", unsigned),
                ("load", load),
                ("load_unverified", plain),
                ("load_first", first),
                ("verify_signature", check),
            ):
                out[key].append(values)
            log(
                f"signing {repeat + 1}/{args.repeat}: register {med(register) * 1000:.1f} ms "
                f"(unsigned {med(unsigned) * 1000:.1f}), load {med(load) * 1000:.1f} ms "
                f"(unverified {med(plain) * 1000:.1f}), verify_version_signature {med(check) * 1000:.2f} ms"
            )
    finally:
        client.close()

    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = signing.version_message("signed", 1, "sha256:" + "ab" * 32)
    raw_sign, raw_verify, shipyard_sign, shipyard_verify = [], [], [], []
    public_b64 = signing.public_key_b64(key)
    signature_b64 = signing.sign(key, message)
    n = 5_000
    for _ in range(args.repeat):
        for target, fn in (
            (raw_sign, lambda: key.sign(message)),
            (raw_verify, lambda: public.verify(base64.b64decode(signature_b64), message)),
            (shipyard_sign, lambda: signing.sign(key, message)),
            (shipyard_verify, lambda: signing.verify(public_b64, message, signature_b64)),
        ):
            began = time.perf_counter()
            for _ in range(n):
                fn()
            target.append((time.perf_counter() - began) / n * 1e6)
    per_repeat = {k: [med(v) for v in out[k]] for k in out}
    return {
        "calls_per_repeat": calls,
        "seconds": out,
        "median_ms": {k: med([x for v in out[k] for x in v]) * 1000 for k in out},
        "per_repeat_median_ms": {k: [x * 1000 for x in v] for k, v in per_repeat.items()},
        "ed25519_us": {
            "sign": med(raw_sign),
            "verify": med(raw_verify),
            "signing.sign (+ base64)": med(shipyard_sign),
            "signing.verify (+ key parse, base64)": med(shipyard_verify),
        },
        "ed25519_us_runs": {
            "sign": raw_sign,
            "verify": raw_verify,
            "signing.sign": shipyard_sign,
            "signing.verify": shipyard_verify,
        },
    }


# --------------------------------------------------------------------------------------------------
# Driver


def environment() -> dict[str, Any]:
    import cryptography

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "src"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": commit,
        "src_dirty": bool(dirty),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "cryptography": cryptography.__version__,
        "load_at_start": loadavg(),
        "snapshot_of": os.environ.get(SNAPSHOT_ENV),  # src/ as committed there, not the working tree
        "wrk": shutil.which("wrk"),
    }


def fmt(value: float | None, spec: str = ",.0f") -> str:
    return "—" if value is None else format(value, spec)


def summary(results: dict[str, Any]) -> str:
    lines = []
    auth = results.get("auth")
    if auth:
        m = auth["medians"]
        lines.append(
            f"Authentication: medians of {len(next(iter(auth['runs'].values())))} runs, {auth['generator']}, "
            f"{auth['clients']} concurrent clients, {auth['duration_seconds']:g} s measured"
        )
        lines.append(f"{'row':<20} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  per run req/s")
        for row, values in m.items():
            runs = ", ".join(f"{r['rps']:.1f}" if r["rps"] < 10 else f"{r['rps']:.0f}" for r in auth["runs"][row])
            lines.append(
                f"{row:<20} {fmt(values['rps'], ',.1f' if values['rps'] < 10 else ',.0f'):>8} "
                f"{fmt(values['p50_ms'], '.1f'):>8} "
                f"{fmt(values['p99_ms'], '.1f'):>8} {fmt(values['errors'], '.0f'):>7}  [{runs}]"
            )

        def ratio(a: str, b: str) -> str:
            if a in m and b in m and m[b]["rps"]:
                return f"{m[a]['rps'] / m[b]['rps']:.3g}"
            return "—"

        lines.append(f"Shipyard auth / no-auth throughput: {ratio('shipyard-auth', 'shipyard-noauth')}")
        lines.append(f"MLflow basic-auth / no-auth throughput: {ratio('mlflow-auth', 'mlflow-noauth')}")
        lines.append(f"MLflow basic-auth (cache) / no-auth: {ratio('mlflow-auth-cache', 'mlflow-noauth')}")
        lines.append(f"Shipyard auth / MLflow basic-auth throughput: {ratio('shipyard-auth', 'mlflow-auth')}")
        lines.append(f"Shipyard auth / MLflow basic-auth (cache): {ratio('shipyard-auth', 'mlflow-auth-cache')}")
        us = auth["in_process_us"]["us"]
        lines.append(
            f"Shipyard in-process, per call: authenticate {us['authenticate']:.0f} µs, "
            f"has_permission {us['has_permission']:.0f} µs, get_model {us['get_model']:.0f} µs"
        )
        if auth.get("mlflow_error"):
            lines.append(f"MLflow basic-auth could not run: {auth['mlflow_error']}")
    for backend, r in (results.get("chain") or {}).items():
        lines.append(
            f"Hash chain, {backend}, {r['entries']:,} entries: verify() {fmt(r['verify_entries_per_s'])} entries/s "
            f"({med(r['verify_seconds']):.2f} s; fetch alone {fmt(r['fetch_entries_per_s'])}/s, "
            f"hashing alone {fmt(r['hash_entries_per_s'])}/s); append via Tx.journal {fmt(r['append_entries_per_s'])}/s"
        )
    sign = results.get("signing")
    if sign:
        m = sign["median_ms"]
        lines.append(
            f"register_model {m['register']:.1f} ms (signing hook removed: {m['register_unsigned']:.1f} ms; "
            f"the hook itself {m['signing_hook']:.2f} ms); "
            f"load_model {m['load']:.1f} ms (no signature check: {m['load_unverified']:.1f} ms; "
            f"first load, tree materialised: {m['load_first']:.1f} ms); "
            f"verify_version_signature {m['verify_signature']:.2f} ms"
        )
        e = sign["ed25519_us"]
        lines.append(
            f"ed25519 (cryptography): sign {e['sign']:.1f} µs, verify {e['verify']:.1f} µs; "
            f"signing.sign {e['signing.sign (+ base64)']:.1f} µs, "
            f"signing.verify {e['signing.verify (+ key parse, base64)']:.1f} µs"
        )
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (medians reported)")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated: auth, chain, signing")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients of the load generator")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per load run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load first")
    parser.add_argument("--no-mlflow", action="store_true", help="Shipyard's auth rows only")
    parser.add_argument("--entries", type=int, default=100_000, help="journal entries for the chain")
    parser.add_argument("--backends", default="sqlite,postgresql", help="chain backends")
    parser.add_argument("--calls", type=int, default=40, help="register/load calls per repeat")
    parser.add_argument("--output", default=str(WORK / "governance.json"))
    parser.add_argument(
        "--snapshot",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure src/ as committed at HEAD (a copy in bench/.work, as bench/run.py --snapshot), "
        "not the working tree other sessions may be editing (default: on)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()]
    if set(args.sections) - set(SECTIONS):
        parser.error(f"unknown sections: {set(args.sections) - set(SECTIONS)}")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(args.backends) - {"sqlite", "postgresql"}:
        parser.error("--backends: sqlite, postgresql")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "loadgen":
        url, headers, clients, duration, warmup = sys.argv[2:7]
        print(json.dumps(loadgen(url, json.loads(headers), int(clients), float(duration), float(warmup))))
        return
    args = parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    if args.snapshot and not os.environ.get(SNAPSHOT_ENV):
        sys.path.insert(0, str(BENCH))
        import run

        src, sha = run.snapshot_src()
        log(f"measuring src/ as committed at {sha[:12]} ({src})")
        env = {**os.environ, "PYTHONPATH": str(src), SNAPSHOT_ENV: sha}
        os.execve(sys.executable, [sys.executable, __file__, *sys.argv[1:]], env)
    work = Path(tempfile.mkdtemp(prefix="governance-", dir=WORK))
    results: dict[str, Any] = {"environment": environment(), "args": {k: v for k, v in vars(args).items()}}
    log(f"scratch {work}; load average {results['environment']['load_at_start']:.1f}")
    try:
        if "auth" in args.sections:
            results["auth"] = AuthBench(args, work / "auth").run()
        if "chain" in args.sections:
            results["chain"] = chain_bench(args, work)
        if "signing" in args.sections:
            results["signing"] = signing_bench(args, work)
    finally:
        results["environment"]["load_at_end"] = loadavg()
        Path(args.output).write_text(json.dumps(results, indent=2, default=str) + "\n")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(summary(results))
    log(f"raw results in {args.output}")


if __name__ == "__main__":
    main()
