"""Returns in space the LiDAR saw free a moment before: moving objects (people, vehicles) or
airborne returns (dust, rain, spray).

Each scan's registered points (LiDAR frame at scan end, m) are moved into the frame of the scan
`lag_scans` before and projected into that scan's range image. Where every ray of the pixel
neighbourhood (`radius_px`, 5x5) then reached farther than the point by more than the margin, the
point lies in space that was seen free: nothing static can be there. Neighbourhoods whose ranges
spread more than `max_spread` (grazing surfaces, depth edges) are not judged. A neighbourhood
without any return (range 0) is open space for points nearer than `open_range_m` (a person against
the sky; a surface that near returns); one with only some returns missing (dark or grazing ground)
is not judged, nor are pixels of lost measurement columns (dropped packets, the column window).
The margin covers the motion inside a sweep. The driver reports the scans with 2 or more such
points (coin_lio.input_effects). The neighbourhoods are read at the pixels the points land on
(free_space_kernel), not over the whole image.
"""
from __future__ import annotations

from collections import deque

import numpy as np

from coin_lio.config import FreeSpaceConfig
from coin_lio.core.free_space_kernel import in_free_space, lost_columns


class FreeSpaceCheck:
    def __init__(self, cfg: FreeSpaceConfig | None = None) -> None:
        self.cfg = cfg or FreeSpaceConfig()
        self._history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.cfg.lag_scans)

    def reset(self) -> None:
        self._history.clear()

    def check(self, points: np.ndarray, T_world_lidar: np.ndarray, range_img: np.ndarray, model) -> np.ndarray | None:
        """points (N, 3) LiDAR frame at scan end (m); T_world_lidar (4, 4) of this scan end; range_img
        (H, W) m of this scan (0: no return), in `model`'s (coin_lio.photometric.projection.ImageModel)
        layout. Returns (N,) bool, True for points in space seen free lag_scans before, or None
        until there is such a scan; then keeps this scan for later ones."""
        out = None
        if len(self._history) == self.cfg.lag_scans:
            T_prev, img_prev = self._history[0]
            # this LiDAR frame -> the earlier one: T_prev^-1 T of two poses, by transposing the
            # rotation (LAPACK's solve took ~40 us inside a scan; equal to rounding)
            R_prev = T_prev[:3, :3]
            R = R_prev.T @ T_world_lidar[:3, :3]
            t = R_prev.T @ (T_world_lidar[:3, 3] - T_prev[:3, 3])
            p = points @ R.T + t
            uv, ok = model.project(p)
            c = self.cfg
            shift = np.asarray(model.pixel_shift_by_row, dtype=np.int64)
            lost = lost_columns(img_prev, shift, int(model.u_shift))   # (W,) lost packets, column window
            out = in_free_space(uv, ok, np.ascontiguousarray(p, dtype=np.float64), img_prev, c.radius_px,
                                c.max_spread, c.min_range, c.margin_m, c.margin_rel, c.open_range_m, lost,
                                shift, int(model.u_shift))
        img = np.array(range_img, dtype=np.float32)              # a copy: the caller's may change
        self._history.append((np.array(T_world_lidar, dtype=float), img))
        return out
