"""Start-up and shutdown shared by every node of the suite, in the form that works on Humble,
Jazzy and Kilted: rclpy.init(), spin, then destroy_node() and rclpy.try_shutdown() in finally.
SIGINT (from the launcher or Ctrl-C) ends the spin quietly with exit code 0.
"""
from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Callable, Sequence

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # many small matrix ops: threading only hurts


def message_type(type_name: str):
    """The generated Python class for 'pkg/msg/Name' (also 'pkg/Name', 'pkg/srv/Name')."""
    parts = type_name.strip().split("/")
    if len(parts) == 2:
        parts = [parts[0], "msg", parts[1]]
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"bad message type name '{type_name}' (expected pkg/msg/Name)")
    pkg, kind, name = parts
    try:
        return getattr(importlib.import_module(f"{pkg}.{kind}"), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"message type '{type_name}' is not available: {exc}") from None


def run_node(make_node: Callable[[], object], args: Sequence[str] | None = None,
             executor_factory: Callable[[], object] | None = None) -> int:
    """Create the node, spin it until shutdown, clean up; returns the process exit code.

    The node may set `exit_code` (int) and call `rclpy.try_shutdown()`... or raise SystemExit
    from a callback to end the spin with that code.
    """
    import rclpy
    from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor

    rclpy.init(args=list(sys.argv if args is None else args))
    node = None
    code = 0
    try:
        node = make_node()
        executor = (executor_factory or SingleThreadedExecutor)()
        executor.add_node(node)
        while rclpy.ok() and getattr(node, "exit_code", None) is None:
            executor.spin_once(timeout_sec=0.1)
        code = int(getattr(node, "exit_code", None) or 0)
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    except SystemExit as exc:
        if isinstance(exc.code, str):  # a configuration error: say why, exit 2
            print(f"[{sys.argv[0]}] {exc.code}", file=sys.stderr, flush=True)
            code = 2
        else:
            code = int(exc.code or 0)
    finally:
        # a terminal's Ctrl-C reaches the whole process group and ros2 launch forwards another
        # SIGINT: one arriving in the middle of the clean-up must not turn it into a crash (-2)
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            closer = getattr(node, "on_shutdown", None)
            if callable(closer):
                closer()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
