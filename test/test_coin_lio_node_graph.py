"""coin_lio_node on a graph: fed by the bag player through the launcher, its odometry equals
the offline runner's on the same bag; bad input of every kind is logged and survived."""
from __future__ import annotations

import array
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

rclpy = pytest.importorskip("rclpy")
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image, Imu, PointCloud2, PointField  # noqa: E402
from suite_tools.param_files import node_section  # noqa: E402
from suite_tools.testing import spin_until, subscription_matched  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER = str(Path(sys.executable).parent / "coin-lio-suite-launch")


@pytest.fixture(scope="module")
def sequence(tmp_path_factory):
    from bag_fixtures import simulated_sequence

    return simulated_sequence(tmp_path_factory.mktemp("seq") / "urban", "urban", 5.0, 3, 32, 512)


def _config(tmp_path, **changes) -> Path:
    data = yaml.safe_load((ROOT / "config" / "coin_lio.yaml").read_text())
    node_section(data, "coin_lio_node").update(changes)
    path = tmp_path / "coin_lio.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _collect(node, topic="/coin_lio_node/odometry"):
    got: list = []
    qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
    node.create_subscription(Odometry, topic, got.append, qos)
    return got


def test_node_odometry_equals_offline_runner(graph, ros_context, sequence, tmp_path):
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs, run

    # never drop a scan or a message here, so both paths see the same data (CI machines are slow)
    cfg_path = _config(tmp_path, max_scan_queue=1000, imu_wait=2.0, input_reliability="reliable")
    bag, cfg, gt = resolve_inputs(sequence, load_node_config(cfg_path), None)
    summary = run(bag, cfg, tmp_path / "offline", progress=False)
    offline = np.loadtxt(tmp_path / "offline" / "trajectory.tum")
    assert summary["scans"] == len(offline) > 30

    # the node gets the same extrinsic the runner read from the sequence
    data = yaml.safe_load(cfg_path.read_text())
    lio = node_section(data, "coin_lio_node")["lio"]
    lio["extrinsic"] = {"translation": list(cfg.lio.extrinsic.translation),
                        "rotation": list(cfg.lio.extrinsic.rotation)}
    lio["photometric"]["metadata_path"] = cfg.lio.photometric.metadata_path
    assert cfg.lio.photometric.metadata_path, "the runner should have taken the sequence's metadata"
    cfg_path.write_text(yaml.safe_dump(data))
    node = rclpy.create_node("odom_listener")
    got = _collect(node)
    images: dict = {"mono8": [], "rgb8": []}
    for topic in ("intensity_image", "feature_image"):
        node.create_subscription(Image, f"/coin_lio_node/{topic}",
                                 lambda m: images[m.encoding].append((m.height, m.width, len(m.data))), 10)
    graph.spawn("launch", [LAUNCHER, str(ROOT / "launch" / "coin_lio.launch.yaml"), f"config:={cfg_path}"])
    # our subscription must be matched before the first pose is published (volatile QoS)
    assert spin_until(node, lambda: subscription_matched(node, "/coin_lio_node/odometry"), 30)
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(bag), "--wait-subscribers", "1"))
    assert spin_until(node, lambda: graph.procs["player"].poll() is not None, 90), graph.log("player")
    assert spin_until(node, lambda: len(got) >= len(offline), 30), \
        f"{len(got)} of {len(offline)} poses; node log:\n{graph.log('launch')[-3000:]}"
    online = np.array([[m.header.stamp.sec + m.header.stamp.nanosec * 1e-9, m.pose.pose.position.x,
                        m.pose.pose.position.y, m.pose.pose.position.z] for m in got])
    np.testing.assert_allclose(online[:, 0], offline[:, 0], atol=1e-6)
    np.testing.assert_allclose(online[:, 1:], offline[:, 1:4], atol=1e-6,
                               err_msg=f"node log:\n{graph.log('launch')[-2000:]}")
    assert images["mono8"] and images["mono8"][-1] == (32, 512, 32 * 512)       # the filtered image
    assert images["rgb8"] and images["rgb8"][-1] == (32, 512, 32 * 512 * 3)     # patches drawn
    assert graph.interrupt("launch") == 0
    node.destroy_node()


def _cloud(fields, rows, stamp, data=None, point_step=None, width=None):
    """A PointCloud2 from {name: array} (float32 unless given as another dtype)."""
    names = list(fields)
    dtype = np.dtype([(n, np.asarray(fields[n]).dtype) for n in names])
    arr = np.zeros(np.asarray(fields[names[0]]).shape, dtype)
    for n in names:
        arr[n] = fields[n]
    codes = {np.dtype("float32"): 7, np.dtype("float64"): 8, np.dtype("uint32"): 6, np.dtype("uint16"): 4}
    msg = PointCloud2()
    msg.header.stamp.sec, msg.header.stamp.nanosec = int(stamp), int((stamp % 1) * 1e9)
    msg.height = rows
    msg.width = width if width is not None else arr.size // max(rows, 1)
    msg.fields = [PointField(name=n, offset=dtype.fields[n][1], datatype=codes[dtype.fields[n][0]], count=1)
                  for n in names]
    msg.point_step = point_step or dtype.itemsize
    msg.row_step = msg.point_step * msg.width
    msg.data = array.array("B", arr.tobytes() if data is None else data)
    return msg


def _imu(stamp, acc=(0.0, 0.0, 9.81), gyro=(0.0, 0.0, 0.0)):
    m = Imu()
    m.header.stamp.sec, m.header.stamp.nanosec = int(stamp), int(round((stamp % 1) * 1e9)) % 1_000_000_000
    m.linear_acceleration.x, m.linear_acceleration.y, m.linear_acceleration.z = acc
    m.angular_velocity.x, m.angular_velocity.y, m.angular_velocity.z = gyro
    return m


def test_node_survives_bad_input_and_keeps_publishing(graph, ros_context, sequence, tmp_path):
    # lossless input and a deep queue: on a busy machine the count of poses below must not
    # depend on how many scans the lag policy drops (the policy has its own tests)
    cfg_path = _config(tmp_path, input_reliability="reliable", max_scan_queue=100)
    graph.spawn("launch", [LAUNCHER, str(ROOT / "launch" / "coin_lio.launch.yaml"), f"config:={cfg_path}"])
    node = rclpy.create_node("fault_injector")
    got = _collect(node)
    pub_pc = node.create_publisher(PointCloud2, "/ouster/points", 10)
    pub_imu = node.create_publisher(Imu, "/ouster/imu", 100)
    assert spin_until(node, lambda: pub_pc.get_subscription_count() and pub_imu.get_subscription_count(), 30)
    time.sleep(0.5)
    n = 64
    xyz = np.random.default_rng(0).normal(0, 5, (3, 4, n)).astype(np.float32)
    t_rel = np.tile(np.arange(n, dtype=np.uint32) * 1_000_000, (4, 1))
    good = {"x": xyz[0], "y": xyz[1], "z": xyz[2], "t": t_rel, "intensity": xyz[0] * 0}
    bad = [
        _cloud({"y": xyz[1], "z": xyz[2], "t": t_rel}, 4, 100.0),                      # no x
        _cloud({"x": xyz[0] * np.nan, "y": xyz[1], "z": xyz[2], "t": t_rel}, 4, 100.1),  # all NaN
        _cloud({"x": xyz[0][:0], "y": xyz[1][:0], "z": xyz[2][:0], "t": t_rel[:0]}, 0, 100.2),  # empty
        _cloud(good, 4, 100.3, data=b"\x00" * 10),                                    # data too short
        _cloud(good, 4, 100.4, point_step=4),                                         # fields past step
        _cloud({"t": t_rel, "z": xyz[2], "y": xyz[1], "x": xyz[0]}, 4, 100.5),         # other order: fine
        _cloud(good, 1, 100.6, width=4 * n),                                          # unorganised: fine
        _cloud({**good, "t": t_rel + 4_000_000_000}, 4, 100.7),                       # times way off
    ]
    for m in bad:
        pub_pc.publish(m)
        rclpy.spin_once(node, timeout_sec=0.02)
    for stamp, acc in [(50.0, (np.nan, 0, 0)), (50.01, (0, 0, 1e7)), (50.02, (0, 0, 9.81)),
                       (50.02, (0, 0, 9.81)), (49.0, (0, 0, 9.81)), (10.0, (0, 0, 9.81))]:
        pub_imu.publish(_imu(stamp, acc))                 # NaN, absurd, duplicate, back, jump back
    time.sleep(0.5)
    # now a valid stream: the node must initialise and publish finite odometry
    # --wait-subscribers: on a busy machine discovery takes seconds, and a 5 s bag started before
    # it completes loses its first scans (this test failed so, with too few poses left)
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(sequence / "bag"),
                                           "--wait-subscribers", "1"))
    if not spin_until(node, lambda: len(got) >= 20, 60):
        graph.interrupt("launch")      # the node prints its counts on the way out
        pytest.fail(f"{len(got)} poses; node log:\n{graph.log('launch')[-5000:]}")
    poses = np.array([[m.pose.pose.position.x, m.pose.pose.position.y, m.pose.pose.position.z,
                       m.pose.pose.orientation.w] for m in got])
    assert np.all(np.isfinite(poses))
    assert graph.procs["launch"].poll() is None, "the node died"
    # the reset service answers, and odometry starts over from the next data
    from std_srvs.srv import Trigger

    client = node.create_client(Trigger, "/coin_lio_node/reset")
    assert client.wait_for_service(timeout_sec=10)
    future = client.call_async(Trigger.Request())
    assert spin_until(node, future.done, 10) and future.result().success
    graph.wait("player", 60)
    assert graph.interrupt("launch") == 0
    log = graph.log("launch")
    for kind in ("cloud_bad", "cloud_empty"):
        assert f"[{kind}: 1 so far]" in log, f"no warning of kind {kind} in:\n{log[-3000:]}"
    assert "imu_nan" in log and ("imu_order" in log or "time_jump" in log)
    assert "Traceback" not in log
    node.destroy_node()


def test_node_logs_the_real_sensor_effects_it_sees(graph, ros_context, tmp_path):
    """Lost packets and a clipping IMU (coin_lio.sim's effects) in the bag: the node says so."""
    from coin_lio.sim.lidar_model import OusterConfig
    from coin_lio.sim.sensor_effects import SensorEffects
    from coin_lio.sim.sequence import SequenceConfig, generate_sequence

    seq = tmp_path / "effects"
    effects = SensorEffects(packet_drop_prob=0.05, imu_saturation=True, knock_rate_hz=2.0)
    generate_sequence(SequenceConfig(scene="urban", duration=7.0, seed=3, effects=effects,
                                     ouster=OusterConfig(rows=32, cols=512)), seq, progress=False)
    cfg_path = _config(tmp_path, max_scan_queue=1000, imu_wait=2.0, input_reliability="reliable")
    graph.spawn("launch", [LAUNCHER, str(ROOT / "launch" / "coin_lio.launch.yaml"), f"config:={cfg_path}"])
    node = rclpy.create_node("effects_listener")
    got = _collect(node)
    assert spin_until(node, lambda: subscription_matched(node, "/coin_lio_node/odometry"), 30)
    graph.spawn("player", graph.python_cmd("-m", "suite_tools.bag_player", str(seq / "bag"), "--wait-subscribers", "1"))
    assert spin_until(node, lambda: graph.procs["player"].poll() is not None, 90), graph.log("player")
    said = lambda: ("dropped LiDAR packets" in graph.log("launch")  # noqa: E731
                    and "IMU accelerometer clipped" in graph.log("launch"))
    assert spin_until(node, said, 30), graph.log("launch")[-4000:]
    assert got and all(np.isfinite(m.pose.pose.position.x) for m in got)
    assert graph.interrupt("launch") == 0
    node.destroy_node()
