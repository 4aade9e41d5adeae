"""Small bags written by tests: an Ouster-like 10 Hz point cloud stream and a 200 Hz IMU."""
from __future__ import annotations

from pathlib import Path

import numpy as np

CLOUD_DTYPE = np.dtype({  # x, y, z, intensity, t, ring: what coin_lio needs, Ouster offsets
    "names": ["x", "y", "z", "intensity", "t", "ring"],
    "formats": ["<f4", "<f4", "<f4", "<f4", "<u4", "<u2"],
    "offsets": [0, 4, 8, 16, 20, 26], "itemsize": 48})


def write_lidar_imu_bag(path: Path, seconds: float = 3.0, rows: int = 128, cols: int = 1024,
                        lidar_hz: float = 10.0, imu_hz: float = 200.0, t0_ns: int = 1_700_000_000_000_000_000,
                        storage: str = "mcap", seed: int = 0) -> dict[str, list[int]]:
    """Write the bag; returns {topic: [bag time ns of each message]}."""
    from suite_tools.bag_io import BagWriter, make_imu, make_pointcloud2

    rng = np.random.default_rng(seed)
    cloud = np.zeros((rows, cols), CLOUD_DTYPE)
    cloud["ring"] = np.arange(rows, dtype=np.uint16)[:, None]
    cloud["t"] = (np.arange(cols, dtype=np.uint32) * int(1e9 / lidar_hz / cols))[None, :]
    events = [(int(t0_ns + k * 1e9 / lidar_hz), "/ouster/points") for k in range(int(seconds * lidar_hz))]
    events += [(int(t0_ns + k * 1e9 / imu_hz), "/ouster/imu") for k in range(int(seconds * imu_hz))]
    events.sort()
    times: dict[str, list[int]] = {"/ouster/points": [], "/ouster/imu": []}
    with BagWriter(path, storage=storage) as w:
        for t_ns, topic in events:
            if topic == "/ouster/points":
                cloud["x"], cloud["y"], cloud["z"] = rng.normal(size=(3, rows, cols)).astype(np.float32)
                cloud["intensity"] = rng.uniform(0, 1000, size=(rows, cols))
                w.write(topic, t_ns, make_pointcloud2(cloud, t_ns, "os_sensor"))
            else:
                w.write(topic, t_ns, make_imu(t_ns, "os_imu", rng.normal(0, 0.01, 3), [0.0, 0.0, 9.81]))
            times[topic].append(t_ns)
    return times


def simulated_sequence(out: Path, scene: str, duration: float, seed: int, rows: int, cols: int) -> Path:
    """A small coin_lio.sim sequence (bag, ground truth, metadata) written to `out`."""
    from coin_lio.sim.lidar_model import OusterConfig
    from coin_lio.sim.sequence import SequenceConfig, generate_sequence

    generate_sequence(SequenceConfig(scene=scene, duration=duration, seed=seed,
                                     ouster=OusterConfig(rows=rows, cols=cols)), out, progress=False)
    return out
