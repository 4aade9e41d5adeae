"""coin_lio_node as a robot runs it under the suite's launcher: in a namespace, with a custom
parameter file (values read back from the running node), publishing TF as tf2_ros would.

A subscriber composes what arrives on /tf (odom -> base, each scan) and /tf_static (base ->
IMU -> LiDAR, latched) and compares it with the odometry message and the configured extrinsic.
The same launch under the real ROS 2 launch engine is checked in the real-engine tests.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("tf2_msgs.msg", reason="tf2_msgs is not built (run make setup)")
from nav_msgs.msg import Odometry  # noqa: E402
from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from tf2_msgs.msg import TFMessage  # noqa: E402

from suite_tools.param_files import node_section  # noqa: E402
from suite_tools.tf_broadcast import matrix  # noqa: E402
from suite_tools.testing import spin_until  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = str(Path(sys.executable).parent / "coin-lio-suite-launch")
LAUNCH_FILE = str(ROOT / "launch" / "coin_lio.launch.yaml")
BASE_TO_IMU = [0.1, -0.2, 0.3, 0.0, 0.0, 0.38268343, 0.92387953]   # 45 deg yaw, off-centre


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    from bag_fixtures import simulated_sequence

    return simulated_sequence(tmp_path_factory.mktemp("seq") / "urban", "urban", 4.0, 5, 32, 512)


def _custom_config(tmp_path: Path, sequence: Path, key: str = "/**/coin_lio_node") -> tuple[Path, np.ndarray]:
    """A user's file: non-default values, the sequence's extrinsic; returns (path, T_imu_lidar)."""
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs

    _, cfg, _ = resolve_inputs(sequence, load_node_config(ROOT / "config" / "coin_lio.yaml"), None)
    params = node_section(yaml.safe_load((ROOT / "config" / "coin_lio.yaml").read_text()), "coin_lio_node")
    params.update(base_frame="robot1_base", odom_frame="robot1_odom", base_to_imu=BASE_TO_IMU,
                  path_every=3, imu_wait=2.0, max_scan_queue=1000, input_reliability="reliable")
    params["lio"]["extrinsic"] = {"translation": list(cfg.lio.extrinsic.translation),
                                  "rotation": list(cfg.lio.extrinsic.rotation)}
    path = tmp_path / "my_coin_lio.yaml"
    path.write_text(yaml.safe_dump({key: {"ros__parameters": params}}))
    return path, cfg.lio.extrinsic.matrix()


def test_plain_key_under_a_namespace_is_reported(tmp_path, sequence):
    """A file keyed `coin_lio_node:` does not reach /robot1/coin_lio_node: the launcher says so."""
    path, _ = _custom_config(tmp_path, sequence, key="coin_lio_node")
    res = subprocess.run([LAUNCHER, LAUNCH_FILE, "--print", "namespace:=robot1", f"config:={path}"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert f"no entry of parameter file {path} applies to node /robot1/coin_lio_node" in res.stderr
    res = subprocess.run([LAUNCHER, LAUNCH_FILE, "--print", f"config:={path}"],
                         capture_output=True, text=True, timeout=60)
    assert "warning" not in res.stderr, res.stderr


def _parameters(node, fqn: str, names: list[str]) -> list:
    cli = node.create_client(GetParameters, f"{fqn}/get_parameters")
    assert cli.wait_for_service(timeout_sec=60), f"{fqn}/get_parameters not up"
    fut = cli.call_async(GetParameters.Request(names=names))
    rclpy.spin_until_future_complete(node, fut, timeout_sec=30)
    assert fut.done(), "get_parameters did not answer"
    return [v.string_value or v.integer_value or v.double_value for v in fut.result().values]


def test_namespace_custom_config_and_tf(graph, ros_context, sequence, tmp_path):
    from coin_lio.ros_messages import pose_to_matrix

    cfg_path, T_imu_lidar = _custom_config(tmp_path, sequence)
    graph.spawn("launch", [LAUNCHER, LAUNCH_FILE, "namespace:=robot1", f"config:={cfg_path}"])
    node = rclpy.create_node("tf_listener")
    assert _parameters(node, "/robot1/coin_lio_node", ["path_every", "base_frame", "imu_wait"]) \
        == [3, "robot1_base", 2.0], graph.log("launch")[-3000:]

    odom, tf, static = [], {}, {}
    node.create_subscription(Odometry, "/robot1/coin_lio_node/odometry", odom.append,
                             QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE))
    node.create_subscription(TFMessage, "/tf", lambda m: tf.update(
        {(t.header.stamp.sec, t.header.stamp.nanosec, t.header.frame_id, t.child_frame_id): matrix(t)
         for t in m.transforms}), QoSProfile(depth=100))
    node.create_subscription(TFMessage, "/tf_static", lambda m: static.update(
        {t.child_frame_id: (t.header.frame_id, matrix(t)) for t in m.transforms}),
        QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL, reliability=ReliabilityPolicy.RELIABLE))
    assert spin_until(node, lambda: node.count_publishers("/robot1/coin_lio_node/odometry") > 0, 30)
    bag = sequence / "bag"
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(bag), "--wait-subscribers", "1"))
    assert spin_until(node, lambda: graph.procs["player"].poll() is not None, 90), graph.log("player")
    assert spin_until(node, lambda: len(odom) >= 20 and len(static) >= 2, 60), \
        f"{len(odom)} poses, static {sorted(static)}; log:\n{graph.log('launch')[-3000:]}"
    spin_until(node, lambda: False, 0.5)     # the last /tf messages of the last scan

    # /tf carries odom -> base at each odometry stamp, equal to the odometry's pose
    matched = 0
    for m in odom:
        key = (m.header.stamp.sec, m.header.stamp.nanosec, "robot1_odom", "robot1_base")
        assert m.header.frame_id == "robot1_odom" and m.child_frame_id == "robot1_base"
        if key in tf:
            p, q = m.pose.pose.position, m.pose.pose.orientation
            T = pose_to_matrix([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
            np.testing.assert_allclose(tf[key], T, atol=1e-6)
            matched += 1
    assert matched >= 0.9 * len(odom), f"only {matched} of {len(odom)} poses on /tf"

    # /tf_static: robot1_base -> IMU frame -> LiDAR frame, composed = base_to_imu * extrinsic
    imu_parent, T_base_imu = next(v for v in static.values() if v[0] == "robot1_base")
    imu_frame = next(k for k, v in static.items() if v[0] == "robot1_base")
    lidar_parent, T_imu_lidar_tf = next(v for k, v in static.items() if v[0] == imu_frame)
    np.testing.assert_allclose(T_base_imu, pose_to_matrix(BASE_TO_IMU), atol=1e-6)
    np.testing.assert_allclose(T_base_imu @ T_imu_lidar_tf, pose_to_matrix(BASE_TO_IMU) @ T_imu_lidar, atol=1e-6)
    assert imu_parent == "robot1_base" and lidar_parent == imu_frame
    assert graph.interrupt("launch") == 0
    node.destroy_node()
