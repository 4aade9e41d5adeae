"""Faults of the running suite: a model server killed mid-run is restarted by the launcher (the
launch file asks for respawn) -- clients get errors meanwhile, then answers again."""
from __future__ import annotations

import array
import os
import re
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = str(Path(sys.executable).parent / "coin-lio-suite-launch")


def _call(node, cli, req, timeout):
    if not cli.service_is_ready():
        return None
    fut = cli.call_async(req)
    rclpy.spin_until_future_complete(node, fut, timeout_sec=timeout)
    return fut.result() if fut.done() else None


def test_killed_model_server_is_restarted_and_answers_again(graph, ros_context):
    from coin_lio_suite.srv import ClassifyImage
    from sensor_msgs.msg import Image

    graph.spawn("launch", [LAUNCHER, str(ROOT / "launch" / "classifier.launch.yaml")])
    node = rclpy.create_node("fault_client")
    cli = node.create_client(ClassifyImage, "/classifier_node/classify")
    img = Image(height=32, width=32, encoding="mono8", step=32)
    img.data = array.array("B", np.random.default_rng(0).integers(0, 255, 32 * 32, dtype=np.uint8).tobytes())
    req = ClassifyImage.Request(image=img, class_names=["bag", "boot"], top_k=1)

    def answered(deadline_s: float) -> bool:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            res = _call(node, cli, req, 5.0)
            if res is not None and res.success:
                return True
            rclpy.spin_once(node, timeout_sec=0.2)
        return False

    assert answered(60), graph.log("launch")[-2000:]
    pid = int(re.findall(r"started node 'classifier_node' \(pid (\d+)\)", graph.log("launch"))[-1])
    os.kill(pid, signal.SIGKILL)
    failures = 0
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:          # right after the kill: no answers
        res = _call(node, cli, req, 1.0)
        failures += res is None or not res.success
        rclpy.spin_once(node, timeout_sec=0.1)
    assert failures > 0
    assert answered(60), graph.log("launch")[-3000:]          # the respawned server answers
    log = graph.log("launch")
    assert re.search(r"node 'classifier_node' \(pid %d\) died" % pid, log), log[-2000:]
    assert len(re.findall(r"started node 'classifier_node'", log)) >= 2 or "respawn" in log
    assert graph.procs["launch"].poll() is None            # the launcher kept the graph up
    assert graph.interrupt("launch") == 0
    node.destroy_node()
