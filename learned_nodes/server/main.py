"""Process entry shared by the model servers: build the node, walk it to active when its config
says `autostart`, spin it on a multi-threaded executor sized for batching, shut down cleanly."""
from __future__ import annotations

from typing import Callable


def serve(make_node: Callable[[], object], args=None) -> int:
    """Run a ModelServerNode made by `make_node` until shutdown; returns the exit code."""
    from rclpy.executors import MultiThreadedExecutor

    from suite_tools.node_main import run_node

    holder: dict = {}

    def make():
        node = holder["node"] = make_node()
        if node.config.autostart:
            node.autostart()
        return node

    def executor():
        # one thread per request served or queued, plus those answering "queue full" and lifecycle
        return MultiThreadedExecutor(num_threads=holder["node"].executor_threads)

    return run_node(make, args, executor_factory=executor)
