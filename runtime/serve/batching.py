"""Dynamic batching: concurrent requests for one model become one onnxruntime call.

Each model has a `Batcher`: a queue and one asyncio task that turns the queue into
batches. Every batch runs on one of the `Workers` threads shared by all models
(`--workers`; onnxruntime releases the GIL, so the event loop keeps serving meanwhile),
and a semaphore of the same size says when a thread is free. A batch closes

- when it holds `max_batch` rows,
- when `max_delay` seconds have passed since its first request arrived, or
- at once, when no other request for the model is being received: waiting for a
  request that does not exist only adds latency (one client alone never waits).

Then it waits for a free thread, taking in whatever queued meanwhile, so under load the
batches grow by themselves while the threads are busy. Requests are stacked along the
model's batch dim only when their other dims agree; the outputs are split back by rows.
A model without a symbolic batch dim runs one request per call. If a stacked call
fails, each request of it is run alone, so one bad request fails only itself.

A model whose batch-1 call takes less than `INLINE_BELOW` (measured at start-up: the
example MLPs take 30-50 µs) runs on the event loop itself: handing it to a thread and
back costs more than the call, and the loop is held no longer than parsing one JSON
request holds it. Slower models, and models whose inputs have other symbolic dims
(nothing to measure with), always run on the threads.

On the example MLPs a row of a batch comes out bit for bit as that row alone (the tests
check it); a kernel that sums in another order for another batch size could differ in
the last bits of a float.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .protocol import DTYPES, Signature

INLINE_BELOW = 200e-6  # seconds per batch-1 call; see the module docstring

Outputs = dict[str, np.ndarray]


class InferenceError(Exception):
    """onnxruntime failed on a request; its message says why."""


class Workers:
    """Threads that run onnxruntime calls and hand each result back to the event loop.

    Leaner than `loop.run_in_executor` (no concurrent and asyncio futures chained per
    call): a job is a queue entry, its answer one `call_soon_threadsafe`."""

    def __init__(self, n: int) -> None:
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = [
            threading.Thread(target=self._work, name=f"dlc-onnxruntime-{i}", daemon=True)
            for i in range(n)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[[Any], Any], arg: Any, done: Callable[[Any], None]) -> None:
        """Run `fn(arg)` on a thread; then `done(result or exception)` on this loop."""
        self._jobs.put((asyncio.get_running_loop(), fn, arg, done))

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, fn, arg, done = job
            try:
                result = fn(arg)
            except BaseException as e:  # noqa: BLE001 - handed to `done`, which answers
                result = e
            try:
                loop.call_soon_threadsafe(done, result)
            except RuntimeError:  # the loop is closed: nobody waits for the answer
                pass

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for t in self._threads:
            t.join()


@dataclass(slots=True)
class _Pending:
    feeds: dict[str, np.ndarray]
    rows: int
    key: tuple[tuple[int, ...], ...]  # the non-batch dims: only equal keys stack
    future: asyncio.Future[Outputs]


class Batcher:
    """One model's queue of requests and the task that runs them in batches."""

    def __init__(
        self,
        session: Any,
        signature: Signature,
        *,
        workers: Workers,
        slots: asyncio.Semaphore,
        max_batch: int,
        max_delay: float,
        on_batch: Callable[[int, float], None],
    ) -> None:
        self.session = session
        self.signature = signature
        self.batchable = signature.batch_dim is not None
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.receiving = 0  # requests for this model being read and parsed right now
        self.running = 0  # onnxruntime calls for this model on the worker threads now
        self._workers = workers
        self._slots = slots
        self._on_batch = on_batch  # (rows, seconds) of every onnxruntime call
        self._names = [t.name for t in signature.inputs]
        self._outputs = [t.name for t in signature.outputs]
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.inline = self._measure() < INLINE_BELOW

    def _measure(self) -> float:
        """The median time of a few batch-1 calls on zeros (inf when the inputs have
        other symbolic dims, or the call fails)."""
        if not self.batchable or any(
            any(d == -1 for d in t.wire_shape[1:]) for t in self.signature.inputs
        ):
            return float("inf")
        feeds = {t.name: np.zeros([1, *t.wire_shape[1:]], DTYPES[t.datatype])
                 for t in self.signature.inputs}  # fmt: skip
        times = []
        try:
            for _ in range(7):
                start = time.perf_counter()
                self.session.run(None, feeds)
                times.append(time.perf_counter() - start)
                if times[-1] > 100 * INLINE_BELOW:  # a slow model: no need to ask again
                    return times[-1]
        except Exception:  # noqa: BLE001 - such a model is served, just not inline
            return float("inf")
        return sorted(times)[len(times) // 2]

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while self._queue:
            item = self._queue.popleft()
            if not item.future.done():
                item.future.set_exception(InferenceError("the server is shutting down"))

    def begin_receiving(self) -> None:
        self.receiving += 1

    def end_receiving(self) -> None:
        self.receiving -= 1
        if not self.receiving:
            self._wakeup.set()

    async def infer(self, feeds: dict[str, np.ndarray], rows: int) -> Outputs:
        """The model's outputs for one request, computed in some batch."""
        key = tuple(feeds[n].shape[1:] for n in self._names) if self.batchable else ()
        future: asyncio.Future[Outputs] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(feeds, rows, key, future))
        self._queued_rows += rows
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            if self.batchable and self.max_delay > 0:
                await self._gather()
            await self._slots.acquire()
            batch = self._take()
            self.running += 1
            if self.inline:
                self._finish(batch, self._call(batch))
            else:
                self._workers.submit(self._call, batch, partial(self._finish, batch))

    async def _gather(self) -> None:
        """Wait for more requests while some are on their way, up to max_delay."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_delay
        while self.receiving and self._queued_rows < self.max_batch:
            self._wakeup.clear()
            try:
                async with asyncio.timeout_at(deadline):
                    await self._wakeup.wait()
            except TimeoutError:
                return

    def _take(self) -> list[_Pending]:
        head = self._queue.popleft()
        batch, rows = [head], head.rows
        if self.batchable:
            skipped = []
            while self._queue and rows < self.max_batch:
                item = self._queue.popleft()
                if item.key == head.key and rows + item.rows <= self.max_batch:
                    batch.append(item)
                    rows += item.rows
                else:
                    skipped.append(item)
            self._queue.extendleft(reversed(skipped))
        self._queued_rows -= rows
        return batch

    def _call(self, batch: list[_Pending]) -> tuple[list[Outputs | Exception], int, float]:
        """On a pool thread: run the batch; the outputs (or the error) of each request."""
        start = time.perf_counter()
        rows = sum(item.rows for item in batch)
        if len(batch) == 1:
            results: list[Outputs | Exception] = [self._call_one(batch[0].feeds)]
        else:
            stacked = {n: np.concatenate([item.feeds[n] for item in batch]) for n in self._names}
            try:
                outs = self.session.run(None, stacked)
                if any(o.shape[:1] != (rows,) for o in outs):
                    raise InferenceError("an output's batch dim differs from the inputs'")
            except Exception:  # noqa: BLE001 - find the request at fault: run each alone
                results = [self._call_one(item.feeds) for item in batch]
            else:
                results = []
                at = 0
                for item in batch:
                    end = at + item.rows
                    results.append({n: o[at:end] for n, o in zip(self._outputs, outs, strict=True)})
                    at = end
        return results, rows, time.perf_counter() - start

    def _call_one(self, feeds: dict[str, np.ndarray]) -> Outputs | Exception:
        try:
            return dict(zip(self._outputs, self.session.run(None, feeds), strict=True))
        except Exception as e:  # noqa: BLE001 - onnxruntime's words go to the client
            return InferenceError(f"onnxruntime failed: {e}")

    def _finish(self, batch: list[_Pending], outcome: Any) -> None:
        """Back on the event loop: free the thread, answer each request."""
        self._slots.release()
        self.running -= 1
        if isinstance(outcome, BaseException):  # a bug in _call itself
            results = [InferenceError(f"the batch could not run: {outcome!r}")] * len(batch)
        else:
            results, rows, seconds = outcome
            self._on_batch(rows, seconds)
        for item, result in zip(batch, results, strict=True):
            if item.future.done():  # the request was given up
                continue
            if isinstance(result, Exception):
                item.future.set_exception(result)
            else:
                item.future.set_result(result)
