"""Hundreds of generated malformed messages on every topic coin_lio_node subscribes to, brought up
through launch/suite.launch.yaml: the node must not die, must never publish a NaN pose, must log
each kind of problem once (then every 100th), and must still track a valid stream afterwards."""
from __future__ import annotations

import array
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from nav_msgs.msg import Odometry  # noqa: E402
from sensor_msgs.msg import Imu, PointCloud2, PointField  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = str(Path(sys.executable).parent / "coin-lio-suite-launch")
N_BAD = 300


def _bad_cloud(rng: np.random.Generator, k: int) -> PointCloud2:
    """A random corruption of an Ouster-like 8x64 cloud."""
    h, w = 8, 64
    step = 48
    msg = PointCloud2(height=h, width=w, point_step=step, row_step=step * w, is_dense=False)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + k, 0
    names = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("intensity", 16, 7), ("t", 20, 6), ("ring", 26, 4)]
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in names]
    data = rng.normal(0, 10, h * w * step // 4).astype(np.float32)
    kind = k % 10
    if kind == 0:                                    # data shorter than declared
        data = data[: rng.integers(0, data.size)]
    elif kind == 1:                                  # a field past the point step
        msg.fields[2].offset = step + 4
    elif kind == 2:                                  # unknown datatype
        msg.fields[0].datatype = 42
    elif kind == 3:                                  # huge declared size, tiny data
        msg.width, msg.height, msg.row_step = 10**8, 10**4, step * 10**8
    elif kind == 4:                                  # NaN / inf everywhere
        data[:] = rng.choice([np.nan, np.inf, -np.inf], data.size)
    elif kind == 5:                                  # no x field
        msg.fields = msg.fields[1:]
    elif kind == 6:                                  # empty
        msg.width, msg.row_step, data = 0, 0, data[:0]
    elif kind == 7:                                  # duplicate field name
        msg.fields[1].name = "x"
    elif kind == 8:                                  # absurd per-point times
        raw = data.view(np.uint32).reshape(h * w, step // 4)
        raw[:, 5] = rng.integers(2**31, 2**32 - 1, h * w, dtype=np.uint32)
    elif kind == 9:                                  # zero point step
        msg.point_step = 0
    msg.data = array.array("B", data.tobytes())
    return msg


def _bad_imu(rng: np.random.Generator, k: int) -> Imu:
    m = Imu()
    kind = k % 5
    t = 500.0 + (k % 7) * 0.001 if kind == 3 else 500.0 + k * 0.01
    m.header.stamp.sec, m.header.stamp.nanosec = int(t), int((t % 1) * 1e9)
    acc = rng.normal(0, 1, 3)
    gyro = rng.normal(0, 0.1, 3)
    if kind == 0:
        acc[rng.integers(3)] = np.nan
    elif kind == 1:
        gyro[rng.integers(3)] = np.inf
    elif kind == 2:
        acc *= 1e9
    elif kind == 4:
        m.header.stamp.sec = 0                       # time far in the past
    m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = map(float, acc)
    m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = map(float, gyro)
    return m


def test_fuzzed_inputs_are_survived_counted_and_logged_once_per_kind(graph, ros_context, tmp_path):
    from bag_fixtures import simulated_sequence

    seq = simulated_sequence(tmp_path / "urban", "urban", 3.0, 4, 32, 512)
    graph.spawn("suite", [LAUNCHER, str(ROOT / "launch" / "suite.launch.yaml"), "enable_classifier:=false"])
    node = rclpy.create_node("fuzzer")
    poses: list = []
    node.create_subscription(Odometry, "/coin_lio_node/odometry", poses.append, 100)
    pc = node.create_publisher(PointCloud2, "/ouster/points", 50)
    imu = node.create_publisher(Imu, "/ouster/imu", 200)
    deadline = time.monotonic() + 30
    while not (pc.get_subscription_count() and imu.get_subscription_count()) and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert pc.get_subscription_count(), graph.log("suite")
    time.sleep(0.5)
    rng = np.random.default_rng(0)
    for k in range(N_BAD):
        pc.publish(_bad_cloud(rng, k))
        imu.publish(_bad_imu(rng, k))
        if k % 20 == 0:
            rclpy.spin_once(node, timeout_sec=0.01)
    time.sleep(1.0)
    assert graph.procs["suite"].poll() is None, "the graph died:\n" + graph.log("suite")[-3000:]
    # a valid stream afterwards is tracked
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(seq / "bag"),
                                           "--wait-subscribers", "1"))
    deadline = time.monotonic() + 60
    while len(poses) < 10 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    assert len(poses) >= 10, graph.log("suite")[-3000:]
    xyzw = np.array([[p.pose.pose.position.x, p.pose.pose.position.y, p.pose.pose.position.z,
                      p.pose.pose.orientation.w] for p in poses])
    assert np.all(np.isfinite(xyzw))
    graph.wait("player", 60)
    assert graph.interrupt("suite") == 0
    log = graph.log("suite")
    warnings = [line for line in log.splitlines() if "[WARN]" in line]
    kinds = {m.group(1) for line in warnings if (m := re.search(r"\[(\w+): \d+ so far\]", line))}
    assert {"cloud_bad", "imu_nan"} <= kinds, warnings[:20]
    # logged once per kind, then every 100th: a few dozen lines, not hundreds
    assert len(warnings) <= 4 * len(kinds) + 2 * N_BAD // 100, len(warnings)
    assert "Traceback" not in log
    node.destroy_node()

