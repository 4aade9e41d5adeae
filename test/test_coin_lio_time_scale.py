"""One path from message to core: the offline runner reads clouds with the node's conversion, so a
config that sets lio.preprocess.time_scale means the same to both (the runner used to drop it).
The bag: a simulated one whose per-point time field `t` holds microseconds instead of Ouster's
nanoseconds, so it needs time_scale 1e-6."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from suite_tools.testing import spin_until, subscription_matched

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def micro_bag(tmp_path_factory) -> Path:
    """(sequence dir) with bag_us/: every cloud's `t` in microseconds; other messages as recorded."""
    from bag_fixtures import simulated_sequence
    from suite_tools.pointcloud2 import pointcloud2_to_array
    from suite_tools.bag_io import BagWriter, make_pointcloud2, read_bag

    seq = simulated_sequence(tmp_path_factory.mktemp("ts") / "urban", "urban", 4.0, 5, 32, 512)
    with BagWriter(seq / "bag_us") as w:
        for m in read_bag(seq / "bag"):
            msg = m.decode()
            if m.topic == "/ouster/points":
                cloud = pointcloud2_to_array(msg).copy()
                cloud["t"] //= 1000                                       # ns -> us
                stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
                msg = make_pointcloud2(cloud, stamp, msg.header.frame_id, is_dense=msg.is_dense)
            w.write(m.topic, m.t_ns, msg, qos=m.qos)
    return seq


def _config(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "config" / "coin_lio.yaml").read_text())
    params = next(v["ros__parameters"] for k, v in data.items() if str(k).rsplit("/", 1)[-1] == "coin_lio_node")
    params["lio"]["preprocess"]["time_scale"] = 1e-6                     # t is in us
    params.update(changes)
    path = tmp_path / "coin_lio.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_runner_reads_times_with_time_scale(micro_bag, tmp_path):
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import iter_bag_events

    cfg = load_node_config(_config(tmp_path))
    scaled = [s for k, s in iter_bag_events(micro_bag / "bag_us", cfg) if k == "scan"]
    original = [s for k, s in iter_bag_events(micro_bag / "bag", load_node_config(None)) if k == "scan"]
    assert len(scaled) == len(original) == 40
    for a, b in zip(scaled, original):
        np.testing.assert_allclose(a.times, b.times, atol=1.5e-6)       # us truncation
        assert a.end - a.stamp > 0.09                                    # a 100 ms sweep, not 0.1 ms
    cfg.lio.preprocess.time_scale = 0.0                                  # what the runner used to do
    unscaled = next(s for k, s in iter_bag_events(micro_bag / "bag_us", cfg) if k == "scan")
    assert unscaled.end - unscaled.stamp < 1e-3


def test_node_and_runner_agree_with_time_scale(graph, ros_context, micro_bag, tmp_path):
    rclpy = pytest.importorskip("rclpy")
    from nav_msgs.msg import Odometry
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import run

    cfg_path = _config(tmp_path, input_reliability="reliable", max_scan_queue=1000, imu_wait=2.0)
    summary = run(micro_bag / "bag_us", load_node_config(cfg_path), tmp_path / "offline", progress=False)
    offline = np.loadtxt(tmp_path / "offline" / "trajectory.tum")
    assert summary["scans"] == len(offline) > 25
    node = rclpy.create_node("time_scale_listener")
    got: list = []
    node.create_subscription(Odometry, "/coin_lio_node/odometry", got.append,
                             QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    launcher = str(Path(sys.executable).parent / "coin-lio-suite-launch")
    graph.spawn("launch", [launcher, str(ROOT / "launch" / "coin_lio.launch.yaml"), f"config:={cfg_path}"])

    assert spin_until(node, lambda: subscription_matched(node, "/coin_lio_node/odometry"), 30)
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(micro_bag / "bag_us"),
                                           "--wait-subscribers", "1"))
    assert spin_until(node, lambda: graph.procs["player"].poll() is not None, 90), graph.log("player")
    assert spin_until(node, lambda: len(got) >= len(offline), 60), \
        f"{len(got)} of {len(offline)} poses; node log:\n{graph.log('launch')[-3000:]}"
    assert graph.interrupt("launch") == 0
    online = np.array([[m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, m.pose.pose.position.x,
                        m.pose.pose.position.y, m.pose.pose.position.z] for m in got])
    np.testing.assert_allclose(online, offline[:, :4], atol=1e-6, err_msg=graph.log("launch")[-2000:])
    node.destroy_node()
