"""The model servers' process entry (learned_nodes.server.main.serve) ends the process with the
node's exit code once the node is shut down, with everything written flushed and without the
interpreter's teardown (which took >15 s on a busy machine with torch loaded: ros2 launch then
escalated to SIGTERM). Checked in a child process: its exit code, its piped stdout, and an atexit
handler that must not run."""
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("rclpy")

CHILD = textwrap.dedent("""
    import atexit, types
    from rclpy.node import Node
    from learned_nodes.server.main import serve

    class Finishing(Node):
        config = types.SimpleNamespace(autostart=False)
        executor_threads = 2
        def __init__(self):
            super().__init__("exit_probe")
            self.exit_code = 3           # run_node ends the spin with this code at once

    atexit.register(lambda: print("interpreter teardown ran", flush=True))
    print("written before exit, not flushed by hand", end="")
    serve(Finishing, ["exit_probe"])
    print("serve returned")
""")


def test_serve_exits_with_the_node_code_flushed_and_without_teardown(graph):
    done = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120,
                          env=graph.env)
    assert done.returncode == 3, done.stderr
    assert done.stdout == "written before exit, not flushed by hand", (done.stdout, done.stderr)
