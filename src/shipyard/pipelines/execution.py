"""One attempt of one step, wherever it runs (the runner's process, a pool process, a Dask worker).

The attempt loads its inputs from the artifact store, makes the step's tracking run the fluent
active run and the step and pipeline runs the lineage consumers, captures stdout, stderr and
logging, calls the function, stores its outputs and the captured logs, and returns an
:class:`AttemptResult`. It never raises for a failure of the step: the error is part of the result.
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import sys
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shipyard.core.context import consuming
from shipyard.core.errors import ShipyardError
from shipyard.core.settings import Settings
from shipyard.core.time import now_ms
from shipyard.pipelines.code import import_reference

if TYPE_CHECKING:
    from shipyard.client import Client

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class StepTask:
    """Everything an attempt needs, picklable: the step travels by import reference or cloudpickled."""

    settings: Settings
    pipeline_run_id: str
    step_run_id: str
    step_name: str
    run_id: str | None  # the step's tracking run
    inputs: dict[str, Any]  # argument → {"kind": "output", "digest", "kind_of"} | {"kind": "value"} | dataset
    outputs: tuple[str, ...]
    output_types: dict[str, Any] = field(default_factory=dict)
    multiple_outputs: bool = False
    reference: str | None = None
    pickled_fn: bytes | None = None
    attempt: int = 1
    timeout: float | None = None  # enforced in-process with SIGALRM when possible

    def function(self) -> Any:
        if self.reference is not None:
            step = import_reference(self.reference)
            return getattr(step, "fn", step)
        import cloudpickle

        assert self.pickled_fn is not None
        return cloudpickle.loads(self.pickled_fn)


@dataclass
class AttemptResult:
    ok: bool
    outputs: dict[str, Any] = field(default_factory=dict)  # name → {"digest", "kind", "size"}
    error: dict[str, Any] | None = None
    logs_digest: str | None = None
    start_time: int = 0
    end_time: int = 0


class StepTimeout(Exception):
    """The attempt ran longer than the step's timeout."""


def execute_attempt(task: StepTask, client: Client | None = None) -> AttemptResult:
    """Run one attempt; ``client`` is the runner's own when in-process, else one is built from the settings."""
    from shipyard.client import fluent
    from shipyard.pipelines.outputs import load_output, save_output

    client = client or worker_client(task.settings)
    start = now_ms()
    buffer = io.StringIO()
    result = AttemptResult(ok=False, start_time=start)
    previous_client = fluent._client
    fluent.set_client(client)
    active = None
    try:
        with _captured(buffer):
            try:
                if task.run_id is not None:
                    active = fluent.start_run(run_id=task.run_id)
                kwargs = {arg: _input_value(client, source, load_output) for arg, source in task.inputs.items()}
                fn = task.function()
                consumers = (("step_run", task.step_run_id), ("pipeline_run", task.pipeline_run_id))
                with consuming(*consumers), _alarm(task.timeout, task.step_name):
                    value = fn(**kwargs)
                result.outputs = _store_outputs(client, task, value, save_output)
                result.ok = True
            except StepTimeout as exc:
                result.error = describe_error(exc)
            except Exception as exc:
                traceback.print_exc(file=buffer)
                result.error = describe_error(exc)
            finally:
                if active is not None:
                    _detach(fluent, active)
                client.flush()
    finally:
        fluent.set_client(previous_client)
        result.end_time = now_ms()
        result.logs_digest = client.artifacts.put_bytes(buffer.getvalue().encode())[0]
    return result


def _input_value(client: Client, source: dict[str, Any], load_output: Any) -> Any:
    kind = source.get("kind")
    if kind == "output":
        return load_output(client, {"digest": source["digest"], "kind": source["output_kind"]})
    if kind == "dataset":
        from shipyard.pipelines.refs import DatasetRef

        return DatasetRef(source["ref"])
    return source.get("value")


def _store_outputs(client: Client, task: StepTask, value: Any, save_output: Any) -> dict[str, Any]:
    from shipyard.core.errors import InvalidInput

    if task.multiple_outputs:
        if isinstance(value, dict) and set(value) == set(task.outputs):
            values = [value[name] for name in task.outputs]
        elif isinstance(value, (tuple, list)) and len(value) == len(task.outputs):
            values = list(value)
        else:
            raise InvalidInput(
                f"step {task.step_name!r} must return {len(task.outputs)} values "
                f"({', '.join(task.outputs)}), got {type(value).__name__}",
                field="output",
            )
    else:
        values = [value]
    stored = {}
    for name, item in zip(task.outputs, values, strict=True):
        _check_type(task, name, item)
        stored[name] = save_output(client, item, task.step_name, name)
    return stored


def _check_type(task: StepTask, name: str, value: Any) -> None:
    """Plain class annotations are checked (generics and Any are not): a wrong type fails the step early."""
    expected = task.output_types.get(name)
    plain = isinstance(expected, type) and expected not in (Any, object, type(None))
    if plain and not isinstance(value, expected):
        from shipyard.core.errors import InvalidInput

        raise InvalidInput(
            f"step {task.step_name!r} output {name!r} should be a {expected.__qualname__}, "
            f"got {type(value).__qualname__}",
            field="output",
        )


def describe_error(exc: BaseException) -> dict[str, Any]:
    """Type, message, traceback and any structured data the exception carries (``.report``, ``.details``)."""
    error: dict[str, Any] = {
        "type": f"{type(exc).__module__}.{type(exc).__qualname__}",
        "message": str(exc) or type(exc).__name__,
        "traceback": "".join(traceback.format_exception(exc))[-20_000:],
    }
    if isinstance(exc, ShipyardError):
        error["code"] = exc.code
        if exc.details:
            error["details"] = _jsonable(exc.details)
    report = getattr(exc, "report", None)
    if report is not None:
        error["report"] = _jsonable(report.model_dump(mode="json") if hasattr(report, "model_dump") else report)
    return error


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))


def _detach(fluent: Any, active: Any) -> None:
    """Take the step's run off the fluent stack without ending it: the runner ends it after the last attempt."""
    with fluent._lock:
        if active in fluent._run_stack:
            fluent._run_stack.remove(active)


# ------------------------------------------------------------------------------------------------
# Capture and timeouts


class _Tee(io.TextIOBase):
    def __init__(self, buffer: io.StringIO):
        self.buffer_ = buffer

    def write(self, text: str) -> int:
        return self.buffer_.write(text)

    def flush(self) -> None:
        pass


# Loggers of the SDK's own transport: their INFO records (one per HTTP request) are not the step's output.
PLUMBING_LOGGERS = ("httpx", "httpcore", "urllib3", "distributed", "shipyard")


def _not_plumbing(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING or record.name.split(".")[0] not in PLUMBING_LOGGERS


@contextlib.contextmanager
def _captured(buffer: io.StringIO) -> Iterator[None]:
    """stdout, stderr and logging records (INFO and up) of the step go to ``buffer``."""
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_not_plumbing)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    stream = _Tee(buffer)
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@contextlib.contextmanager
def _alarm(timeout: float | None, step: str) -> Iterator[None]:
    """Interrupt the attempt after ``timeout`` seconds with SIGALRM (only possible in a main thread).

    Pool processes and Dask workers are killed from outside instead; in-process attempts outside
    the main thread run without a timeout.
    """
    if not timeout or threading.current_thread() is not threading.main_thread() or sys.platform == "win32":
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise StepTimeout(f"step {step!r} timed out after {timeout:g}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------------------------------------------------
# Clients of worker processes

_clients: dict[Settings, Client] = {}
_clients_lock = threading.Lock()


def worker_client(settings: Settings) -> Client:
    """One Client per settings per process: pool processes and Dask workers reuse theirs across steps."""
    from shipyard.client import Client

    with _clients_lock:
        client = _clients.get(settings)
        if client is None:
            client = Client(
                settings.remote_uri or "",
                home=settings.home,
                store_uri=settings.store_uri,
                artifact_uri=settings.artifact_uri,
            )
            _clients[settings] = client
        return client
