"""System health of the inference server: Prometheus metrics (``GET /metrics``) and the same figures as
JSON (``GET /metrics.json``).

Per prediction request, the app calls :meth:`ServingMetrics.request` once (one dict lookup, a counter
increment and a histogram observation on cached label children) and moves the endpoint's in-flight
gauge up and down; everything else — queue lengths, process CPU and memory — is read when it is asked
for, off the request path.

Series (labels are bounded: endpoint names, model names and versions served, variant names and HTTP
status codes; never a prediction id or anything taken from a request):

``shipyard_requests_total{endpoint,model,version,variant,status}``
    prediction requests answered, by HTTP status code. A request that failed before a version was
    chosen has ``model=""`` and ``version=""``; one naming an unknown endpoint has ``endpoint=""``.
``shipyard_request_duration_seconds{endpoint,model,version,variant}``
    histogram of the time from the request's arrival to its response (every status), plus the
    shadow's predictions (``variant="shadow"``, timed on the shadow thread).
``shipyard_prediction_errors_total{endpoint,model,version,variant}``
    predictions whose model call failed (the 500s of ``predict``, outputs that cannot be encoded, and
    failed shadow predictions).
``shipyard_requests_in_flight{endpoint}``, ``shipyard_queue_length{endpoint,queue}``
    gauges: requests being handled; requests waiting in the micro-batcher (``queue="batch"``) and
    shadow copies waiting for the shadow thread (``queue="shadow"``).
``shipyard_shadow_dropped_total{endpoint}``
    shadow copies dropped because the shadow's backlog was full.
``process_cpu_seconds_total``, ``process_resident_memory_bytes`` (and the rest of prometheus_client's
``ProcessCollector`` in a single process)

Several worker processes (``shipyard serve --workers N``): ``shipyard serve`` points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory before the workers start, so prometheus_client keeps
each worker's values in memory-mapped files there and whichever worker answers a scrape merges all of
them: counters and histograms are summed over workers (those of dead workers included, as counters
must), in-flight and queue gauges are summed over live workers. Process figures cannot be merged, so
there each worker reports its own under a ``pid`` label: ``process_cpu_seconds_total{pid}`` (a counter
per worker) and ``process_resident_memory_bytes{pid}`` (dropped when the worker dies). Each worker
refreshes its gauges and process figures every ``sample_interval`` (1 s) on a daemon thread, and the
scraping worker refreshes its own just before answering.
"""

from __future__ import annotations

import contextlib
import glob
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.process_collector import ProcessCollector

__all__ = ["BUCKETS", "MULTIPROC_ENV", "ServingMetrics", "histogram_quantile", "multiprocess_dir"]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# 0.5 ms to 10 s: a small tabular model answers in about a millisecond, a slow one in seconds
BUCKETS = (
    0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
QUANTILES = (0.5, 0.95, 0.99)
REQUEST_LABELS = ("endpoint", "model", "version", "variant")
QueueLengths = Callable[[], Mapping[tuple[str, str], int]]


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess files when this process writes its values there
    (``PROMETHEUS_MULTIPROC_DIR`` was set when prometheus_client was first imported), else None."""
    from prometheus_client import values

    if getattr(values.ValueClass, "_multiprocess", False):
        return os.environ.get(MULTIPROC_ENV)
    return None


class ServingMetrics:
    """The inference server's metrics: one instance per app (its own registry in a single process)."""

    def __init__(self, *, queue_lengths: QueueLengths | None = None, sample_interval: float = 1.0) -> None:
        self.queue_lengths = queue_lengths
        self.sample_interval = sample_interval
        self.directory = multiprocess_dir()
        self.pid = os.getpid()
        registry = self.registry = CollectorRegistry()
        self.requests = Counter(
            "shipyard_requests",
            "Prediction requests answered, by endpoint, model version, variant and HTTP status code.",
            (*REQUEST_LABELS, "status"),
            registry=registry,
        )
        self.duration = Histogram(
            "shipyard_request_duration_seconds",
            "Time from a prediction request's arrival to its response (variant=shadow: shadow predictions).",
            REQUEST_LABELS,
            buckets=BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "shipyard_prediction_errors",
            "Predictions whose model call failed (500s of predict, unencodable outputs, failed shadow predictions).",
            REQUEST_LABELS,
            registry=registry,
        )
        self.in_flight_gauge = Gauge(
            "shipyard_requests_in_flight",
            "Prediction requests being handled.",
            ("endpoint",),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.queue = Gauge(
            "shipyard_queue_length",
            "Requests waiting in the micro-batcher (queue=batch) or shadow copies waiting for the shadow thread "
            "(queue=shadow).",
            ("endpoint", "queue"),
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.shadow_dropped = Counter(
            "shipyard_shadow_dropped",
            "Shadow copies dropped because the shadow's backlog was full.",
            ("endpoint",),
            registry=registry,
        )
        if self.directory is None:
            ProcessCollector(registry=registry)
            self.exposition: CollectorRegistry = registry
            self._process_reader: ProcessCollector | None = None
        else:
            from prometheus_client.multiprocess import MultiProcessCollector

            # process figures cannot be merged over workers: one series per worker, labelled by pid
            self.cpu = Counter(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds, per worker process.",
                ("pid",),
                registry=registry,
            )
            self.rss = Gauge(
                "process_resident_memory_bytes",
                "Resident memory size in bytes, per worker process.",
                multiprocess_mode="liveall",  # prometheus_client adds the pid label
                registry=registry,
            )
            self._process_reader = ProcessCollector(registry=None)
            self._cpu_seen = 0.0
            self.exposition = CollectorRegistry()
            MultiProcessCollector(self.exposition, path=self.directory)
        self._children: dict[tuple[Any, ...], tuple[Any, Any]] = {}
        self._flights: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def multiprocess(self) -> bool:
        return self.directory is not None

    # ------------------------------------------------------------------------------------------
    # the request path

    def in_flight(self, endpoint: str) -> Any:
        """The in-flight gauge of ``endpoint`` (``inc()`` when a request starts, ``dec()`` when it ends)."""
        child = self._flights.get(endpoint)
        if child is None:
            child = self._flights[endpoint] = self.in_flight_gauge.labels(endpoint)
        return child

    def request(self, endpoint: str, model: str, version: Any, variant: str, status: int, seconds: float) -> None:
        """One answered prediction request."""
        key = (endpoint, model, version, variant, status)
        children = self._children.get(key)
        if children is None:
            children = self._children_of(key)
        children[0].inc()
        children[1].observe(seconds)

    def _children_of(self, key: tuple[Any, ...]) -> tuple[Any, Any]:
        endpoint, model, version, variant, status = key
        labels = (endpoint, model, str(version), variant)
        with self._lock:
            children = self._children[key] = (self.requests.labels(*labels, str(status)), self.duration.labels(*labels))
        return children

    def prediction_error(self, endpoint: str, model: str, version: Any, variant: str) -> None:
        self.errors.labels(endpoint, model, str(version), variant).inc()

    def shadow(self, endpoint: str, model: str, version: Any, seconds: float, error: bool) -> None:
        """One shadow prediction (on the shadow thread)."""
        labels = (endpoint, model, str(version), "shadow")
        self.duration.labels(*labels).observe(seconds)
        if error:
            self.errors.labels(*labels).inc()

    def dropped(self, endpoint: str) -> None:
        self.shadow_dropped.labels(endpoint).inc()

    # ------------------------------------------------------------------------------------------
    # sampled figures

    def refresh(self) -> None:
        """Set this process's queue gauges (and, with several workers, its CPU and memory) from live values."""
        if self.queue_lengths is not None:
            for (endpoint, queue), length in self.queue_lengths().items():
                self.queue.labels(endpoint, queue).set(length)
        if self._process_reader is not None:
            for family in self._process_reader.collect():
                for sample in family.samples:
                    if sample.name == "process_cpu_seconds_total":
                        delta = sample.value - self._cpu_seen
                        if delta > 0:
                            self.cpu.labels(str(self.pid)).inc(delta)
                            self._cpu_seen = sample.value
                    elif sample.name == "process_resident_memory_bytes":
                        self.rss.set(sample.value)

    def start(self) -> None:
        """With several workers, refresh every ``sample_interval`` on a daemon thread (the other workers
        cannot read this one's queues when they answer a scrape)."""
        if self.directory is None or self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="shipyard-metrics", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a reading must never take the worker down
                self.refresh()
            if self._stop.wait(self.sample_interval):
                return

    def stop(self) -> None:
        """Stop sampling; with several workers, remove this worker's live gauges (it serves no more)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self.directory is not None:
            from prometheus_client.multiprocess import mark_process_dead

            mark_process_dead(self.pid, self.directory)

    def reap(self) -> list[int]:
        """Mark workers that died without stopping (killed, crashed) as dead: their live gauges go."""
        if self.directory is None:
            return []
        dead = []
        pids = {int(m.group(1)) for f in glob.glob(os.path.join(self.directory, "gauge_live*_*.db"))
                if (m := re.search(r"_(\d+)\.db$", f))}  # fmt: skip
        for pid in pids - {self.pid}:
            if not _alive(pid):
                from prometheus_client.multiprocess import mark_process_dead

                mark_process_dead(pid, self.directory)
                dead.append(pid)
        return dead

    # ------------------------------------------------------------------------------------------
    # exposition

    def collect(self) -> list[Any]:
        """The metric families of every worker, fresh."""
        self.refresh()
        self.reap()
        return list(self.exposition.collect())

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """``/metrics``: the exposition body and its content type (Prometheus text, or OpenMetrics when asked)."""
        self.refresh()
        self.reap()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.exposition), content_type

    def summary(self) -> dict[str, Any]:
        """``/metrics.json``: the same figures as ``/metrics``, grouped per endpoint, model version and variant,
        with p50/p95/p99 estimated from the histogram as Prometheus' ``histogram_quantile`` does."""
        return summarize(self.collect(), multiprocess=self.multiprocess, pid=self.pid)


def summarize(families: Iterable[Any], *, multiprocess: bool = False, pid: int | None = None) -> dict[str, Any]:
    series: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    buckets: dict[tuple[str, str, str, str], dict[float, float]] = {}
    in_flight: dict[str, float] = {}
    queues: dict[str, dict[str, float]] = {}
    processes: dict[str, dict[str, float]] = {}
    dropped: dict[str, float] = {}
    own = str(pid if pid is not None else os.getpid())

    def entry(labels: Mapping[str, str]) -> dict[str, Any]:
        key = (labels["endpoint"], labels["model"], labels["version"], labels["variant"])
        found = series.get(key)
        if found is None:
            found = series[key] = {
                "endpoint": key[0], "model": key[1], "version": key[2], "variant": key[3],
                "requests": 0, "errors": 0, "client_errors": 0, "prediction_errors": 0, "status": {},
                "latency_seconds": {"count": 0, "sum": 0.0},
            }  # fmt: skip
        return found

    for family in families:
        for s in family.samples:
            name, labels, value = s.name, s.labels, s.value
            if name == "shipyard_requests_total":
                e = entry(labels)
                count = int(value)
                e["requests"] += count
                e["status"][labels["status"]] = e["status"].get(labels["status"], 0) + count
                if labels["status"].startswith("5"):
                    e["errors"] += count
                elif labels["status"].startswith("4"):
                    e["client_errors"] += count
            elif name == "shipyard_request_duration_seconds_bucket":
                e = entry(labels)
                key = (e["endpoint"], e["model"], e["version"], e["variant"])
                le = float(labels["le"])
                per = buckets.setdefault(key, {})
                per[le] = per.get(le, 0.0) + value
            elif name == "shipyard_request_duration_seconds_count":
                entry(labels)["latency_seconds"]["count"] += int(value)
            elif name == "shipyard_request_duration_seconds_sum":
                entry(labels)["latency_seconds"]["sum"] += value
            elif name == "shipyard_prediction_errors_total":
                entry(labels)["prediction_errors"] += int(value)
            elif name == "shipyard_requests_in_flight":
                in_flight[labels["endpoint"]] = in_flight.get(labels["endpoint"], 0) + int(value)
            elif name == "shipyard_queue_length":
                per_endpoint = queues.setdefault(labels["endpoint"], {"batch": 0, "shadow": 0})
                per_endpoint[labels["queue"]] = per_endpoint.get(labels["queue"], 0) + int(value)
            elif name == "shipyard_shadow_dropped_total":
                dropped[labels["endpoint"]] = dropped.get(labels["endpoint"], 0) + int(value)
            elif name == "process_cpu_seconds_total":
                processes.setdefault(labels.get("pid", own), {})["cpu_seconds"] = value
            elif name == "process_resident_memory_bytes":
                processes.setdefault(labels.get("pid", own), {})["rss_bytes"] = value
    for key, per in buckets.items():
        cumulative = sorted(per.items())
        latency = series[key]["latency_seconds"]
        latency["buckets"] = [{"le": _le(le), "count": int(count)} for le, count in cumulative]
        for q in QUANTILES:
            latency[f"p{round(q * 100)}"] = histogram_quantile(q, cumulative)
    for e in series.values():
        latency = e["latency_seconds"]
        latency.setdefault("buckets", [])
        for q in QUANTILES:
            latency.setdefault(f"p{round(q * 100)}", None)
    live = {p: figures for p, figures in processes.items() if "rss_bytes" in figures or not multiprocess}
    return {
        "multiprocess": multiprocess,
        "pid": int(own),
        "time": time.time(),
        "series": sorted(series.values(), key=lambda e: (e["endpoint"], e["model"], e["version"], e["variant"])),
        "in_flight": in_flight,
        "queue_length": queues,
        "shadow_dropped": dropped,
        "process": {
            "cpu_seconds": sum(f.get("cpu_seconds", 0.0) for f in processes.values()),
            "rss_bytes": sum(f.get("rss_bytes", 0.0) for f in live.values()),
            "workers": {p: processes[p] for p in sorted(processes, key=int)},
        },
    }


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus' ``histogram_quantile`` over ``(upper bound, cumulative count)`` pairs ending at +Inf:
    linear interpolation inside the bucket holding the rank (from 0 for the first bucket); a rank in the
    +Inf bucket gives the highest finite bound. None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def _le(bound: float) -> float | str:
    return "+Inf" if math.isinf(bound) else bound


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
