"""Lifecycle base of the model servers (rclpy.lifecycle.LifecycleNode).

configure: load the model from its local path (subclass `load_model`); activate: start the batching
worker and serve; deactivate: stop serving (queued requests fail with a reason); cleanup: free the
model; shutdown: all of it. Services live in their own reentrant callback group, so a slow request
never blocks the lifecycle services or other requests; answers while not active say so.
`autostart` (parameter) runs configure + activate at start-up for `ros2 launch` users.

Bursts: services use `request_qos()` (reliable, history `limits.request_history` instead of the
default 10, which dropped every request beyond ~10 while the threads were busy), and the executor
has `executor_threads` = max_batch + max_queue + 2 threads, so that every request is taken: it is
served, waits in the queue (answered within `request_timeout_s`), or is answered "queue full" at once.
"""
from __future__ import annotations

import gc
import threading
import traceback
from typing import Any, Generic, Sequence, TypeVar

from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from learned_nodes.server.batching import BatchQueue, QueueClosed, QueueFull
from learned_nodes.server.limits import ServerLimits
from learned_nodes.server.params import declare_config

C = TypeVar("C")


class NotServing(RuntimeError):
    """The node is not active (unconfigured, inactive, or its model failed to load)."""


class ModelServerNode(LifecycleNode, Generic[C]):
    """Subclasses set `config_class` (a dataclass with `limits: ServerLimits` and `autostart: bool`),
    implement `load_model()` and `serve_batch(items)`, and create their services in __init__ with
    `callback_group=self.service_group, qos_profile=self.request_qos()`."""

    config_class: type

    def __init__(self, node_name: str, **kwargs: Any) -> None:
        super().__init__(node_name, **kwargs)
        self.config: C = declare_config(self, self.config_class)
        self.limits: ServerLimits = self.config.limits  # type: ignore[attr-defined]
        self.service_group = ReentrantCallbackGroup()
        self.model: Any = None
        self._queue: BatchQueue | None = None
        self._lock = threading.Lock()
        # image conversions at once (each up to ~20 B per input pixel): the other taken requests
        # wait for one, so a burst of maximal images costs (max_batch + 2) conversions, not one per thread
        self.conversion_slots = threading.BoundedSemaphore(self.limits.max_batch + 2)
        self.last_error = ""

    # -- what a concrete server provides -------------------------------------------------------
    def load_model(self) -> Any:
        raise NotImplementedError

    def serve_batch(self, items: list) -> Sequence[Any]:
        """Results (or Exception instances) for a batch of validated requests; runs on the worker."""
        raise NotImplementedError

    # -- lifecycle ------------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.model = self.load_model()
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, the node keeps running
            self.last_error = f"model failed to load: {exc}"
            self.get_logger().error(self.last_error)
            self.get_logger().debug(traceback.format_exc())
            return TransitionCallbackReturn.FAILURE
        self.last_error = ""
        self.get_logger().info("configured: model loaded")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        lim = self.limits
        with self._lock:
            self._queue = BatchQueue(self._serve_safely, lim.max_batch, lim.max_wait_ms / 1000.0,
                                     lim.max_queue, name=f"{self.get_name()}-worker")
        self.get_logger().info(f"active: serving (max batch {lim.max_batch}, wait {lim.max_wait_ms} ms)")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_queue()
        self.get_logger().info("inactive: not serving")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._free()
        self.get_logger().info("cleaned up: model freed")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState | None = None) -> TransitionCallbackReturn:
        self._stop_queue()
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_queue()
        self._free()
        return TransitionCallbackReturn.SUCCESS

    def autostart(self) -> None:
        """configure + activate now (parameter `autostart`); a failure leaves the node unconfigured."""
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # -- serving --------------------------------------------------------------------------------
    def request_qos(self) -> QoSProfile:
        """QoS of every service / action service of the server (requests and responses)."""
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=self.limits.request_history,
                          reliability=ReliabilityPolicy.RELIABLE)

    @property
    def executor_threads(self) -> int:
        """Threads of the executor: one per request being served or queued, + 2 that answer the
        requests beyond (queue full) and the lifecycle services."""
        return self.limits.max_batch + self.limits.max_queue + 2

    @property
    def is_active(self) -> bool:
        return self._queue is not None

    def not_serving(self) -> NotServing:
        """The error a request gets while the node is not active (with the load failure, if any)."""
        why = f" ({self.last_error})" if self.last_error else ""
        return NotServing(f"node is not active{why}")

    def submit(self, item: Any) -> Any:
        """Queue a validated request and wait for its result (raises NotServing, TimeoutError, ...)."""
        queue = self._queue
        if queue is None:
            raise self.not_serving()
        try:
            return queue.submit(item, self.limits.request_timeout_s)
        except (QueueClosed, QueueFull) as exc:
            raise NotServing(str(exc)) from None

    def _serve_safely(self, items: list) -> Sequence[Any]:
        try:
            return self.serve_batch(items)
        except Exception as exc:  # noqa: BLE001 - isolate the request that broke the batch
            if len(items) == 1:
                self.get_logger().warning(f"inference failed: {exc}")
                return [RuntimeError(f"inference failed: {exc}")]
            return [r for item in items for r in self._serve_safely([item])]

    def _stop_queue(self) -> None:
        with self._lock:
            queue, self._queue = self._queue, None
        if queue is not None:
            queue.close()

    def _free(self) -> None:
        self.model = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass
        release_freed_heap()


def release_freed_heap() -> None:
    """Give the heap memory freed with the model back to the OS (glibc malloc_trim: every thread
    keeps its own arena, and freed model tensors otherwise stay in them: measured in-process,
    classifier load -> free ~520 MB RSS without, ~430 MB with). No-op where libc has no malloc_trim."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
