"""Compile the odometry's numba kernels (or load them from numba's cache) before the first real
scan. Compiling them all takes ~20 s on a laptop core, once after an install (the cache then
lives beside the modules, or in NUMBA_CACHE_DIR); loading them takes ~0.5 s. Without this the
first tracked scan would stall that long while the IMU keeps arriving.

The warm-up runs the odometry driver, photometric part included, on 2.5 s of a simulated 16x512
tunnel (coin_lio.sim): every kernel then runs with the array types the node gives it.
"""
from __future__ import annotations

import time

_done = False


def warm_up_once() -> float | None:
    """warm_up() the first time in this process; None after (the kernels stay compiled)."""
    global _done
    if _done:
        return None
    _done = True
    return warm_up()


def warm_up(seconds: float = 2.5) -> float:
    """Run the odometry on `seconds` of a small simulated tunnel; returns the wall time (s)."""
    import numpy as np

    from coin_lio.config import ExtrinsicConfig, LioConfig
    from coin_lio.io.scan import scan_from_cloud
    from coin_lio.odometry_driver import ImuReading, OdometryDriver
    from coin_lio.sim.imu import simulate_imu
    from coin_lio.sim.lidar_model import OusterConfig
    from coin_lio.sim.sequence import SequenceConfig, build

    t_wall = time.perf_counter()
    cfg = SequenceConfig(scene="tunnel", duration=seconds, ouster=OusterConfig(rows=16, cols=512))
    spec, traj, sim, frames = build(cfg)
    imu = simulate_imu(traj, seconds + 0.2, cfg.imu, seed=0)
    lio = LioConfig(extrinsic=ExtrinsicConfig.from_matrix(frames["T_body"]["cloud"]))
    driver = OdometryDriver(lio)
    driver.set_metadata(sim.meta.to_dict(cfg.metadata_layout))
    period = sim.period_ns * 1e-9
    i_imu = 0
    for k in range(int(seconds / period)):
        t0 = k * period
        cloud = sim.scan(spec.scene, traj, t0, rng=np.random.default_rng([0, k]))
        while i_imu < len(imu.t) and imu.t[i_imu] <= t0 + period:
            driver.add_imu(ImuReading(float(imu.t[i_imu]), imu.gyro[i_imu], imu.acc[i_imu]))
            i_imu += 1
        driver.process(scan_from_cloud(cloud, int(round(t0 * 1e9)), frame_id=frames["cloud"]))
        driver.drain_events()
    return time.perf_counter() - t_wall


def main() -> int:
    print(f"coin_lio kernels ready in {warm_up():.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
