"""Where attempts run: in the runner's process, in spawned local processes, or on a Dask cluster.

Each executor submits :class:`StepTask` attempts and reports finished ones; the runner decides
what to run next, when to retry, and when an attempt is over its timeout (then ``kill`` ends it:
the pool process is killed, the Dask worker restarted).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import wait as wait_for_connections
from typing import TYPE_CHECKING, Any

from shipyard.core.errors import InvalidInput
from shipyard.core.hashing import canonical_json
from shipyard.pipelines.code import environment_key
from shipyard.pipelines.execution import AttemptResult, StepTask, execute_attempt

if TYPE_CHECKING:
    from shipyard.client import Client

EXECUTORS = ("inprocess", "process", "dask")


@dataclass
class Attempt:
    task: StepTask
    deadline: float | None  # time.monotonic() after which the attempt is killed
    handle: Any = None


class Executor:
    name = "base"
    parallelism = 1

    def submit(self, task: StepTask, timeout: float | None) -> Attempt:
        raise NotImplementedError

    def wait(self, attempts: list[Attempt], timeout: float | None) -> list[tuple[Attempt, AttemptResult]]:
        """Finished attempts among ``attempts``, waiting up to ``timeout`` seconds for the first one."""
        raise NotImplementedError

    def kill(self, attempt: Attempt) -> None:
        raise NotImplementedError

    def environment(self) -> dict[str, Any]:
        """The environment steps will run in, as far as cache keys care (see ``code.environment_key``)."""
        return environment_key()

    def close(self) -> None:
        pass

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class InProcessExecutor(Executor):
    """One attempt at a time in the runner's process; timeouts interrupt the step with SIGALRM (main thread only)."""

    name = "inprocess"

    def __init__(self, client: Client):
        self.client = client

    def submit(self, task: StepTask, timeout: float | None) -> Attempt:
        task.timeout = timeout
        return Attempt(task, None, execute_attempt(task, self.client))

    def wait(self, attempts: list[Attempt], timeout: float | None) -> list[tuple[Attempt, AttemptResult]]:
        return [(a, a.handle) for a in attempts]

    def kill(self, attempt: Attempt) -> None:  # pragma: no cover - in-process attempts are never pending
        pass


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    result_fd: int  # read end of the pipe the child writes its pickled AttemptResult to
    data: bytearray


class ProcessExecutor(Executor):
    """Each attempt in a fresh Python process; up to ``max_workers`` at once.

    A fresh interpreter (not fork, not multiprocessing's spawn) inherits no locks or connections
    and never re-imports the caller's ``__main__``, so scripts without a ``__main__`` guard work.
    The child gets the caller's ``sys.path``, imports the step by reference (or unpickles it) and
    writes its result to a pipe; a killed child simply closes the pipe.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None):
        self.parallelism = max_workers or os.cpu_count() or 2
        self.children: list[_Child] = []

    def submit(self, task: StepTask, timeout: float | None) -> Attempt:
        import cloudpickle

        read_fd, write_fd = os.pipe()
        payload = pickle.dumps({"sys_path": list(sys.path), "task": cloudpickle.dumps(task), "fd": write_fd})
        process = subprocess.Popen(
            [sys.executable, "-c", "from shipyard.pipelines.executors import _child_main; _child_main()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)
        assert process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that died at start-up is reported by wait()
            process.stdin.write(payload)
            process.stdin.close()
        child = _Child(process, read_fd, bytearray())
        self.children.append(child)
        return Attempt(task, None if timeout is None else time.monotonic() + timeout, child)

    def wait(self, attempts: list[Attempt], timeout: float | None) -> list[tuple[Attempt, AttemptResult]]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = set(wait_for_connections([a.handle.result_fd for a in attempts], left))
            finished = []
            for attempt in attempts:
                child: _Child = attempt.handle
                if child.result_fd not in ready:
                    continue
                chunk = os.read(child.result_fd, 1 << 16)
                if chunk:
                    child.data.extend(chunk)
                    continue
                child.process.wait()  # end of pipe: the child is done
                finished.append((attempt, self._result(attempt)))
                self._forget(child)
            if finished or not ready:
                return finished

    def _result(self, attempt: Attempt) -> AttemptResult:
        child: _Child = attempt.handle
        if child.data:
            try:
                return pickle.loads(bytes(child.data))
            except Exception as exc:
                return _lost(attempt.task, f"unreadable result from the worker process: {exc}")
        return _lost(attempt.task, f"the worker process exited with code {child.process.returncode}")

    def kill(self, attempt: Attempt) -> None:
        child: _Child = attempt.handle
        child.process.kill()
        child.process.wait()
        self._forget(child)

    def _forget(self, child: _Child) -> None:
        if child in self.children:
            os.close(child.result_fd)
            self.children.remove(child)

    def close(self) -> None:
        for child in list(self.children):
            child.process.kill()
            child.process.wait()
            self._forget(child)


def _child_main() -> None:
    """Entry point of an attempt process: read the task from stdin, run it, write the result to the pipe."""
    data = pickle.loads(sys.stdin.buffer.read())
    sys.path[:] = data["sys_path"]
    import cloudpickle

    from shipyard.pipelines.execution import worker_client

    task: StepTask = cloudpickle.loads(data["task"])
    client = worker_client(task.settings)
    try:
        result = execute_attempt(task, client)
    finally:
        client.close()
    with os.fdopen(data["fd"], "wb") as out:
        out.write(pickle.dumps(result))


class DaskExecutor(Executor):
    """Attempts as Dask tasks on ``address``, or on a LocalCluster made for this run and closed after it."""

    name = "dask"

    def __init__(self, address: str | None = None, max_workers: int | None = None):
        try:
            from distributed import Client as DaskClient
            from distributed import LocalCluster
        except ImportError as exc:  # pragma: no cover - distributed is a dependency
            raise InvalidInput(f"the dask executor needs the 'distributed' package: {exc}", field="executor") from exc
        self.cluster = None
        try:
            if address:
                self.dask = DaskClient(address, timeout="20s")
            else:
                self.cluster = LocalCluster(
                    n_workers=max_workers or 2,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self.dask = DaskClient(self.cluster)
        except OSError as exc:
            raise InvalidInput(f"cannot reach the Dask scheduler at {address}: {exc}", field="address") from exc
        self.parallelism = max_workers or 10_000  # Dask queues what its workers cannot take yet

    def submit(self, task: StepTask, timeout: float | None) -> Attempt:
        import cloudpickle

        key = f"shipyard-{task.step_name}-{task.step_run_id}-{task.attempt}"
        future = self.dask.submit(_dask_main, cloudpickle.dumps(task), key=key, pure=False)
        return Attempt(task, None if timeout is None else time.monotonic() + timeout, future)

    def wait(self, attempts: list[Attempt], timeout: float | None) -> list[tuple[Attempt, AttemptResult]]:
        from distributed import wait

        try:
            wait([a.handle for a in attempts], timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        finished = []
        for attempt in attempts:
            future = attempt.handle
            if not future.done():
                continue
            try:
                result = future.result()
            except Exception as exc:  # the worker died (KilledWorker) or the task could not run
                result = _lost(attempt.task, f"the Dask task failed: {type(exc).__name__}: {exc}")
            finished.append((attempt, result))
        return finished

    def environment(self) -> dict[str, Any]:
        """The workers' environment, not the caller's: a cluster with other library versions must not
        reuse outputs computed here (or the other way round). Mixed clusters key on every variant."""
        found = self.dask.run(environment_key)
        variants = sorted({canonical_json(env): env for env in found.values()}.items())
        if not variants:
            return environment_key()
        if len(variants) == 1:
            return variants[0][1]
        return {"workers": [env for _, env in variants]}

    def kill(self, attempt: Attempt) -> None:
        """Dask cannot stop a running task: restart the worker running it."""
        future = attempt.handle
        key = future.key
        workers = [w for w, keys in self.dask.processing().items() if key in keys]
        future.cancel()
        if workers:
            # If the restart fails the nanny restarts the worker anyway; the attempt is over either way.
            with contextlib.suppress(Exception):
                self.dask.restart_workers(workers, timeout=60)

    def close(self) -> None:
        self.dask.close()
        if self.cluster is not None:
            self.cluster.close()


def _dask_main(payload: bytes) -> AttemptResult:
    import cloudpickle

    return execute_attempt(cloudpickle.loads(payload))


def _lost(task: StepTask, message: str) -> AttemptResult:
    from shipyard.core.time import now_ms

    now = now_ms()
    return AttemptResult(
        ok=False,
        error={"type": "WorkerLost", "message": f"step {task.step_name!r}: {message}"},
        start_time=now,
        end_time=now,
    )


def make_executor(name: str, client: Client, address: str | None, max_workers: int | None) -> Executor:
    if name == "inprocess":
        return InProcessExecutor(client)
    if name == "process":
        return ProcessExecutor(max_workers)
    if name == "dask":
        return DaskExecutor(address, max_workers)
    raise InvalidInput(f"unknown executor {name!r}; known: {', '.join(EXECUTORS)}", field="executor")
