"""Process entry shared by the model servers: build the node, walk it to active when its config
says `autostart`, spin it on a multi-threaded executor sized for batching, shut down cleanly, and
end the process without the interpreter's teardown.

Why the last step: once the node is destroyed and rclpy is shut down, nothing is left to do, but
Python's finalisation still walks torch's and transformers' module graph (garbage collection,
C++ static destructors): 1.3 s of CPU on an idle machine here, and more than 15 s on a busy one,
where `ros2 launch` then escalates to SIGTERM and reports the server as died (exit -15)."""
from __future__ import annotations

import logging
import os
import sys
from typing import Callable


def serve(make_node: Callable[[], object], args=None) -> int:
    """Run a ModelServerNode made by `make_node` until shutdown, then end the process with the
    exit code (only a process entry point calls this: it does not return)."""
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

    code = run_node(make, args, executor_factory=executor)
    exit_without_teardown(code)
    return code   # not reached


def exit_without_teardown(code: int) -> None:
    """Flush what the process wrote (stdio, Python logging; rclpy.try_shutdown has flushed the ROS
    log) and end it with `code`, skipping interpreter finalisation."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # closed or broken pipe: nothing more can be written anyway
            pass
    os._exit(code)
