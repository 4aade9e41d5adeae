"""A request queue served by one worker thread that groups waiting requests into batches.

`submit(item)` blocks the calling (service callback) thread until its result is ready, the
request times out, or the queue stops. The handler receives up to `max_batch` items at once
and returns one result per item (an Exception instance fails only that item).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Generic, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueClosed(RuntimeError):
    """The server stopped (deactivated or shut down) before the request was served."""


class QueueFull(RuntimeError):
    """More requests are waiting than the queue holds."""


class _Pending(Generic[T]):
    __slots__ = ("item", "deadline", "done", "result", "error", "cancelled")

    def __init__(self, item: T, deadline: float) -> None:
        self.item, self.deadline = item, deadline
        self.done = threading.Event()
        self.result = None
        self.error: BaseException | None = None
        self.cancelled = False

    def finish(self, result=None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        self.done.set()


class BatchQueue(Generic[T, R]):
    """Batches concurrent requests for `handler(list[T]) -> list[R | Exception]`."""

    def __init__(self, handler: Callable[[list[T]], Sequence[R | BaseException]], max_batch: int = 8,
                 max_wait_s: float = 0.005, max_queue: int = 64, name: str = "batch-worker") -> None:
        if max_batch < 1 or max_queue < 1 or max_wait_s < 0:
            raise ValueError("max_batch and max_queue must be >= 1, max_wait_s >= 0")
        self._handler, self.max_batch, self.max_wait_s, self.max_queue = \
            handler, max_batch, max_wait_s, max_queue
        self._queue: deque[_Pending[T]] = deque()
        self._cv = threading.Condition()
        self._closed = False
        self.batch_sizes: list[int] = []  # sizes of the batches served (bounded history)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item: T, timeout: float) -> R:
        """Queue `item`, wait for its result; TimeoutError, QueueFull, QueueClosed or the handler's error."""
        pending = _Pending(item, time.monotonic() + timeout)
        with self._cv:
            if self._closed:
                raise QueueClosed("the server is stopping")
            if len(self._queue) >= self.max_queue:
                raise QueueFull(f"{len(self._queue)} requests already waiting (limit {self.max_queue})")
            self._queue.append(pending)
            self._cv.notify_all()
        if not pending.done.wait(timeout):
            pending.cancelled = True  # the worker skips it if not yet started
            raise TimeoutError(f"no result within the request timeout of {timeout:.1f} s")
        if pending.error is not None:
            raise pending.error
        return pending.result

    def close(self, timeout: float = 5.0) -> None:
        """Stop the worker; requests still queued fail with QueueClosed."""
        with self._cv:
            self._closed = True
            waiting = list(self._queue)
            self._queue.clear()
            self._cv.notify_all()
        for p in waiting:
            p.finish(error=QueueClosed("the server stopped before serving the request"))
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    def _take_batch(self) -> list[_Pending[T]] | None:
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            if self._closed:
                return None
            fill_deadline = time.monotonic() + self.max_wait_s
            while len(self._queue) < self.max_batch and not self._closed:
                left = fill_deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            batch = []
            while self._queue and len(batch) < self.max_batch:
                batch.append(self._queue.popleft())
        now = time.monotonic()
        live = []
        for p in batch:
            if p.cancelled or now > p.deadline:
                p.finish(error=TimeoutError("the request timed out while queued"))
            else:
                live.append(p)
        return live

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if not batch:
                continue
            self.batch_sizes = (self.batch_sizes + [len(batch)])[-1000:]
            try:
                results = list(self._handler([p.item for p in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"handler returned {len(results)} results for {len(batch)} requests")
            except Exception as exc:  # noqa: BLE001 - one failing batch must not kill the server
                for p in batch:
                    p.finish(error=exc)
                continue
            for p, r in zip(batch, results):
                p.finish(error=r) if isinstance(r, BaseException) else p.finish(result=r)
