"""The first map from the scans of the IMU initialisation: moving objects stay out of it.

FAST-LIO2 makes the first scan the map at once. Every later voxel waits for static confirmation
(static_confirmation.py), but the first scan's did not: a car or a person in it stays in the map
for good, new patches pass the "on the map" veto there, and a car's side (a plane that slides
along itself, so its range does not change) pulls the heading along with the car (the simulated
field with a car passing a robot that waits: 9 degrees of yaw in two seconds).

The IMU initialisation needs the robot at rest for `imu.init_duration` (1 s), and the LiDAR
scans of that second are at hand. They are held here (LiDAR frame, downsampled; the sensor has
not moved, so the first scan's pose places them). A voxel of the first scan enters the map at
once when a held scan at least `map.confirm_s` older had a point in it or in one of its 8
horizontal neighbours (static structure, sampled a little differently by each scan); the others wait for
confirmation like every later voxel. A car (4-8 m/s) or a walker (1-1.6 m/s) is metres away
from where it was `confirm_s` before. Where no held scan is old enough, or too little would be
kept (fewer than `min_fraction` of the first scan's voxels: a start in motion), the first scan
is the map at once, as before.
"""
from __future__ import annotations

from collections import deque
from itertools import product
from typing import Callable

import numpy as np

from coin_lio.core.local_map import LocalMap, voxel_index, voxel_keys
from coin_lio.core.voxel_kernel import pack_keys

MAX_HELD = 64                # scans: 6.4 s at 10 Hz, beyond any confirm_s in use
# a voxel and its 8 horizontal neighbours: each scan samples the ground and far surfaces a little
# differently along the ground; vertically, a car or a person stands right above the ground
_NEIGHBOURS = np.array([(i, j, 0) for i, j in product((-1, 0, 1), repeat=2)], dtype=np.int64)  # (9, 3)


class InitScans:
    """LiDAR-frame scans held while the IMU initialises (the sensor at rest), oldest first."""

    def __init__(self, confirm_s: float, min_fraction: float = 0.3) -> None:
        self.confirm_s = float(confirm_s)
        self.min_fraction = float(min_fraction)
        # bounded also when scan stamps go back (then nothing is old enough to drop by time)
        self.scans: deque[tuple[float, np.ndarray]] = deque(maxlen=MAX_HELD)

    def __len__(self) -> int:
        return len(self.scans)

    def add(self, points_lidar: np.ndarray, t: float) -> None:
        """points_lidar (N, 3) m, downsampled; t the scan end (s). Keeps what seeding can use:
        the newest scan at least confirm_s older than t, and everything after it."""
        self.scans.append((float(t), np.asarray(points_lidar, float).reshape(-1, 3)))
        while len(self.scans) > 1 and t - self.scans[1][0] >= self.confirm_s:
            self.scans.popleft()

    def clear(self) -> None:
        self.scans.clear()

    def seed(self, local_map: LocalMap, to_world: Callable[[np.ndarray], np.ndarray],
             first_world: np.ndarray, t: float) -> tuple[int, int]:
        """Make the first map from first_world (N, 3), the first scan at time t (s), and the held
        scans (to_world: LiDAR (M, 3) -> world (M, 3) at the first scan's pose). Returns (voxels
        entered at once, voxels waiting); waiting 0 when it fell back to the whole scan at once."""
        size = local_map.cfg.voxel_size
        old = [pts for ts, pts in self.scans if t - ts >= self.confirm_s - 1e-3]
        self.clear()
        if local_map.pending is None or not old or len(first_world) == 0:
            return local_map.insert(first_world), 0
        idx = voxel_index(to_world(np.vstack(old)), size)                                # (M, 3)
        seen = np.unique(pack_keys((idx[:, None, :] + _NEIGHBOURS[None]).reshape(-1, 3)))
        keys = voxel_keys(first_world, size)                                             # (N,)
        static = np.isin(keys, seen)
        if len(np.unique(keys[static])) < self.min_fraction * len(np.unique(keys)):
            return local_map.insert(first_world), 0
        now = local_map.insert(first_world[static])
        local_map.insert(first_world[~static], t)            # waits (static confirmation)
        return now, len(local_map.pending)
