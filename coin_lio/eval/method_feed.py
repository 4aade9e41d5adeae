"""Feed one sequence's sensor events to several odometries at once, timing every call.

Interleaved (`run_methods` with several methods): the bag is decoded once and every event goes to
every odometry in turn, so a slower or busier minute of the machine falls on all of them alike
and the ratios of their per-scan times are measured in the same seconds (run one after the
other, the ratio between two methods moved by +-0.3 between runs on this machine). The order
in which the methods get each scan rotates, so none always finds the decoded cloud in cache.

A scan runs once the IMU covers its end on that odometry's clock (ScanGate, the node's and the
offline runner's rule; an odometry that moves its IMU clock, as coin_lio's online estimates do,
shows it as `time_offset`), or at the end of the sequence.
"""
from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, is_dataclass
from typing import Any, Sequence

import numpy as np

from coin_lio.eval.odometry_api import SensorSetup, create_odometry
from coin_lio.eval.sequence import ImuSample, SequenceInfo, iter_sensor_events
from coin_lio.eval.trajectory import Trajectory

log = logging.getLogger(__name__)


@dataclass
class MethodRun:
    trajectory: Trajectory   # T_odom_lidar at each scan's last point time
    scans: list[dict]        # per scan: stamp, end, n_valid, wall_ms (add_scan), pose, error
    imu_s: float             # total seconds spent in add_imu
    config: dict             # the method's effective configuration, when it exposes one


def _config_dict(odom: Any) -> dict:
    cfg = getattr(odom, "config", None)
    if cfg is None:
        return {}
    if hasattr(cfg, "model_dump"):      # pydantic (kiss-icp)
        return cfg.model_dump()
    if is_dataclass(cfg):               # dataclasses (rko_lio, ours)
        return asdict(cfg)
    return dict(cfg) if isinstance(cfg, dict) else {"repr": repr(cfg)}


class MethodFeed:
    """One odometry's side of the feed: its scan gate, its poses and its timings."""

    def __init__(self, method: str, odom: Any) -> None:
        from coin_lio.odometry_driver import ScanGate

        self.method, self.odom = method, odom
        self.organized = hasattr(odom, "add_organized_scan")
        self.gate = ScanGate()
        self.stamps: list[float] = []
        self.poses: list[np.ndarray] = []
        self.rows: list[dict] = []
        self.imu_s = 0.0

    def add_imu(self, ev: ImuSample) -> None:
        t = time.perf_counter()
        self.odom.add_imu(ev.t, ev.gyro, ev.acc)
        self.imu_s += time.perf_counter() - t
        self.gate.add_imu(ev.t)

    def run_ready(self, flush: bool = False) -> int:
        """Run the scans the IMU now covers (all of them with flush); how many ran."""
        n = 0
        while True:             # the odometry's clock, as each scan may move it (node, offline runner)
            self.gate.imu_time_offset = float(getattr(self.odom, "time_offset", 0.0))
            ev = self.gate.pop_ready(flush=flush)
            if ev is None:
                return n
            self._scan(ev)
            n += 1

    def _scan(self, ev) -> None:
        n_valid, error = int(ev.valid.sum()), ""
        # timed from the decoded cloud for every method: an organised one converts it inside
        # add_organized_scan, the others get their (N, 3) points taken out of it here
        t = time.perf_counter()
        try:
            if self.organized:
                pose = self.odom.add_organized_scan(ev.stamp, ev.cloud, ev.point_times)
            else:
                points, times = ev.valid_points()
                pose = self.odom.add_scan(ev.stamp, points, times)
        except Exception as exc:  # a failed scan is a result, not a crash of the benchmark
            pose, error = None, f"{type(exc).__name__}: {exc}"
            log.warning("%s failed on scan at %.6f: %s", self.method, ev.stamp, error)
        wall = time.perf_counter() - t
        ok = pose is not None and np.all(np.isfinite(pose))
        if ok:
            self.stamps.append(ev.end)
            self.poses.append(np.asarray(pose, float))
        self.rows.append({"scan": len(self.rows), "stamp": ev.stamp, "end": ev.end, "n_valid": n_valid,
                          "wall_ms": wall * 1e3, "pose": int(ok), "error": error})

    def result(self) -> MethodRun:
        traj = Trajectory.from_poses(self.stamps, np.reshape(self.poses, (-1, 4, 4)), name=self.method)
        return MethodRun(traj, self.rows, self.imu_s, _config_dict(self.odom))


def run_methods(info: SequenceInfo, methods: Sequence[str], options: dict[str, dict] | None = None,
                threads: int = 0, progress: bool = True) -> dict[str, MethodRun | ImportError]:
    """The whole sequence, in time order, to every method at once (one method: on its own).
    {method: MethodRun, or the ImportError of a method that is not available}."""
    from tqdm import tqdm

    from suite_tools.bag_io import bag_topics

    if any(m.startswith("coin_lio") for m in methods):   # numba kernels loaded before the timed scans
        from coin_lio.kernel_warmup import warm_up_once

        warm_up_once()
    setup = SensorSetup(T_lidar_imu=info.T_lidar_imu, lidar_metadata=info.metadata,
                        max_num_threads=threads)
    out: dict[str, MethodRun | ImportError] = {}
    feeds: list[MethodFeed] = []
    for m in methods:
        try:
            feeds.append(MethodFeed(m, create_odometry(m, setup, **(options or {}).get(m, {}))))
        except ImportError as exc:
            out[m] = exc
    n_scans = bag_topics(info.bag).get(info.points_topic, ("", 0))[1]
    bar = tqdm(total=n_scans * max(len(feeds), 1), desc=f"{info.name}:{','.join(f.method for f in feeds)}",
               unit="scan", disable=not progress or not feeds, leave=False)
    turn = 0
    for ev in (iter_sensor_events(info) if feeds else ()):
        if isinstance(ev, ImuSample):
            for f in feeds:
                f.add_imu(ev)
        else:
            turn += 1
            for f in feeds:
                f.gate.add_scan(ev)
        for f in feeds[turn % len(feeds):] + feeds[:turn % len(feeds)]:   # rotate who goes first
            bar.update(f.run_ready())
    for f in feeds:
        bar.update(f.run_ready(flush=True))
    bar.close()
    out.update((f.method, f.result()) for f in feeds)
    return {m: out[m] for m in methods}
