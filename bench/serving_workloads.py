"""Serving benchmark: ``shipyard serve`` vs ``mlflow models serve`` vs a minimal Starlette floor.

    python bench/run.py --only serving [--repeat 3] [--quick] [--serving-duration 12]

The same scikit-learn LogisticRegression (10 feature columns, fixed synthetic data) is fitted once,
pickled to ``bench/.work/serving/model.pkl``, registered in a fresh Shipyard home (with an input
example, so it has a signature) and logged with ``mlflow.sklearn.log_model`` (with an input
example) in a child of ``bench/.venv-mlflow``. Each server runs as a subprocess pinned to core 0
(``taskset -c 0``) on its own free port and is health-checked and answer-checked before load; the
load generator is Debian's ``wrk`` (installed with apt-get if missing) pinned to core 1,
``-t 1 -c 16``, single-row POST bodies from a Lua script in ``bench/.work/serving/``. Every
repeat starts fresh server processes; the contender order alternates between repeats.

Contenders (rows):
  mlflow           ``mlflow models serve --env-manager local`` (its default: 1 uvicorn worker), /invocations
  shipyard-nolog   ``shipyard serve --no-log`` (1 worker): /invocations, /endpoints/bench/predict, OIP v2 infer
  shipyard         the same with the prediction log on (the default): /invocations
  floor            a minimal Starlette app in this file: JSON row -> 1-row numpy array -> predict, same uvicorn
  shipyard-canary  ``shipyard serve bench --no-log`` on an endpoint mid-canary: bench/1 90 %, bench/2 10 %
                   (``client.deploy(..., "canary", steps=[10], step_seconds=86400, auto=False)``), /invocations
  shipyard-shadow  the same endpoint setup with a shadow rollout instead (bench/2 answers a copy of every
                   request, ``sample=1.0``, off the request path), /invocations

The routing rows compare with ``shipyard-nolog`` (a single-version endpoint, same app, same flags). Each
rollout lives in its own Shipyard home (one active rollout per endpoint); bench/2 is the same fitted
estimator with ``max_iter`` changed (same predictions, another digest). Before load, the bench waits
until the deployment is ``running`` and this server's replica reports the endpoint's revision, then
checks the split from the ``X-Model-Version`` headers of 200 requests.

This file also runs as a child: ``prepare-shipyard``, ``prepare-mlflow`` (in the MLflow venv),
``floor`` (the floor server), ``breakdown`` (in-process timings, each app called as an ASGI callable),
``prepare-deploy`` / ``wait-deploy`` / ``deploy-status`` (rollout set-up and checks) and ``router``
(``Router.choose`` per call: 1 variant, 90/10 weighted, 90/10 sticky).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / ".work"
SERVING = WORK / "serving"
SHIPYARD_PYTHON = ROOT / ".venv" / "bin" / "python"
SHIPYARD_CLI = ROOT / ".venv" / "bin" / "shipyard"
MLFLOW_VENV = BENCH / ".venv-mlflow"

WORKLOADS = {"serving": "single-row HTTP inference vs mlflow models serve and a Starlette floor (wrk, c=16)"}
MODEL_NAME = "bench"
FEATURES = 10
ROWS = 256  # distinct request bodies the Lua script cycles through
CONNECTIONS = 16
SERVER_CORE = "0"
LOADGEN_CORE = "1"
# targets of issue 4
TARGET_THROUGHPUT = 10.0  # x mlflow req/s
TARGET_P99 = 10.0  # mlflow p99 / shipyard p99
TARGET_P50_FLOOR_MS = 0.3  # shipyard p50 - floor p50
# routing targets (issue 4, deployments)
TARGET_CANARY_THROUGHPUT = 0.9  # canary req/s / single-version req/s
TARGET_SHADOW_P99 = 1.1  # p99 with a shadow / p99 without

# (row label, server, path, body kind)
ROWS_SPEC = [
    ("mlflow /invocations", "mlflow", "/invocations", "mlflow"),
    ("floor", "floor", "/predict", "floor"),
    ("shipyard --no-log /invocations", "shipyard-nolog", "/invocations", "mlflow"),
    ("shipyard --no-log /endpoints/bench/predict", "shipyard-nolog", f"/endpoints/{MODEL_NAME}/predict", "records"),
    ("shipyard --no-log /v2 infer", "shipyard-nolog", f"/v2/models/{MODEL_NAME}/infer", "v2"),
    ("shipyard (log on) /invocations", "shipyard", "/invocations", "mlflow"),
    ("shipyard --no-log canary 90/10 /invocations", "shipyard-canary", "/invocations", "mlflow"),
    ("shipyard --no-log + shadow /invocations", "shipyard-shadow", "/invocations", "mlflow"),
]
PRIMARY = "shipyard --no-log /invocations"
LOGGED = "shipyard (log on) /invocations"
SINGLE = PRIMARY  # the single-version endpoint the routing rows are compared with
CANARY = "shipyard --no-log canary 90/10 /invocations"
SHADOW = "shipyard --no-log + shadow /invocations"
# server -> (strategy, options) of the rollout it serves mid-way
ROLLOUTS: dict[str, tuple[str, dict[str, Any]]] = {
    "shipyard-canary": ("canary", {"steps": [10], "step_seconds": 86400, "auto": False}),
    "shipyard-shadow": ("shadow", {"sample": 1.0, "step_seconds": 86400, "auto": False}),
}


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("serving (--only serving)")
    group.add_argument("--serving-duration", type=int, help="seconds of load per row and repeat (12; quick: 3)")
    group.add_argument("--serving-warmup", type=int, help="seconds of unmeasured load first (3; quick: 1)")
    group.add_argument(
        "--serving-servers",
        default="",
        help="comma-separated servers to run (default all): mlflow, floor, shipyard-nolog, shipyard, "
        "shipyard-canary, shipyard-shadow",
    )


# --------------------------------------------------------------------------------------------------
# Data and model (project venv and MLflow venv alike: numpy/scikit-learn/pandas are pinned the same)


def columns() -> list[str]:
    return [f"f{i}" for i in range(FEATURES)]


def dataset() -> tuple[Any, Any]:
    from sklearn.datasets import make_classification

    return make_classification(n_samples=1000, n_features=FEATURES, n_informative=6, random_state=0)


def fit_model(path: Path) -> None:
    """Fitted on a DataFrame (named columns, like the signature), as models usually are."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    X, y = dataset()
    model = LogisticRegression(max_iter=1000).fit(pd.DataFrame(X, columns=columns()), y)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps(model))


def request_rows() -> list[list[float]]:
    X, _ = dataset()
    return [[round(float(v), 6) for v in row] for row in X[:ROWS]]


def input_frame(n: int = 5) -> Any:
    import pandas as pd

    X, _ = dataset()
    return pd.DataFrame(X[:n], columns=columns())


def body_for(kind: str, row: list[float]) -> dict[str, Any]:
    record = dict(zip(columns(), row, strict=True))
    if kind == "mlflow":
        return {"dataframe_records": [record]}
    if kind == "records":
        return {"records": [record]}
    if kind == "v2":
        return {"inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [v]} for c, v in record.items()]}
    if kind == "floor":
        return {"row": row}
    raise ValueError(kind)


def prediction_of(kind: str, answer: Any) -> Any:
    """The single predicted label in a server's answer."""
    if kind == "v2":
        return answer["outputs"][0]["data"][0]
    if isinstance(answer, dict) and "predictions" in answer:
        return answer["predictions"][0]
    raise ValueError(f"unexpected answer {str(answer)[:200]}")


# --------------------------------------------------------------------------------------------------
# Children


def child_prepare_shipyard(home: str, model_path: str) -> None:
    from shipyard.client import Client

    model = pickle.loads(Path(model_path).read_bytes())
    client = Client(home=home)
    version = client.register_model(model, MODEL_NAME, input_example=input_frame())
    print(json.dumps({"uri": f"models:/{MODEL_NAME}/{version.version}"}), flush=True)


def child_prepare_deploy(home: str, model_path: str, strategy: str) -> None:
    """A home whose endpoint ``bench`` serves bench/1 with a rollout of bench/2 in progress (it goes from
    ``loading`` to ``running`` once a replica has loaded bench/2). bench/2 is the same fitted estimator
    with ``max_iter`` changed: identical predictions, another digest."""
    from shipyard.client import Client

    model = pickle.loads(Path(model_path).read_bytes())
    client = Client(home=home)
    v1 = client.register_model(model, MODEL_NAME, input_example=input_frame())
    model.max_iter += 1  # unused after fitting
    v2 = client.register_model(model, MODEL_NAME, input_example=input_frame())
    if v1.digest == v2.digest:
        raise RuntimeError("bench/2 has the digest of bench/1")
    client.ensure_endpoint(MODEL_NAME, v1.uri)
    options = dict(ROLLOUTS[f"shipyard-{strategy}"][1])
    deployment = client.deploy(MODEL_NAME, v2.uri, strategy, **options)
    print(json.dumps({"endpoint": MODEL_NAME, "deployment": deployment.id, "baseline": v1.uri, "candidate": v2.uri}))


def child_wait_deploy(home: str, pid: int, timeout: float = 120.0) -> None:
    """Wait until the endpoint's rollout is ``running`` and the replica of server ``pid`` reports the
    endpoint's current revision (it has loaded every version and swapped its router in)."""
    from shipyard.client import Client

    client = Client(home=home)
    deadline = time.time() + timeout
    while True:
        status = client.deployment_status(MODEL_NAME)
        d = status.deployment
        mine = [r for r in status.replicas if r.pid == pid and r.live]
        if d is not None and d.status == "running" and mine and mine[0].revision == status.endpoint.revision:
            break
        if d is not None and not d.active:
            raise RuntimeError(f"deployment {d.id} is {d.status}: {d.phase}")
        if time.time() > deadline:
            raise RuntimeError(f"rollout not running on replica pid {pid} after {timeout:g} s: {status}")
        time.sleep(0.2)
    print(json.dumps({"status": d.status, "phase": d.phase, "strategy": d.strategy, "weight": d.weight,
                      "revision": status.endpoint.revision, "replica": mine[0].id}), flush=True)  # fmt: skip


def child_deploy_status(home: str) -> None:
    """Cumulative figures of the rollout's current step: requests per variant and shadow comparisons."""
    from shipyard.client import Client

    status = Client(home=home).deployment_status(MODEL_NAME)
    out: dict[str, Any] = {"variants": {v.variant: v.requests for v in status.variants}}
    if status.shadow is not None:
        out["shadow_compared"] = status.shadow.compared
        out["shadow_agreement"] = status.shadow.agreement_rate
    print(json.dumps(out), flush=True)


def child_router(n: int) -> None:
    """``Router.choose`` per call (µs), as the app calls it for every request: one variant (a plain
    endpoint), 90/10 weighted (canary), 90/10 sticky on a header key (canary with ``key``)."""
    import timeit

    from shipyard.serving.router import Router, Variant

    served: Any = object()  # choose() never touches the version itself
    single = Router.single(served)
    weighted = Router((Variant("baseline", served, 0.9), Variant("candidate", served, 0.1)),
                      deployment_id="d1", strategy="canary", step=0)  # fmt: skip
    sticky = Router((Variant("baseline", served, 0.9), Variant("candidate", served, 0.1)),
                    deployment_id="d1", strategy="canary", step=0, key="x-user")  # fmt: skip
    headers = {"content-type": "application/json", "x-user": "user-12345"}
    body = body_for("mlflow", request_rows()[0])
    out = {}
    for label, router in (("single", single), ("weighted_90_10", weighted), ("sticky_90_10", sticky)):
        timer = timeit.Timer(lambda r=router: r.choose(headers, body))
        out[f"choose_{label}_us"] = min(timer.repeat(repeat=7, number=n)) / n * 1e6
    print(json.dumps(out), flush=True)


def child_prepare_mlflow(home: str, model_path: str) -> None:
    import mlflow

    uri = f"sqlite:///{Path(home) / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    artifacts = (Path(home) / "artifacts").resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    exp = mlflow.create_experiment(MODEL_NAME, artifact_location=artifacts.as_uri())
    model = pickle.loads(Path(model_path).read_bytes())
    with mlflow.start_run(experiment_id=exp) as run:
        mlflow.sklearn.log_model(model, name="model", input_example=input_frame())
    print(json.dumps({"uri": f"runs:/{run.info.run_id}/model", "tracking_uri": uri}), flush=True)


def floor_app(model_path: str) -> Any:
    """The practical floor: parse the JSON row, predict on a 1-row numpy array, answer JSON.

    The model was fitted with feature names, so sklearn warns on every numpy input; the floor
    ignores that warning (the check itself still runs)."""
    import warnings

    import numpy as np
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    model = pickle.loads(Path(model_path).read_bytes())

    async def predict(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        x = np.asarray([body["row"]], dtype=np.float64)
        return JSONResponse({"predictions": model.predict(x).tolist()})

    async def ping(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]), Route("/ping", ping)])


def child_floor(model_path: str, port: int) -> None:
    import uvicorn

    # the same uvicorn settings as `shipyard serve` (uvicorn.run(app, host, port, log_level="info"))
    uvicorn.run(floor_app(model_path), host="127.0.0.1", port=port, log_level="info")


def child_breakdown(home: str, model_path: str, n: int) -> None:
    """Per-request time in-process, no sockets and no HTTP parsing: each app called as an ASGI
    callable from one event loop (Shipyard's app as ``shipyard serve`` builds it vs the floor),
    and the model's predict on a numpy array vs a 1-row DataFrame."""
    import asyncio
    import warnings

    import numpy as np
    import pandas as pd

    from shipyard.cli.serve import build_app
    from shipyard.client import Client

    model = pickle.loads(Path(model_path).read_bytes())
    row = request_rows()[0]
    out: dict[str, Any] = {}

    def per_call(fn: Callable[[], Any], count: int = n) -> float:
        for _ in range(min(50, count)):
            fn()
        samples = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(count):
                fn()
            samples.append((time.perf_counter() - start) / count * 1e6)
        return statistics.median(samples)

    def asgi_call(loop: asyncio.AbstractEventLoop, app: Any, path: str, body: bytes) -> Callable[[], Any]:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
        }  # fmt: skip

        async def once() -> int:
            status = []

            async def receive() -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status.append(message["status"])

            await app(dict(scope), receive, send)
            if status != [200]:
                raise RuntimeError(f"{path} answered {status}")
            return status[0]

        return lambda: loop.run_until_complete(once())

    warnings.filterwarnings("ignore", message="X does not have valid feature names")  # as the floor does
    x = np.asarray([row])
    record = dict(zip(columns(), row, strict=True))
    frame = pd.DataFrame([record])
    out["predict_numpy_us"] = per_call(lambda: model.predict(x), n * 4)
    out["dataframe_from_record_us"] = per_call(lambda: pd.DataFrame([record]), n)
    out["predict_dataframe_us"] = per_call(lambda: model.predict(frame), n)
    # Shipyard's stages for one /invocations body, outside the app (src/shipyard/serving/protocols.py)
    from shipyard.registry.signature import validate_input
    from shipyard.serving.protocols import decode_mlflow, to_model_input

    loaded = Client(home=home).load_model(f"models:/{MODEL_NAME}/1")
    sig = loaded.signature
    parsed = body_for("mlflow", row)
    decoded = decode_mlflow(parsed, sig)
    prepared = to_model_input(sig, decoded)
    out["stage_decode_mlflow_us"] = per_call(lambda: decode_mlflow(parsed, sig), n)
    out["stage_to_model_input_us"] = per_call(lambda: to_model_input(sig, decoded), n)
    out["stage_validate_input_us"] = per_call(lambda: validate_input(sig, prepared), n)
    out["stage_loaded_predict_us"] = per_call(lambda: loaded.predict(prepared), n)
    loop = asyncio.new_event_loop()
    out["floor_app_us"] = per_call(
        asgi_call(loop, floor_app(model_path), "/predict", json.dumps({"row": row}).encode())
    )
    client = Client(home=home)
    for log_on in (False, True):
        config = {"endpoints": [[MODEL_NAME, f"models:/{MODEL_NAME}/1"]], "max_body_bytes": 10 << 20, "log": log_on}
        app = build_app(client, config)
        for label, path, kind in [
            ("invocations", "/invocations", "mlflow"),
            ("predict", f"/endpoints/{MODEL_NAME}/predict", "records"),
            ("v2", f"/v2/models/{MODEL_NAME}/infer", "v2"),
        ]:
            if log_on and label != "invocations":
                continue
            key = f"shipyard_{'log' if log_on else 'nolog'}_{label}_us"
            out[key] = per_call(asgi_call(loop, app, path, json.dumps(body_for(kind, row)).encode()))
        if app.state.prediction_log is not None:
            app.state.prediction_log.close()
    loop.close()
    print(json.dumps(out), flush=True)


# --------------------------------------------------------------------------------------------------
# Driver side


def ensure_wrk(log: Callable[[str], None]) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    log("wrk not found: installing Debian's wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(apt, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run(apt, env=env, stdout=subprocess.DEVNULL, check=True)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is still missing after apt-get install")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url: str, body: dict[str, Any], timeout: float = 30) -> Any:
    data = json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def served_version(url: str, body: dict[str, Any], timeout: float = 30) -> str:
    """The ``X-Model-Version`` that answered a request (which variant the router chose)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        resp.read()
        return resp.headers.get("X-Model-Version", "?")


def write_lua(kind: str) -> Path:
    bodies = [json.dumps(body_for(kind, row)) for row in request_rows()]
    lua = SERVING / f"{kind}.lua"
    lines = ['wrk.method = "POST"', 'wrk.headers["Content-Type"] = "application/json"', "local bodies = {"]
    lines += [f"  [==[{b}]==]," for b in bodies]
    lines += [
        "}",
        "local i = 0",
        "request = function()",
        "  i = (i % #bodies) + 1",
        "  return wrk.format(nil, nil, nil, bodies[i])",
        "end",
    ]
    lua.write_text("\n".join(lines) + "\n")
    return lua


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    res: dict[str, Any] = {"non_2xx": 0, "socket_errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0}}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s+{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        res[f"p{pct}_ms"] = _ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["non_2xx"] = int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True))
    res["errors"] = res["non_2xx"] + sum(res["socket_errors"].values())
    return res


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log_path: Path, port: int):
        self.name, self.port, self.log_path = name, port, log_path
        self.base = f"http://127.0.0.1:{port}"
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            ["taskset", "-c", SERVER_CORE, *command],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() ends the server and its children
        )
        deadline = time.time() + 180
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(
                    f"{name} exited ({self.proc.returncode}); log {log_path}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                with urllib.request.urlopen(self.base + "/ping", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.time() > deadline:
                self.stop()
                raise RuntimeError(f"{name} not healthy after 180 s; log {log_path}")
            time.sleep(0.2)
        self.startup_seconds = time.perf_counter() - started

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        self._log.close()


def _json_line(stdout: str) -> dict[str, Any]:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no JSON line in child output:\n{stdout[-2000:]}")
    return json.loads(lines[-1])


def _child(python: Path, args: list[str], env: dict[str, str]) -> dict[str, Any]:
    proc = subprocess.run([str(python), str(Path(__file__)), *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:1])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return _json_line(proc.stdout)


def run(
    args: argparse.Namespace,
    base_env: dict[str, str],
    mlflow_python: Path,
    session: Path,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    duration = args.serving_duration or (3 if args.quick else 12)
    warmup = args.serving_warmup if args.serving_warmup is not None else (1 if args.quick else 3)
    wrk = ensure_wrk(log)
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.splitlines()[:1]
    SERVING.mkdir(parents=True, exist_ok=True)
    session.mkdir(parents=True, exist_ok=True)
    model_path = SERVING / "model.pkl"
    log("serving: fitting the model (project venv) and registering/logging it in fresh homes")
    subprocess.run(
        [str(SHIPYARD_PYTHON), "-c", f"import sys; sys.path.insert(0, {str(BENCH)!r}); "
         f"import serving_workloads as s; from pathlib import Path; s.fit_model(Path({str(model_path)!r}))"],
        cwd=ROOT, env=base_env, check=True,
    )  # fmt: skip
    ship_home = session / "shipyard-home"
    ml_home = session / "mlflow-home"
    ship = _child(SHIPYARD_PYTHON, ["prepare-shipyard", "--home", str(ship_home), "--model", str(model_path)], base_env)
    ml_env = {k: v for k, v in base_env.items() if k != "PYTHONPATH"}
    ml = _child(mlflow_python, ["prepare-mlflow", "--home", str(ml_home), "--model", str(model_path)], ml_env)
    expected = _child(SHIPYARD_PYTHON, ["expected", "--model", str(model_path)], base_env)["labels"]
    rollout_homes: dict[str, Path] = {}
    rollouts: dict[str, dict[str, Any]] = {}
    for server, (strategy, _) in ROLLOUTS.items():
        home = rollout_homes[server] = session / f"{server}-home"
        args_ = ["prepare-deploy", "--home", str(home), "--model", str(model_path), "--strategy", strategy]
        rollouts[server] = _child(SHIPYARD_PYTHON, args_, base_env)
        log(f"serving: {server}: {strategy} rollout {rollouts[server]['deployment']} of "
            f"{rollouts[server]['candidate']} over {rollouts[server]['baseline']} created in {home.name}")  # fmt: skip
    lua = {kind: write_lua(kind) for kind in ("mlflow", "records", "v2", "floor")}

    serve_env = {**ml_env, "MLFLOW_TRACKING_URI": ml["tracking_uri"]}
    serve_env["PATH"] = f"{mlflow_python.parent}{os.pathsep}{serve_env.get('PATH', '')}"  # its `uvicorn`

    def command(server: str, port: int) -> tuple[list[str], dict[str, str]]:
        if server == "mlflow":
            cli = str(mlflow_python.parent / "mlflow")
            return [cli, "models", "serve", "-m", ml["uri"], "--env-manager", "local", "-p", str(port)], serve_env
        if server == "floor":
            return [
                str(SHIPYARD_PYTHON),
                str(Path(__file__)),
                "floor",
                "--model",
                str(model_path),
                "--port",
                str(port),
            ], base_env
        if server in ROLLOUTS:  # the endpoint by name: it serves whatever its rollout says
            home = str(rollout_homes[server])
            return [str(SHIPYARD_CLI), "--home", home, "serve", MODEL_NAME, "--port", str(port), "--no-log"], base_env
        cmd = [str(SHIPYARD_CLI), "--home", str(ship_home), "serve", ship["uri"], "--port", str(port)]
        return ([*cmd, "--no-log"] if server == "shipyard-nolog" else cmd), base_env

    def status_of(server: str) -> dict[str, Any]:
        return _child(SHIPYARD_PYTHON, ["deploy-status", "--home", str(rollout_homes[server])], base_env)

    wanted = {name.strip() for name in (getattr(args, "serving_servers", "") or "").split(",") if name.strip()}
    servers = [s for s in dict.fromkeys(server for _, server, _, _ in ROWS_SPEC) if not wanted or s in wanted]
    raw: dict[str, list[dict[str, Any]]] = {label: [] for label, owner, *_ in ROWS_SPEC if owner in servers}
    startup: dict[str, list[float]] = {s: [] for s in servers}
    for r in range(args.repeat):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            port = free_port()
            cmd, env = command(server, port)
            log(f"serving #{r + 1}/{args.repeat}: starting {server} on port {port} (core {SERVER_CORE})")
            srv = Server(server, cmd, env, session / f"{r + 1:02d}-{server}.log", port)
            startup[server].append(srv.startup_seconds)
            try:
                routing: dict[str, Any] = {}
                if server in ROLLOUTS:
                    # the replica has loaded bench/2 and routes by the running rollout before any load
                    wait_args = ["wait-deploy", "--home", str(rollout_homes[server]), "--pid", str(srv.proc.pid)]
                    routing["ready"] = _child(SHIPYARD_PYTHON, wait_args, base_env)
                    split: dict[str, int] = {}
                    for row in request_rows()[:200]:
                        v = served_version(srv.base + "/invocations", body_for("mlflow", row))
                        split[v] = split.get(v, 0) + 1
                    routing["split_of_200"] = split
                    log(f"serving #{r + 1}/{args.repeat}: {server} ready ({routing['ready']['phase']}); "
                        f"X-Model-Version of 200 requests: {split}")  # fmt: skip
                for label, owner, path, kind in ROWS_SPEC:
                    if owner != server:
                        continue
                    url = srv.base + path
                    got = [prediction_of(kind, post(url, body_for(kind, row))) for row in request_rows()[:8]]
                    correct = [int(g) for g in got] == expected[:8]
                    before = status_of(server) if server == "shipyard-shadow" else None
                    load = ["taskset", "-c", LOADGEN_CORE, wrk, "-t", "1", "-c", str(CONNECTIONS)]
                    load += ["--timeout", "10s", "-s", str(lua[kind])]
                    if warmup:
                        subprocess.run([*load, "-d", f"{warmup}s", url], capture_output=True, check=True)
                    proc = subprocess.run(
                        [*load, "-d", f"{duration}s", "--latency", url], capture_output=True, text=True
                    )
                    if proc.returncode != 0:
                        raise RuntimeError(f"wrk failed on {label}: {proc.stderr}")
                    result = parse_wrk(proc.stdout)
                    result.update(correct=correct, wrk_output=proc.stdout, load=_loadavg())
                    if routing:
                        result["routing"] = routing
                    if before is not None:
                        time.sleep(2.0)  # the runtime flushes its observations every 0.5 s
                        after = status_of(server)
                        primary = after["variants"].get("baseline", 0) - before["variants"].get("baseline", 0)
                        compared = after.get("shadow_compared", 0) - before.get("shadow_compared", 0)
                        result["shadow"] = {"primary_requests": primary, "shadow_compared": compared,
                                            "shadow_share": compared / primary if primary else None,
                                            "agreement": after.get("shadow_agreement")}  # fmt: skip
                    raw[label].append(result)
                    errs = f", {result['errors']} ERRORS" if result["errors"] else ""
                    log(
                        f"serving #{r + 1}/{args.repeat}: {label}: {result['rps']:,.0f} req/s, "
                        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms{errs}"
                        + ("" if correct else " WRONG ANSWERS")
                    )
            finally:
                srv.stop()
    log("serving: in-process breakdown (direct ASGI calls, no sockets)")
    breakdown = _child(
        SHIPYARD_PYTHON,
        ["breakdown", "--home", str(ship_home), "--model", str(model_path), "--n", "100" if args.quick else "400"],
        base_env,
    )
    log("serving: Router.choose per call (in-process, timeit)")
    router_us = _child(SHIPYARD_PYTHON, ["router", "--n", "20000" if args.quick else "100000"], base_env)
    return {
        "settings": {
            "duration_seconds": duration,
            "warmup_seconds": warmup,
            "connections": CONNECTIONS,
            "wrk_threads": 1,
            "server_core": SERVER_CORE,
            "loadgen_core": LOADGEN_CORE,
            "wrk": wrk_version[0] if wrk_version else wrk,
            "mlflow_workers": 1,
            "shipyard_workers": 1,
            "uris": {"shipyard": ship["uri"], "mlflow": ml["uri"]},
            "rollouts": {s: {**rollouts[s], "strategy": st, "options": o} for s, (st, o) in ROLLOUTS.items()},
        },
        "startup_seconds": {s: statistics.median(v) for s, v in startup.items() if v},
        "summary": summarize(raw),
        "breakdown_us": breakdown,
        "router_us": router_us,
        "raw": raw,
    }


def _loadavg() -> float | None:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def summarize(raw: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    med: dict[str, dict[str, Any]] = {}
    for label, results in raw.items():
        if not results:
            continue
        med[label] = {
            "rps": statistics.median(r["rps"] for r in results),
            "p50_ms": statistics.median(r["p50_ms"] for r in results),
            "p99_ms": statistics.median(r["p99_ms"] for r in results),
            "errors": sum(r["errors"] for r in results),
            "correct": all(r["correct"] for r in results),
            "rps_all": [r["rps"] for r in results],
            "p50_all": [r["p50_ms"] for r in results],
            "p99_all": [r["p99_ms"] for r in results],
        }
    ml, floor = med.get("mlflow /invocations"), med.get("floor")
    for row in med.values():
        row["throughput_x_mlflow"] = row["rps"] / ml["rps"] if ml else None
        row["p99_mlflow_over"] = ml["p99_ms"] / row["p99_ms"] if ml else None
        row["p50_minus_floor_ms"] = row["p50_ms"] - floor["p50_ms"] if floor else None
    targets = {}
    if PRIMARY in med and ml and floor:
        p = med[PRIMARY]
        targets = {
            "row": PRIMARY,
            "throughput": {"value": p["throughput_x_mlflow"], "target": TARGET_THROUGHPUT,
                           "met": p["throughput_x_mlflow"] >= TARGET_THROUGHPUT},
            "p99": {"value": p["p99_mlflow_over"], "target": TARGET_P99, "met": p["p99_mlflow_over"] >= TARGET_P99},
            "p50_vs_floor": {"value_ms": p["p50_minus_floor_ms"], "target_ms": TARGET_P50_FLOOR_MS,
                             "met": p["p50_minus_floor_ms"] <= TARGET_P50_FLOOR_MS},
        }  # fmt: skip
    return {"rows": med, "targets": targets, "routing": routing_targets(raw, med)}


def routing_targets(raw: dict[str, list[dict[str, Any]]], med: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Canary 90/10 vs the single-version endpoint (throughput, and p50 vs the floor), and the
    primary's p99 with a shadow vs without, from the medians of the same run."""
    out: dict[str, Any] = {}
    single, floor = med.get(SINGLE), med.get("floor")
    canary, shadow = med.get(CANARY), med.get(SHADOW)
    if single and canary:
        ratio = canary["rps"] / single["rps"]
        out["canary_throughput"] = {"value": ratio, "target": TARGET_CANARY_THROUGHPUT,
                                    "met": ratio >= TARGET_CANARY_THROUGHPUT}  # fmt: skip
        out["canary_p50_minus_single_ms"] = canary["p50_ms"] - single["p50_ms"]
        out["canary_p99_over_single"] = canary["p99_ms"] / single["p99_ms"]
        splits = [r["routing"]["split_of_200"] for r in raw.get(CANARY, []) if "routing" in r]
        out["canary_splits_of_200"] = splits
        if floor:
            gap = canary["p50_ms"] - floor["p50_ms"]
            out["canary_p50_vs_floor"] = {"value_ms": gap, "target_ms": TARGET_P50_FLOOR_MS,
                                          "met": gap <= TARGET_P50_FLOOR_MS}  # fmt: skip
    if single and shadow:
        ratio = shadow["p99_ms"] / single["p99_ms"]
        out["shadow_p99"] = {"value": ratio, "target": TARGET_SHADOW_P99, "met": ratio <= TARGET_SHADOW_P99}
        out["shadow_throughput_over_single"] = shadow["rps"] / single["rps"]
        out["shadow_p50_over_single"] = shadow["p50_ms"] / single["p50_ms"]
        out["shadow_counters"] = [r["shadow"] for r in raw.get(SHADOW, []) if "shadow" in r]
    return out


def table(serving: dict[str, Any]) -> str:
    rows = serving["summary"]["rows"]
    s = serving["settings"]
    head = ["row", "req/s", "p50", "p99", "errors", "x MLflow req/s", "MLflow p99 / p99", "p50 - floor", "checked"]
    body = []
    for label, r in rows.items():
        body.append(
            [
                label,
                f"{r['rps']:,.0f}",
                f"{r['p50_ms']:.2f} ms",
                f"{r['p99_ms']:.2f} ms",
                str(r["errors"]),
                f"{r['throughput_x_mlflow']:.1f}x" if r["throughput_x_mlflow"] else "",
                f"{r['p99_mlflow_over']:.1f}x" if r["p99_mlflow_over"] else "",
                f"{r['p50_minus_floor_ms']:+.2f} ms" if r["p50_minus_floor_ms"] is not None else "",
                "ok" if r["correct"] else "WRONG",
            ]
        )
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=False)]
    n = len(next(iter(rows.values()))["rps_all"]) if rows else 0
    lines = [
        f"Serving: medians of {n} runs of {s['duration_seconds']} s, wrk -t1 -c{s['connections']} on core "
        f"{s['loadgen_core']}, servers on core {s['server_core']} (1 worker each); single-row POSTs.",
        "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=False)),
        "  ".join("-" * w for w in widths),
    ]
    lines += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=False)) for line in body]
    t = serving["summary"]["targets"]
    if t:
        lines.append(
            f"Targets ({t['row']}): throughput {t['throughput']['value']:.1f}x >= 10x "
            f"{'met' if t['throughput']['met'] else 'NOT met'}; p99 {t['p99']['value']:.1f}x >= 10x "
            f"{'met' if t['p99']['met'] else 'NOT met'}; p50 {t['p50_vs_floor']['value_ms']:+.2f} ms vs floor "
            f"<= 0.3 ms {'met' if t['p50_vs_floor']['met'] else 'NOT met'}"
        )
    rt = serving["summary"].get("routing") or {}
    if "canary_throughput" in rt:
        line = (
            f"Canary 90/10 vs single version: throughput {rt['canary_throughput']['value']:.2f}x >= 0.9 "
            f"{'met' if rt['canary_throughput']['met'] else 'NOT met'}; "
            f"p50 {rt['canary_p50_minus_single_ms']:+.2f} ms, "
            f"p99 {rt['canary_p99_over_single']:.2f}x the single version's"
        )
        if "canary_p50_vs_floor" in rt:
            v = rt["canary_p50_vs_floor"]
            line += f"; p50 {v['value_ms']:+.2f} ms vs floor <= 0.3 ms {'met' if v['met'] else 'NOT met'}"
        lines.append(line + f"; X-Model-Version split of 200 requests per repeat: {rt['canary_splits_of_200']}")
    if "shadow_p99" in rt:
        v = rt["shadow_p99"]
        shares = [c["shadow_share"] for c in rt.get("shadow_counters", []) if c.get("shadow_share") is not None]
        lines.append(
            f"Shadow (sample 1.0) vs none: p99 {v['value']:.2f}x <= 1.1x {'met' if v['met'] else 'NOT met'}; "
            f"throughput {rt['shadow_throughput_over_single']:.2f}x, p50 {rt['shadow_p50_over_single']:.2f}x; "
            f"share of primary requests the shadow answered: {', '.join(f'{x:.0%}' for x in shares) or 'n/a'}"
        )
    ru = serving.get("router_us") or {}
    if ru:
        lines.append("Router.choose per call: " + ", ".join(
            f"{k.removeprefix('choose_').removesuffix('_us')} {v:.2f} us" for k, v in ru.items()))  # fmt: skip
    b = serving.get("breakdown_us") or {}
    if b:
        lines.append("In-process per request (direct ASGI calls, no sockets): " + ", ".join(
            f"{k.removesuffix('_us')} {v:,.0f} us" for k, v in b.items()))  # fmt: skip
    return "\n".join(lines)


def child_expected(model_path: str) -> None:
    import numpy as np

    model = pickle.loads(Path(model_path).read_bytes())
    labels = model.predict(np.asarray(request_rows()))
    print(json.dumps({"labels": [int(v) for v in labels]}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="serving benchmark child")
    commands = ["prepare-shipyard", "prepare-mlflow", "floor", "breakdown", "expected"]
    commands += ["prepare-deploy", "wait-deploy", "deploy-status", "router"]
    parser.add_argument("command", choices=commands)
    parser.add_argument("--home")
    parser.add_argument("--model")
    parser.add_argument("--port", type=int)
    parser.add_argument("--pid", type=int)
    parser.add_argument("--strategy")
    parser.add_argument("--n", type=int, default=1000)
    a = parser.parse_args(argv)
    if a.command == "prepare-deploy":
        child_prepare_deploy(a.home, a.model, a.strategy)
    elif a.command == "wait-deploy":
        child_wait_deploy(a.home, a.pid)
    elif a.command == "deploy-status":
        child_deploy_status(a.home)
    elif a.command == "router":
        child_router(a.n)
    elif a.command == "prepare-shipyard":
        child_prepare_shipyard(a.home, a.model)
    elif a.command == "prepare-mlflow":
        child_prepare_mlflow(a.home, a.model)
    elif a.command == "floor":
        child_floor(a.model, a.port)
    elif a.command == "breakdown":
        child_breakdown(a.home, a.model, a.n)
    else:
        child_expected(a.model)


if __name__ == "__main__":
    main()
