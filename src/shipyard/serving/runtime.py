"""The serving runtime: one replica's link between the store's deployments and the data plane.

Each worker process of ``shipyard serve`` is a *replica*. Its runtime thread, every ``poll_interval``:

1. heartbeats to the store (``sync_replica``: what it serves, what it has loaded) and gets its plan;
2. when the plan changed, loads the versions it needs in the background (materialise, verify, load,
   smoke-test), and only once every routed version is ready swaps the endpoint's router in one
   assignment (hot swap: requests in flight finish on the version they started on);
3. every ``flush_interval``, flushes what it observed per deployment, step and variant (request and
   error counts, reservoir samples of latencies and predictions, shadow agreement) and which variant
   answered which prediction id (for feedback); and it runs the controller tick
   (``advance_deployment``).

It talks to the store only through :class:`~shipyard.client.Client`, so a replica works the same
embedded or against a remote ``shipyard server``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np

from shipyard.core.errors import ShipyardError
from shipyard.deploy.plan import ReplicaPlan
from shipyard.deploy.service import MAX_SAMPLE, reservoir
from shipyard.serving.endpoints import Endpoint, EndpointTable, ServedVersion
from shipyard.serving.router import Router, Variant

if TYPE_CHECKING:
    from shipyard.client import Client
    from shipyard.deploy.entities import VersionRef

log = logging.getLogger("shipyard.serving.runtime")

__all__ = ["ServingRuntime"]

MAX_ROUTES = 100_000  # routed prediction ids buffered between flushes (beyond: dropped, counted)
ROUTED_STRATEGIES = ("canary", "ab")  # rollouts whose feedback must be attributed to a variant


class _Accumulator:
    __slots__ = ("requests", "errors", "latencies", "predictions", "compared", "agreed", "abs_diff", "dirty")

    def __init__(self) -> None:
        self.requests = self.errors = self.compared = self.agreed = 0
        self.abs_diff = 0.0
        self.latencies: list[float] = []
        self.predictions: list[Any] = []
        self.dirty = True


class ServingRuntime:
    def __init__(
        self,
        client: Client,
        endpoints: Sequence[str],
        *,
        replica_id: str | None = None,
        poll_interval: float = 0.5,
        flush_interval: float = 2.0,
        batching: dict[str, float] | None = None,
        smoke_timeout: float = 60.0,
    ):
        self.client = client
        self.names = list(dict.fromkeys(endpoints))
        self.replica_id = replica_id or f"{socket.gethostname()}-{os.getpid()}-{random.randrange(16**4):04x}"
        self.poll_interval = poll_interval
        self.flush_interval = flush_interval
        self.batching = batching
        self.smoke_timeout = smoke_timeout
        self.table: EndpointTable | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._plans: dict[str, ReplicaPlan] = {}
        self._applied: dict[str, int] = {}
        self._loaded: dict[str, ServedVersion] = {}
        self._states: dict[str, str] = {}  # digest -> loading | ready | failed: ...
        self._loading_for: dict[str, str | None] = {}  # digest -> deployment it was loaded for
        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shipyard-loader")
        self._lock = threading.Lock()
        self._acc: dict[tuple[str, int, str], _Accumulator] = {}
        self._routes: list[dict[str, Any]] = []
        self.dropped_routes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()
        self.errors: list[str] = []  # the last few failures of the control loop, for /endpoints

    # ------------------------------------------------------------------------------------------
    # start and stop

    def start(self, *, background: bool = True) -> EndpointTable:
        """Load what every endpoint's plan routes to (blocking: a replica is ready only when it can
        answer), build the endpoint table, and start the control loop."""
        for name in self.names:
            plan = self._sync(name)
            for ref in plan.needed:
                self._load(ref, plan, blocking=True)
            router = self._router_for(plan)
            if router is None:
                failed = {d: s for d, s in self._states.items() if s.startswith("failed")}
                raise ShipyardError(f"endpoint {name!r} cannot be served: {failed}")
            endpoint = Endpoint(name, router=router)
            endpoint.observer = self.observe
            self._endpoints[name] = endpoint
            self._applied[name] = plan.revision
        self.table = EndpointTable(self._endpoints.values())
        if background:
            self._thread = threading.Thread(target=self._run, name="shipyard-serving-runtime", daemon=True)
            self._thread.start()
        return self.table

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.flush()
        except Exception:
            log.exception("final flush of deployment samples failed")
        self._loader.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        last_flush = time.monotonic()
        while not self._stop.wait(self.poll_interval):
            try:
                # Observations go to the store every flush_interval, not every poll: each flush rewrites
                # the reservoirs, and the judge looks only every step_seconds anyway.
                flush = time.monotonic() - last_flush >= self.flush_interval
                if flush:
                    last_flush = time.monotonic()
                self.step(flush=flush)
            except Exception as exc:  # the loop must survive a store hiccup; it retries next interval
                log.warning("serving runtime step failed: %s", exc)
                self.errors = [*self.errors[-9:], f"{type(exc).__name__}: {exc}"]

    def step(self, flush: bool = True) -> None:
        """One round of the control loop (also callable directly, e.g. from tests)."""
        if flush:
            self.flush()
        for name in self.names:
            plan = self._sync(name)
            self._apply(name, plan)
            if plan.deployment_id is not None:
                self.client.advance_deployment(name)

    # ------------------------------------------------------------------------------------------
    # plans and hot swap

    def _sync(self, name: str) -> ReplicaPlan:
        endpoint = self._endpoints.get(name)
        serving = [v.served.digest for v in endpoint.router.variants] if endpoint else []
        plan = self.client.sync_replica(
            self.replica_id,
            name,
            host=socket.gethostname(),
            pid=os.getpid(),
            revision=self._applied.get(name, 0),
            serving=serving,
            versions={ref.digest: self._states.get(ref.digest, "loading") for ref in self._wanted(name)},
        )
        previous = self._plans.get(name)
        if previous is not None and previous.deployment_id != plan.deployment_id:
            # a new rollout may retry a version that failed before
            for digest, state in list(self._states.items()):
                if state.startswith("failed") and self._loading_for.get(digest) != plan.deployment_id:
                    del self._states[digest]
        self._plans[name] = plan
        return plan

    def _wanted(self, name: str) -> list[VersionRef]:
        plan = self._plans.get(name)
        return plan.needed if plan is not None else []

    def _apply(self, name: str, plan: ReplicaPlan) -> None:
        for ref in plan.needed:
            if ref.digest not in self._states:
                self._load(ref, plan, blocking=False)
        endpoint = self._endpoints[name]
        if self._applied.get(name) == plan.revision:
            return
        router = self._router_for(plan)
        if router is None:
            return  # a routed version is still loading, or failed: keep serving what we serve
        endpoint.router = router  # the swap: one reference assignment
        self._applied[name] = plan.revision
        log.info(
            "endpoint %s now routes %s", name, ", ".join(f"{v.served.label} {v.weight:.0%}" for v in router.variants)
        )
        needed = {ref.digest for p in self._plans.values() for ref in p.needed}
        for digest in [d for d in self._loaded if d not in needed]:
            # in-flight requests still hold their ServedVersion; this only stops new ones finding it
            del self._loaded[digest]
            self._states.pop(digest, None)

    def _router_for(self, plan: ReplicaPlan) -> Router | None:
        variants = []
        for planned in plan.variants:
            served = self._loaded.get(planned.version.digest)
            if served is None or self._states.get(planned.version.digest) != "ready":
                return None
            variants.append(Variant(planned.name, served, planned.weight))
        shadow = None
        if plan.shadow is not None:
            shadow = self._loaded.get(plan.shadow.digest)
            if shadow is None or self._states.get(plan.shadow.digest) != "ready":
                return None
        return Router(
            tuple(variants),
            deployment_id=plan.deployment_id,
            strategy=plan.strategy,
            step=plan.step,
            key=plan.key,
            shadow=shadow,
            shadow_sample=plan.shadow_sample,
            revision=plan.revision,
        )

    def _load(self, ref: VersionRef, plan: ReplicaPlan, *, blocking: bool) -> None:
        self._states[ref.digest] = "loading"
        self._loading_for[ref.digest] = plan.deployment_id
        if blocking:
            self._load_now(ref, plan)
        else:
            self._loader.submit(self._load_now, ref, plan)

    def _load_now(self, ref: VersionRef, plan: ReplicaPlan) -> None:
        from shipyard.registry.flavors import load_model

        try:
            # signature and every file's digest checked: a tampered version fails to load
            directory = self.client.verified_model_dir(ref.model_name, ref.version, ref.digest)
            model = load_model(directory)
            served = ServedVersion(ref.model_name, ref.version, ref.digest, model)
            self._smoke_test(served, plan)
            if self.batching:
                from shipyard.serving.batching import MicroBatcher

                served.batcher = MicroBatcher(
                    model.unchecked("predict"),
                    max_batch_size=int(self.batching.get("max_batch_size", 32)),
                    max_wait_ms=float(self.batching.get("max_wait_ms", 2.0)),
                )
        except Exception as exc:
            log.warning("version %s failed to load: %s", ref.label, exc)
            what = (
                exc.message
                if isinstance(exc, ShipyardError) and type(exc) is ShipyardError
                else f"{type(exc).__name__}: {exc}"
            )
            self._states[ref.digest] = f"failed: {what}"[:500]
            return
        self._loaded[ref.digest] = served
        self._states[ref.digest] = "ready"

    def _smoke_test(self, served: ServedVersion, plan: ReplicaPlan) -> None:
        """Predict on smoke inputs (the deployment's file, else recently logged requests, else the
        version's input example); raise naming what failed. No inputs at all: nothing to test."""
        from shipyard.serving.protocols import to_model_input

        data = self._smoke_inputs(served, plan)
        if data is None:
            return
        try:
            data = to_model_input(served.signature, data)
        except ShipyardError as exc:
            raise ShipyardError(f"smoke test: inputs do not fit the signature: {exc.message}") from None
        try:
            output = served.model.unchecked("predict")(data)
        except Exception as exc:
            raise ShipyardError(f"smoke test: predict raised {type(exc).__name__}: {exc}") from None
        values = np.asarray(output.to_numpy() if hasattr(output, "to_numpy") else output)
        if values.shape[:1] != (len(data),):
            raise ShipyardError(f"smoke test: {len(data)} inputs gave {values.shape[:1] or 'no'} outputs")
        if values.dtype.kind in "fc" and not np.isfinite(values).all():
            raise ShipyardError("smoke test: the model returned non-finite predictions")

    def _smoke_inputs(self, served: ServedVersion, plan: ReplicaPlan) -> Any:
        import pandas as pd

        if plan.smoke_file:
            raw = self.client.artifacts.read_bytes(plan.smoke_file)
            return read_smoke_file(raw)
        if plan.smoke_samples and not self.client.is_remote:
            try:
                from shipyard.serving.prediction_log import read_predictions

                services = self.client._backend.services
                since = int(time.time() * 1000) - 86_400_000
                logged = read_predictions(services.db, services.artifacts, endpoint=plan.endpoint, since=since)
                if len(logged):
                    rows = [json.loads(x) for x in logged["inputs"].tail(plan.smoke_samples)]
                    columns = [c["name"] for c in (served.signature or {}).get("inputs", {}).get("columns", [])]
                    if columns and all(isinstance(r, dict) for r in rows):
                        return pd.DataFrame(rows)[columns]
            except Exception as exc:  # no usable log: fall back to the example
                log.info("no logged requests for smoke tests of %s: %s", plan.endpoint, exc)
        return served.model.input_example

    # ------------------------------------------------------------------------------------------
    # observations

    def observe(
        self,
        endpoint: Endpoint,
        router: Router,
        variant: Variant,
        *,
        latency_ms: float,
        error: bool,
        output: Any,
        prediction_id: str,
    ) -> None:
        """Called by the app for every answered request (and every shadow answer); cheap and lock-short."""
        if router.deployment_id is None:
            return
        key = (router.deployment_id, router.step, variant.name)
        compared = agreed = 0
        abs_diff = 0.0
        prediction = None
        if variant.name == "shadow" and isinstance(output, tuple):
            output, primary = output
            compared, agreed, abs_diff = _compare(output, primary)
        if not error:
            prediction = _first_value(output)
        with self._lock:
            acc = self._acc.get(key)
            if acc is None:
                acc = self._acc[key] = _Accumulator()
            acc.requests += 1
            acc.errors += bool(error)
            reservoir(acc.latencies, acc.requests, round(latency_ms, 3), MAX_SAMPLE, self._rng)
            if prediction is not None:
                reservoir(acc.predictions, acc.requests - acc.errors, prediction, MAX_SAMPLE, self._rng)
            acc.compared += compared
            acc.agreed += agreed
            acc.abs_diff += abs_diff
            acc.dirty = True
            if router.strategy in ROUTED_STRATEGIES and variant.name != "shadow":
                if len(self._routes) < MAX_ROUTES:
                    self._routes.append(
                        {
                            "prediction_id": prediction_id,
                            "deployment_id": router.deployment_id,
                            "variant": variant.name,
                            "ts": int(time.time() * 1000),
                        }
                    )
                else:
                    self.dropped_routes += 1

    def flush(self) -> None:
        with self._lock:
            samples = [
                {
                    "deployment_id": d,
                    "step": step,
                    "variant": variant,
                    "requests": a.requests,
                    "errors": a.errors,
                    "latencies": list(a.latencies),
                    "predictions": list(a.predictions),
                    "compared": a.compared,
                    "agreed": a.agreed,
                    "abs_diff": a.abs_diff,
                }
                for (d, step, variant), a in self._acc.items()
                if a.dirty
            ]
            for a in self._acc.values():
                a.dirty = False
            routes, self._routes = self._routes, []
            active = {p.deployment_id for p in self._plans.values()}
            # forget accumulators of finished rollouts (their rows are in the store)
            for key in [k for k, a in self._acc.items() if k[0] not in active and not a.dirty]:
                del self._acc[key]
        if samples or routes:
            try:
                self.client.record_deployment_samples(self.replica_id, samples, routes)
            except Exception:
                with self._lock:  # try again next time rather than lose the observations
                    for sample in samples:
                        acc = self._acc.get((sample["deployment_id"], sample["step"], sample["variant"]))
                        if acc is not None:
                            acc.dirty = True
                    self._routes = routes + self._routes
                raise


def read_smoke_file(raw: bytes) -> Any:
    """Smoke-test inputs from a Parquet, JSON (records, columns or MLflow) or CSV file."""
    import pandas as pd

    from shipyard.serving.protocols import decode_mlflow, decode_simple

    if raw[:4] == b"PAR1":
        return pd.read_parquet(io.BytesIO(raw))
    text = raw.decode("utf-8", errors="replace").lstrip()
    if text[:1] in "[{":
        body = json.loads(text)
        if isinstance(body, dict) and any(
            k in body for k in ("dataframe_split", "dataframe_records", "instances", "inputs")
        ):
            return decode_mlflow(body)
        return decode_simple(body)
    return pd.read_csv(io.BytesIO(raw))


def _first_value(output: Any) -> Any:
    """The first prediction of an output, as a JSON-safe scalar (what the judge's divergence check uses)."""
    try:
        if hasattr(output, "iloc"):
            value = output.iloc[0]
            if hasattr(value, "iloc"):
                value = value.iloc[0]
        else:
            value = output[0]
        while isinstance(value, list | tuple | np.ndarray) and len(value):
            value = value[0]
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and value != value:
            return None
        return value if isinstance(value, bool | int | float | str) else str(value)
    except Exception:
        return None


def _compare(shadow: Any, primary: Any) -> tuple[int, int, float]:
    """Rows compared, rows that agree and the sum of absolute differences (numeric outputs)."""
    try:
        a = np.asarray(shadow.to_numpy() if hasattr(shadow, "to_numpy") else shadow)
        b = np.asarray(primary.to_numpy() if hasattr(primary, "to_numpy") else primary)
        if a.shape != b.shape or a.size == 0:
            return 1, 0, 0.0
        a2, b2 = a.reshape(len(a), -1), b.reshape(len(b), -1)
        if a.dtype.kind in "fc" and b.dtype.kind in "fciub":
            same = np.isclose(a2, b2).all(axis=1)
            diff = float(np.abs(a2.astype(float) - b2.astype(float)).mean(axis=1).sum())
        else:
            same = (a2 == b2).all(axis=1)
            diff = 0.0 if a.dtype.kind not in "iub" else float(np.abs(a2 - b2).mean(axis=1).sum())
        return len(a), int(same.sum()), diff
    except Exception:
        return 1, 0, 0.0
