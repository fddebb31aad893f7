"""The demo's deployment chapter: serve the champion, canary a challenger, roll back a faulty release.

A real inference server (uvicorn in a thread, one replica) serves the ``breast-cancer`` endpoint
while four threads replay the held-out rows as live traffic. A refit challenger goes out as a
canary and the judge promotes it step by step; then a release with a range bug goes out the same
way and the judge rolls it back on its own, and its evidence is printed.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd
from rich.console import Console
from rich.table import Table

from shipyard.deploy.entities import Deployment

ENDPOINT = "breast-cancer"
FINISHED = ("promoted", "rolled_back", "aborted", "failed")
# Small steps and samples so the demo takes seconds; production defaults are 60 s and 100 requests.
CANARY = {
    "steps": [20, 50],
    "step_seconds": 1.0,
    # a demo on a busy laptop has noisy latencies: tolerate 25 ms so only real faults fail
    "judge": {"min_samples": 60, "error_rate_margin": 0.05, "latency_margin_ms": 25.0},
}


class _Traffic:
    """Threads replaying rows as single-row requests, counting answers by (status, version)."""

    def __init__(self, url: str, rows: list[dict[str, Any]], threads: int = 4, pause: float = 0.0):
        self.url, self.rows, self.pause = url, rows, pause
        self.counts: Counter[tuple[int, str]] = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, offset: int) -> None:
        import httpx

        i = offset
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                try:
                    r = http.post(f"/endpoints/{ENDPOINT}/predict", json={"records": [self.rows[i % len(self.rows)]]})
                    key = (r.status_code, r.headers.get("x-model-version", "?"))
                except httpx.HTTPError:
                    key = (0, "connection error")
                with self.lock:
                    self.counts[key] += 1
                i += 4
                if self.pause:
                    self.stop.wait(self.pause)

    def __enter__(self) -> _Traffic:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def take(self) -> Counter[tuple[int, str]]:
        with self.lock:
            counts, self.counts = self.counts, Counter()
        return counts


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(client: Any, deployment_id: str, console: Console, timeout: float = 180.0) -> Deployment:
    deadline = time.monotonic() + timeout
    phase = ""
    while True:
        d = client.get_deployment(deployment_id)
        if d.phase != phase and d.status not in FINISHED:
            phase = d.phase
            console.print(f"    {d.status:<8} {phase}")
        if d.status in FINISHED or time.monotonic() > deadline:
            return d
        time.sleep(0.1)


def _evidence(d: Deployment, console: Console) -> None:
    last = d.judgements[-1] if d.judgements else None
    if last is None:
        return
    table = Table(title=f"the judge's evidence at step {last.step + 1} ({last.weight:.0%} canary): {last.verdict}")
    for column in ("check", "verdict", "n (base/cand)", "estimate", "CI", "p-value", "what it means"):
        table.add_column(column)
    for c in last.checks:
        ci = f"[{c.ci_low:.3g}, {c.ci_high:.3g}]" if c.ci_low is not None and c.ci_high is not None else ""
        table.add_row(
            c.name, c.verdict, f"{c.n_baseline}/{c.n_candidate}",
            "" if c.estimate is None else f"{c.estimate:.3g}", ci,
            "" if c.p_value is None else f"{c.p_value:.2g}", c.message,
        )  # fmt: skip
    console.print(table)


def _traffic_line(counts: Counter[tuple[int, str]]) -> str:
    return ", ".join(f"{n} x {status} from {version}" for (status, version), n in sorted(counts.items()))


def run_rollouts(client: Any, test: pd.DataFrame, target: str, console: Console) -> dict[str, Any]:
    """Serve the champion, canary a challenger until promoted, then watch a faulty release roll back."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    import shipyard
    from shipyard.demo.governance import REVIEWERS, release
    from shipyard.demo.models import RangeBug
    from shipyard.demo.pipeline import MODEL_NAME

    champion = client.get_version_by_alias(MODEL_NAME, "champion")
    endpoint = client.ensure_endpoint(ENDPOINT, champion.uri)
    if endpoint.deployment_id:  # a previous demo run was interrupted mid-rollout
        client.abort_deployment(ENDPOINT, "demo restarted")
    X, y = test.drop(columns=[target]), test[target]
    example = client.load_model(champion.uri).input_example
    # The challenger: the champion's data, a differently regularised logistic regression.
    challenger = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000)).fit(X, y)
    roc_auc = float(roc_auc_score(y, challenger.predict_proba(X)[:, 1]))
    with shipyard.start_run(name="challenger"):  # the release policy reads roc_auc from the training run
        shipyard.log_metrics({"roc_auc": roc_auc})
        challenger_version = shipyard.register_model(
            challenger, MODEL_NAME, input_example=example, description="demo challenger (refit, C=0.3)"
        )
    # The faulty release raises on large values of the feature its smoke inputs cover least: they pass,
    # about 40% of live rows do not.
    column = min(X.columns, key=lambda c: float((X[c] <= example[c].max()).mean()))
    limit = max(float(example[column].max()), float(X[column].quantile(0.6)))
    faulty = RangeBug(client.load_model(challenger_version.uri).raw, column, limit).fit(X, y)
    with shipyard.start_run(name="faulty-release"):  # its author measured the model before the bug went in
        shipyard.log_metrics({"roc_auc": roc_auc})
        faulty_version = shipyard.register_model(
            faulty, MODEL_NAME, input_example=example, description="demo release with a range bug"
        )
    # Both pass review under the release policy: the bug shows only on live traffic.
    for release_version in (challenger_version, faulty_version):
        release(client, release_version.version)
    console.print(
        f"  challenger {challenger_version.uri} and release {faulty_version.uri} approved by "
        f"{' and '.join(REVIEWERS)} under the release policy"
    )
    rows = X.to_dict(orient="records")
    logging.getLogger("shipyard.serving").setLevel(logging.ERROR)  # the faulty release's 500s are the point
    with inference_server(client) as url:
        console.print(f"\n[bold]Deployments[/bold]: endpoint {ENDPOINT!r} serves {champion.uri} on {url}")
        share = float((X[column] > limit).mean())
        good, bad = _canaries(client, url, champion, challenger_version, faulty_version, rows, share, console)
    serving = client.get_endpoint(ENDPOINT).stable
    console.print(f"  endpoint {ENDPOINT!r} now serves {serving.label}")
    return {
        "endpoint": ENDPOINT,
        "canary": good.status,
        "faulty_canary": bad.status,
        "serving": serving.label,
        "faulty_outcome": bad.outcome,
    }


def _canaries(
    client: Any,
    url: str,
    champion: Any,
    challenger_version: Any,
    faulty_version: Any,
    rows: list[dict[str, Any]],
    share: float,
    console: Console,
) -> tuple[Deployment, Deployment]:
    """The two canaries under live traffic: the challenger (promoted), the faulty release (rolled back)."""
    if client.get_endpoint(ENDPOINT).stable.digest != champion.digest:  # a previous demo run promoted another
        reset = client.deploy(ENDPOINT, champion.uri, "direct")
        console.print(f"  back to the champion first: {_wait(client, reset.id, console).outcome}")
    with _Traffic(url, rows) as traffic:
        time.sleep(0.5)
        console.print(f"  canary of {challenger_version.uri} (steps {CANARY['steps']}% then 100%)")
        good = client.deploy(ENDPOINT, challenger_version.uri, "canary", **CANARY)
        good = _wait(client, good.id, console)
        console.print(f"  → {good.status}: {good.outcome}")
        console.print(f"    traffic: {_traffic_line(traffic.take())}")
        _evidence(good, console)
        time.sleep(0.5)
        console.print(f"  canary of {faulty_version.uri}: passes its smoke test, fails on {share:.0%} of live rows")
        # smoke-test on the version's own example only (replayed logged requests would catch the bug)
        bad = client.deploy(ENDPOINT, faulty_version.uri, "canary", smoke_samples=0, **CANARY)
        bad = _wait(client, bad.id, console)
        console.print(f"  → {bad.status}: {bad.outcome}")
        time.sleep(0.6)  # the replica switches back within one poll interval
        console.print(f"    traffic: {_traffic_line(traffic.take())}")
        _evidence(bad, console)
    return good, bad


@contextmanager
def inference_server(client: Any) -> Iterator[str]:
    """A real inference server for the demo endpoint (uvicorn in a thread, one replica); yields its URL."""
    import uvicorn

    from shipyard.cli.serve import build_app

    port = _free_port()
    app = build_app(
        client,
        {"endpoints": [ENDPOINT], "max_body_bytes": 1 << 20, "log": True, "poll_interval": 0.2, "flush_interval": 0.4},
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
