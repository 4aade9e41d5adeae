"""Compile the odometry's numba kernels (or load them from numba's cache) before the first real
scan. Compiling them all takes ~20 s on a laptop core, once after an install (the cache then
lives beside the modules, or in NUMBA_CACHE_DIR; kernel_cache.py keeps it fresh when any kernel
module changes); loading them takes ~1 s. Without this the
first tracked scan would stall that long while the IMU keeps arriving.

The warm-up runs the odometry driver, photometric part included, on 2.5 s of a synthetic 16x512
Ouster-layout scan of a textured tunnel (a cylinder along x) while the sensor speeds up along it:
every kernel then runs with the array types the node gives it. Built here from the io layer's
metadata and point layout; the simulator (coin_lio.sim) stays out of the node's imports.
"""
from __future__ import annotations

import time

import numpy as np

_done = False
ROWS, COLS, RADIUS, ACC = 16, 512, 3.0, 0.4       # image, tunnel radius m, acceleration m/s^2


def warm_up_once() -> float | None:
    """warm_up() the first time in this process; None after (the kernels stay compiled)."""
    global _done
    if _done:
        return None
    _done = True
    return warm_up()


def _metadata() -> dict:
    from coin_lio.io.ouster_metadata import OusterMetadata

    return OusterMetadata(beam_altitude_angles=list(np.linspace(15.0, -15.0, ROWS)),
                          beam_azimuth_angles=[0.0] * ROWS, pixel_shift_by_row=[0] * ROWS,
                          columns_per_frame=COLS, lidar_origin_to_beam_origin_mm=0.0).to_dict()


def _scan(t0: float, start: float) -> np.ndarray:
    """(ROWS, COLS) cloud in the Ouster driver's layout, the sensor at x = ACC (t - start)^2 / 2."""
    from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE

    alt = np.radians(np.linspace(15.0, -15.0, ROWS))[:, None]                 # (H, 1)
    col_t = t0 + np.arange(COLS) / COLS * 0.1                                   # (W,) s
    az = -2.0 * np.pi * np.arange(COLS) / COLS                                  # (W,)
    d = np.stack(np.broadcast_arrays(np.cos(alt) * np.cos(az), np.cos(alt) * np.sin(az),
                                     np.sin(alt)), axis=-1)                     # (H, W, 3)
    rng = RADIUS / np.maximum(np.hypot(d[..., 1], d[..., 2]), 1e-6)
    x_sensor = 0.5 * ACC * np.clip(col_t - start, 0.0, None) ** 2
    x_world = x_sensor[None, :] + d[..., 0] * rng
    angle = np.arctan2(d[..., 2], d[..., 1])
    hit = rng < 40.0
    out = np.zeros((ROWS, COLS), dtype=OUSTER_ORIGINAL_DTYPE)
    for j, c in enumerate("xyz"):
        out[c] = np.where(hit, d[..., j] * rng, 0.0)
    out["intensity"] = np.where(hit, 80 + 60 * np.sin(2 * np.pi * x_world / 1.3) * np.cos(3 * angle), 0)
    out["reflectivity"] = out["intensity"].astype(np.uint16)
    out["t"] = np.broadcast_to(np.round((col_t - t0) * 1e9).astype(np.uint32), (ROWS, COLS))
    out["range"] = np.where(hit, rng * 1000, 0).astype(np.uint32)
    out["ring"] = np.arange(ROWS)[:, None]
    return out


def warm_up(seconds: float = 2.5) -> float:
    """Run the odometry on `seconds` of the synthetic tunnel; returns the wall time (s)."""
    from coin_lio.config import ExtrinsicConfig, LioConfig
    from coin_lio.io.scan import scan_from_cloud
    from coin_lio.odometry_driver import ImuReading, OdometryDriver

    t_wall = time.perf_counter()
    start = 1.2                                   # s at rest first: the IMU initialisation
    lio = LioConfig(extrinsic=ExtrinsicConfig(source="config"))     # identity: LiDAR = IMU frame
    lio.photometric.on_demand = False
    driver = OdometryDriver(lio)
    driver.set_metadata(_metadata())
    imu_t = np.arange(0.0, start + seconds + 0.2, 0.01)
    i_imu = 0
    for k in range(int(seconds * 10)):
        t0 = start + 0.1 * k
        while i_imu < len(imu_t) and imu_t[i_imu] <= t0 + 0.1:
            acc = np.array([ACC if imu_t[i_imu] >= start else 0.0, 0.0, 9.81])
            driver.add_imu(ImuReading(float(imu_t[i_imu]), np.zeros(3), acc))
            i_imu += 1
        driver.process(scan_from_cloud(_scan(t0, start), int(round(t0 * 1e9)), frame_id="os_lidar"))
        driver.drain_events()
    # runs only while moving objects are seen, which the empty tunnel never shows: called as
    # PhotometricTracker._moved_near calls it
    from coin_lio.photometric.change_kernel import window_change

    img = np.ones((ROWS, COLS), np.float32)
    window_change(img, np.zeros((1, 2)), img, np.zeros((1, 2)), 2, 1, 0.5, 0.1)
    return time.perf_counter() - t_wall


def main() -> int:
    print(f"coin_lio kernels ready in {warm_up():.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
