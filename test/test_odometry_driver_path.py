"""coin_lio_node's ~/path over a looped bag (pure core, no graph): every loop jumps time back and
resets the odometry; the path must start over with it instead of keeping every loop's poses."""
from __future__ import annotations

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.io.scan import LidarScan
from coin_lio.odometry_driver import ImuReading, OdometryDriver, append_path_pose
from test_lio_core import G, _room


def _scan(pts: np.ndarray, stamp: float, period: float = 0.1) -> LidarScan:
    """An unorganised (1, N) scan starting at `stamp`, point times spread over one period (s)."""
    cloud = np.zeros((1, len(pts)), dtype=[("x", "f4"), ("y", "f4"), ("z", "f4")])
    for i, c in enumerate("xyz"):
        cloud[c][0] = pts[:, i]
    times = stamp + np.linspace(0.0, period, len(pts), endpoint=False)[None, :]
    return LidarScan(int(round(stamp * 1e9)), cloud, times, np.ones(cloud.shape, bool), "t")


def test_looped_bag_path_keeps_only_the_current_trajectory():
    pts = _room(np.random.default_rng(3), n=3000) - [0.0, 0.0, 1.5]     # sensor 1.5 m above floor
    driver = OdometryDriver(LioConfig())
    path: list[float] = []                     # pose times (s), as the node keeps PoseStamped
    loop_s, loops, per_loop = 2.0, 3, []
    for _ in range(loops):
        n = 0
        for k in range(int(round(loop_s / 0.1))):          # 10 Hz scans, 100 Hz IMU
            t0 = 100.0 + k * 0.1
            for j in range(1, 11):
                driver.add_imu(ImuReading(t0 + j * 0.01, np.zeros(3), np.array([0.0, 0.0, G])))
            res = driver.process(_scan(pts, t0))
            if res is not None and res.T_world_lidar is not None:
                append_path_pose(path, res.t_end, res.status, 20000)
                n += 1
        per_loop.append(n)
    assert driver.counts["resets"] == loops - 1              # each loop's time jump reset it
    assert min(per_loop) > 5                                 # and it tracked again every loop
    # one loop's poses, not all of them: the path restarted with the odometry
    assert len(path) == per_loop[-1] < sum(per_loop)
    assert np.all(np.diff(path) > 0)                         # one trajectory, in time order


def test_path_keeps_the_most_recent_poses():
    path: list[int] = []
    for k in range(10):
        append_path_pose(path, k, "mapped" if k == 0 else "tracked", 4)
    assert path == [6, 7, 8, 9]
    append_path_pose(path, 10, "mapped", 4)                  # a new trajectory
    assert path == [10]


def test_driver_forwards_the_imu_reading_that_covers_the_scan_end_and_no_later_one():
    """The pipeline interpolates the motion to the scan's end from the reading ScanGate waited for
    (as the benchmark feeds it); the readings after that one wait for the next scan."""
    pts = _room(np.random.default_rng(3), n=3000) - [0.0, 0.0, 1.5]
    driver = OdometryDriver(LioConfig())
    for k in range(3):
        t0 = 100.0 + k * 0.1
        for j in range(1, 11):                                    # 100 Hz, the last at t0 + 0.1
            driver.add_imu(ImuReading(t0 + j * 0.01 + 0.003, np.zeros(3), np.array([0.0, 0.0, G])))
        scan = _scan(pts, t0)                                     # ends at t0 + 0.1 - 1/3000 s
        driver.process(scan)
        forwarded = driver.pipeline.last_imu_t
        assert forwarded > scan.end and forwarded - scan.end < 0.01, (forwarded, scan.end)
        assert [r.t for r in driver.imu] == [] or driver.imu[0].t > forwarded
