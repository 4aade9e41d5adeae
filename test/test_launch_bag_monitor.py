"""launch/bag_monitor.launch.yaml brought up by the launcher, as a user would: the graph plays a
bag into the monitor, everything arrives under remapped names, and the launcher exits 0."""
import sys
from pathlib import Path

import pytest

from bag_fixtures import write_lidar_imu_bag
from suite_tools.topic_stats import read_report

pytest.importorskip("rclpy")
ROOT = Path(__file__).resolve().parents[1]


def test_bag_monitor_launch_file_plays_everything(graph, tmp_path):
    bag, report = tmp_path / "bag", tmp_path / "report.json"
    times = write_lidar_imu_bag(bag, seconds=1.0, rows=16, cols=256)
    launcher = Path(sys.executable).parent / "coin-lio-suite-launch"
    graph.spawn("launch", [str(launcher), str(ROOT / "launch" / "bag_monitor.launch.yaml"),
                           f"bag:={bag}", f"report_path:={report}", "points_topic:=/lidar/points"])
    assert graph.wait("launch", 60) == 0, graph.log("launch")
    got = read_report(report)
    assert got["/lidar/points"].stamp_ns == times["/ouster/points"]
    assert got["/ouster/imu"].stamp_ns == times["/ouster/imu"]
    assert "all processes ended; exit code 0" in graph.log("launch")
