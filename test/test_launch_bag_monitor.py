"""launch/bag_monitor.launch.yaml brought up by the launcher, as a user would: the graph plays a
bag into the monitor, everything arrives under remapped names, and the launcher exits 0.

The monitor's default QoS is best effort (it must match any publisher), and best effort may drop
messages when the machine is busy (CI saw 8 of 200 IMU messages dropped under load). Exact delivery
is therefore checked with `reliability:=reliable`; the default is checked for what it promises:
no message that was not in the bag, in bag order."""
import sys
from pathlib import Path

import pytest

from bag_fixtures import write_lidar_imu_bag
from suite_tools.topic_stats import read_report

pytest.importorskip("rclpy")
ROOT = Path(__file__).resolve().parents[1]


def _play(graph, tmp_path, *args: str):
    bag, report = tmp_path / "bag", tmp_path / "report.json"
    times = write_lidar_imu_bag(bag, seconds=1.0, rows=16, cols=256)
    launcher = Path(sys.executable).parent / "coin-lio-suite-launch"
    graph.spawn("launch", [str(launcher), str(ROOT / "launch" / "bag_monitor.launch.yaml"),
                           f"bag:={bag}", f"report_path:={report}", "points_topic:=/lidar/points", *args])
    assert graph.wait("launch", 60) == 0, graph.log("launch")
    assert "all processes ended; exit code 0" in graph.log("launch")
    return times, read_report(report)


def test_bag_monitor_launch_file_plays_everything(graph, tmp_path):
    # Reliable with KEEP_LAST still drops the oldest sample when the monitor falls more than
    # `depth` messages behind (CI lost IMU messages with depth 50 = 0.25 s of 200 Hz IMU on a
    # busy machine): the depth holds the whole 1 s bag, so nothing may be lost.
    times, got = _play(graph, tmp_path, "reliability:=reliable", "depth:=500")
    assert got["/lidar/points"].stamp_ns == times["/ouster/points"]
    assert got["/ouster/imu"].stamp_ns == times["/ouster/imu"]


def test_bag_monitor_default_best_effort_reports_only_bag_messages_in_order(graph, tmp_path):
    times, got = _play(graph, tmp_path)
    for monitored, recorded in (("/lidar/points", "/ouster/points"), ("/ouster/imu", "/ouster/imu")):
        stamps = got[monitored].stamp_ns
        assert stamps, f"nothing arrived on {monitored}"
        assert set(stamps) <= set(times[recorded]), f"{monitored} reported a stamp not in the bag"
        assert stamps == sorted(set(stamps)), f"{monitored} out of bag order or duplicated"
