"""MicroBatcher: batched predictions equal unbatched ones row by row, batches form under load only,
failures reach every waiter of their batch, incompatible inputs never share a batch."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from shipyard.serving.batching import MicroBatcher


@pytest.fixture(scope="module")
def iris() -> tuple[pd.DataFrame, LogisticRegression]:
    data = load_iris(as_frame=True)
    frame = data.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=1000).fit(frame, data.target)
    return frame, model


def rows_of(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [frame.iloc[[i]].reset_index(drop=True) for i in range(len(frame))]


def test_concurrent_frames_match_unbatched_predictions(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    frame, model = iris
    requests = rows_of(frame.sample(200, replace=True, random_state=0))
    expected = [model.predict(r) for r in requests]
    expected_proba = [model.predict_proba(r) for r in requests]

    async def main() -> tuple[list[Any], list[Any], dict[str, Any]]:
        batcher = MicroBatcher(model.predict, max_batch_size=32, max_wait_ms=2.0)
        proba = MicroBatcher(model.predict_proba, max_batch_size=32, max_wait_ms=2.0)
        out = await asyncio.gather(*(batcher.submit(r) for r in requests))
        out_proba = await asyncio.gather(*(proba.submit(r) for r in requests))
        stats = batcher.stats
        await batcher.close()
        await proba.close()
        return out, out_proba, stats

    out, out_proba, stats = asyncio.run(main())
    for got, want in zip(out, expected, strict=True):
        assert isinstance(got, np.ndarray)
        np.testing.assert_array_equal(got, want)
    for got, want in zip(out_proba, expected_proba, strict=True):
        assert got.shape == (1, 3)
        # BLAS may sum a 32-row matmul in another order than a 1-row one: equal up to rounding
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert stats["rows"] == 200
    assert stats["batches"] < 200
    assert 1 < stats["max_batch_size"] <= 32
    assert stats["mean_batch_size"] == pytest.approx(200 / stats["batches"])


def test_multi_row_requests_and_arrays(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    frame, model = iris
    array_model = LogisticRegression(max_iter=1000).fit(frame.to_numpy(), model.predict(frame))
    sizes = [1, 3, 7, 2, 40, 5, 1, 12]  # 40 > max_batch_size: predicted alone
    chunks, start = [], 0
    for n in sizes:
        chunks.append(frame.to_numpy()[start : start + n])
        start += n

    async def main() -> tuple[list[Any], dict[str, Any]]:
        batcher = MicroBatcher(array_model.predict, max_batch_size=16, max_wait_ms=5.0)
        out = await asyncio.gather(*(batcher.submit(c) for c in chunks))
        return out, batcher.stats

    out, stats = asyncio.run(main())
    for got, chunk in zip(out, chunks, strict=True):
        np.testing.assert_array_equal(got, array_model.predict(chunk))
    assert stats["max_batch_size"] == 40
    assert stats["batches"] < len(sizes)


@pytest.mark.parametrize("kind", ["frame", "series", "list"])
def test_frame_series_and_list_outputs_are_split_by_rows(kind: str) -> None:
    def predict(data: pd.DataFrame) -> Any:
        doubled = data["x"] * 2
        if kind == "frame":
            return pd.DataFrame({"double": doubled, "neg": -data["x"]})
        if kind == "series":
            return doubled.rename("double")
        return doubled.tolist()

    requests = [pd.DataFrame({"x": [float(i), float(i) + 0.5]}) for i in range(50)]

    async def main() -> list[Any]:
        batcher = MicroBatcher(predict, max_batch_size=8, max_wait_ms=5.0)
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    for request, got in zip(requests, asyncio.run(main()), strict=True):
        want = predict(request)
        if kind == "frame":
            pd.testing.assert_frame_equal(got, want)
        elif kind == "series":
            pd.testing.assert_series_equal(got, want)
        else:
            assert got == want


def test_lone_request_is_not_delayed(iris: tuple[pd.DataFrame, LogisticRegression]) -> None:
    frame, model = iris
    one = frame.iloc[[0]]
    model.predict(one)  # warm up
    unbatched = min(_timed(lambda: model.predict(one)) for _ in range(20))

    async def main() -> float:
        batcher = MicroBatcher(model.predict, max_batch_size=32, max_wait_ms=50.0)
        await batcher.submit(one)  # starts the consumer and warms the thread pool
        best = float("inf")
        for _ in range(10):
            start = time.perf_counter()
            await batcher.submit(one)
            best = min(best, time.perf_counter() - start)
        assert batcher.stats["max_batch_size"] == 1
        return best

    latency = asyncio.run(main())
    # the lone request is dispatched at once: far below the 50 ms max_wait
    assert latency < unbatched + 0.010


def test_waits_at_most_max_wait_under_load() -> None:
    release = threading.Event()

    def slow(data: np.ndarray) -> np.ndarray:
        release.wait(5)
        return data.sum(axis=1)

    async def main() -> float:
        batcher = MicroBatcher(slow, max_batch_size=32, max_wait_ms=20.0, max_concurrency=2)
        busy = asyncio.ensure_future(batcher.submit(np.ones((1, 2))))  # occupies one slot
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        late = asyncio.ensure_future(batcher.submit(np.ones((1, 2))))
        while batcher.stats["batches"] < 2:  # the second batch waits max_wait for company, then goes
            await asyncio.sleep(0.001)
        waited = time.perf_counter() - start
        release.set()
        assert (await busy).tolist() == [2.0]
        assert (await late).tolist() == [2.0]
        return waited

    waited = asyncio.run(main())
    assert 0.015 <= waited < 0.5


def test_an_exception_reaches_every_waiter_of_its_batch_and_later_batches_work() -> None:
    calls: list[int] = []

    def predict(data: np.ndarray) -> np.ndarray:
        calls.append(len(data))
        if (data < 0).any():
            raise ValueError("negative input")
        return data[:, 0] * 10

    async def main() -> None:
        batcher = MicroBatcher(predict, max_batch_size=64, max_wait_ms=5.0)
        bad = [np.array([[float(i)]]) for i in range(9)] + [np.array([[-1.0]])]
        results = await asyncio.gather(*(batcher.submit(b) for b in bad), return_exceptions=True)
        assert calls == [10]  # all of them shared one batch
        assert all(isinstance(r, ValueError) and str(r) == "negative input" for r in results)
        good = await asyncio.gather(*(batcher.submit(np.array([[float(i)]])) for i in range(5)))
        assert [g.tolist() for g in good] == [[0.0], [10.0], [20.0], [30.0], [40.0]]
        assert batcher.stats["batches"] == 2
        await batcher.close()

    asyncio.run(main())


def test_a_wrong_number_of_output_rows_fails_the_batch_not_the_batcher() -> None:
    async def main() -> None:
        batcher = MicroBatcher(lambda data: np.zeros(1), max_batch_size=8)
        results = await asyncio.gather(*(batcher.submit(np.ones((1, 1))) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, ValueError) and "returned 1 rows for a batch of 3" in str(r) for r in results)
        assert (await batcher.submit(np.ones((1, 1)))).tolist() == [0.0]  # a lone request is not split

    asyncio.run(main())


def test_mixed_column_sets_and_dtypes_are_never_concatenated() -> None:
    seen: list[tuple[tuple[str, ...], tuple[str, ...]]] = []

    def predict(data: pd.DataFrame) -> np.ndarray:
        seen.append((tuple(data.columns), tuple(str(t) for t in data.dtypes)))
        assert not data.isna().any().any(), "frames with different columns were concatenated"
        return data.iloc[:, 0].to_numpy() + len(data.columns)

    ab = [pd.DataFrame({"a": [float(i)], "b": [1.0]}) for i in range(20)]
    ac = [pd.DataFrame({"a": [float(i)], "c": [1.0]}) for i in range(20)]
    ints = [pd.DataFrame({"a": [i], "b": [1]}) for i in range(20)]
    requests = [r for triple in zip(ab, ac, ints, strict=True) for r in triple]

    async def main() -> list[Any]:
        batcher = MicroBatcher(predict, max_batch_size=64, max_wait_ms=5.0)
        return await asyncio.gather(*(batcher.submit(r) for r in requests))

    out = asyncio.run(main())
    for request, got in zip(requests, out, strict=True):
        assert got.tolist() == [request["a"].iloc[0] + 2]
        assert got.dtype == request["a"].dtype
    assert len(seen) < len(requests)  # batches did form
    assert set(seen) == {(("a", "b"), ("float64", "float64")), (("a", "c"), ("float64", "float64")),
                         (("a", "b"), ("int64", "int64"))}  # fmt: skip


def test_a_cancelled_waiter_does_not_break_the_batch() -> None:
    release = threading.Event()

    def predict(data: np.ndarray) -> np.ndarray:
        release.wait(5)
        return data[:, 0] + 1

    async def main() -> None:
        batcher = MicroBatcher(predict, max_batch_size=32, max_wait_ms=1.0, max_concurrency=1)
        first = asyncio.ensure_future(batcher.submit(np.array([[0.0]])))  # runs; the rest queue behind it
        await asyncio.sleep(0.01)
        waiters = [asyncio.ensure_future(batcher.submit(np.array([[float(i)]]))) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        waiters[2].cancel()
        release.set()
        assert (await first).tolist() == [1.0]
        results = await asyncio.gather(*waiters, return_exceptions=True)
        assert isinstance(results[2], asyncio.CancelledError)
        assert [r.tolist() for i, r in enumerate(results) if i != 2] == [[2.0], [3.0], [5.0], [6.0]]
        # cancelling a waiter whose batch is already running drops only its rows
        release.clear()
        running = [asyncio.ensure_future(batcher.submit(np.array([[float(i)]]))) for i in range(3)]
        while batcher.stats["batches"] < 3:
            await asyncio.sleep(0.001)
        running[0].cancel()
        release.set()
        results = await asyncio.gather(*running, return_exceptions=True)
        assert isinstance(results[0], asyncio.CancelledError)
        assert [r.tolist() for r in results[1:]] == [[2.0], [3.0]]
        assert (await batcher.submit(np.array([[9.0]]))).tolist() == [10.0]

    asyncio.run(main())


def test_close_fails_queued_requests_and_refuses_new_ones() -> None:
    async def main() -> None:
        batcher = MicroBatcher(lambda d: d, max_batch_size=4, run_in_thread=False)
        assert (await batcher.submit(np.ones(2))).tolist() == [1.0, 1.0]
        await batcher.close()
        with pytest.raises(RuntimeError, match="closed"):
            await batcher.submit(np.ones(2))

    asyncio.run(main())


def _timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
