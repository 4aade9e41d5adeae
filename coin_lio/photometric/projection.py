"""COIN-LIO's spherical image model: point -> pixel, its Jacobian, the dense image by point index.

Ouster (COIN-LIO step 3): L = |xy| - beam_offset, R = sqrt(z^2 + L^2), phi = atan2(y, x),
theta = asin(z / R); u = fx phi + cx (fx = -W / 2 pi, cx = W / 2, wrapped into [0, W));
v = linear interpolation of theta in the beam altitude table (top row first). The dense image is
filled by point index: cloud (row, col) -> pixel (row, (col + pixel_shift_by_row[row] - u_shift)
mod W) for raw (staggered) clouds as ouster-ros publishes them, (row, (col - u_shift) mod W) for
already destaggered ones. Velodyne-like sensors: rows = rings by altitude, columns = azimuth bins
of the same u. Points are in the cloud frame with the LiDAR origin at (0, 0, origin_z_m).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from coin_lio.io.cloud_kernel import fill_image
from coin_lio.photometric.projection_kernel import jacobian_kernel, project_points

KINDS = ("ouster", "rings")
JACOBIAN_FY = ("nominal", "local")


@dataclass
class ImageModel:
    """Geometry of the intensity image; build with from_metadata (Ouster) or from_rings."""

    altitudes_deg: np.ndarray                  # (H,) row altitudes, decreasing (top row first)
    cols: int                                  # W
    pixel_shift_by_row: np.ndarray | None = None   # (H,) int; destaggered col = (col + s) % W
    beam_offset_m: float = 0.0                 # lidar_origin_to_beam_origin_mm / 1000
    u_shift: int = 0                           # image col = destaggered col - u_shift (wrapped)
    destaggered: bool = False                  # the cloud arrives destaggered (newer drivers)
    origin_z_m: float = 0.0                    # LiDAR origin height in the cloud frame (os_sensor)
    jacobian_fy: str = "nominal"               # nominal: -H / |alt_0 - alt_last| (reference);
    #                                            local: slope of the altitude table at the point
    kind: str = "ouster"                       # ouster: filled by index; rings: by ring + azimuth
    ring_to_row: np.ndarray | None = None      # (R,) rings: ring id -> row
    _alt_rad: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.altitudes_deg = np.asarray(self.altitudes_deg, dtype=np.float64).reshape(-1)
        self.cols = int(self.cols)
        if self.altitudes_deg.size < 2:
            raise ValueError(f"need at least 2 rows, got {self.altitudes_deg.size}")
        if np.any(np.diff(self.altitudes_deg) >= 0) or not np.all(np.isfinite(self.altitudes_deg)):
            raise ValueError("altitudes_deg must be finite and strictly decreasing "
                             "(top row first)")
        if self.cols < 2:
            raise ValueError(f"cols must be >= 2, got {self.cols}")
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got '{self.kind}'")
        if self.jacobian_fy not in JACOBIAN_FY:
            raise ValueError(f"jacobian_fy must be one of {JACOBIAN_FY}, got '{self.jacobian_fy}'")
        if self.pixel_shift_by_row is None:
            self.pixel_shift_by_row = np.zeros(self.rows, dtype=np.int64)
        self.pixel_shift_by_row = np.asarray(self.pixel_shift_by_row, dtype=np.int64).reshape(-1)
        if self.pixel_shift_by_row.size != self.rows:
            raise ValueError(f"pixel_shift_by_row has {self.pixel_shift_by_row.size} entries, "
                             f"the model {self.rows} rows")
        if not np.isfinite(self.beam_offset_m) or self.beam_offset_m < 0:
            raise ValueError(f"beam_offset_m must be finite and >= 0, got {self.beam_offset_m}")
        self.u_shift = int(self.u_shift) % self.cols
        if self.ring_to_row is not None:
            self.ring_to_row = np.asarray(self.ring_to_row, dtype=np.int64).reshape(-1)
        self._alt_rad = np.radians(self.altitudes_deg)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_metadata(cls, meta: Any, u_shift: int = 0, destaggered: bool = False,
                      **kwargs: Any) -> "ImageModel":
        """From Ouster metadata: a JSON path, a JSON dict (flat or nested layout) or an object
        with beam_altitude_angles, pixel_shift_by_row, columns_per_frame and
        lidar_origin_to_beam_origin_mm (coin_lio.io.ouster_metadata.OusterMetadata)."""
        if isinstance(meta, (str, Path, Mapping)):
            from coin_lio.io.ouster_metadata import OusterMetadata   # parses both layouts

            meta = (OusterMetadata.from_dict(meta) if isinstance(meta, Mapping)
                    else OusterMetadata.read(meta))
        return cls(altitudes_deg=meta.beam_altitude_angles, cols=meta.columns_per_frame,
                   pixel_shift_by_row=meta.pixel_shift_by_row,
                   beam_offset_m=float(meta.lidar_origin_to_beam_origin_mm) * 1e-3,
                   u_shift=u_shift, destaggered=destaggered, kind="ouster", **kwargs)

    @classmethod
    def from_rings(cls, ring_altitudes_deg: Any, cols: int, **kwargs: Any) -> "ImageModel":
        """Velodyne-like: ring_altitudes_deg[ring] (any order); rows sorted top first."""
        alt = np.asarray(ring_altitudes_deg, dtype=np.float64).reshape(-1)
        order = np.argsort(-alt, kind="stable")                  # row -> ring
        ring_to_row = np.empty_like(order)
        ring_to_row[order] = np.arange(order.size)
        return cls(altitudes_deg=alt[order], cols=cols, kind="rings", ring_to_row=ring_to_row,
                   **kwargs)

    # -- intrinsics --------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return int(self.altitudes_deg.size)

    @property
    def shape(self) -> tuple[int, int]:
        return self.rows, self.cols

    @property
    def fx(self) -> float:
        return -self.cols / (2.0 * np.pi)

    @property
    def cx(self) -> float:
        return float(self.cols // 2)

    @property
    def fy(self) -> float:
        """Nominal -H / |alt_0 - alt_last| (rad), as the reference's K."""
        return -self.rows / abs(self._alt_rad[0] - self._alt_rad[-1])

    # -- projection --------------------------------------------------------------------------
    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """points (N, 3) -> (uv (N, 2) continuous pixel coords in the destaggered image, u in
        [0, W); valid (N,) bool: finite, beyond the beam offset, v in [-0.5, H - 0.5], i.e. on
        a row (v extrapolates linearly past the table's ends: the reference rejects the half of
        the top and bottom rows' own points that fall just outside alt_0 / alt_last))."""
        p = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        return project_points(p, *self.projection_args())

    def projection_args(self) -> tuple:
        """(fx, cx, cols, altitudes rad, origin z, beam offset) for projection_kernel."""
        return (self.fx, self.cx, self.cols, self._alt_rad, self.origin_z_m, self.beam_offset_m)

    def jacobian_args(self) -> tuple:
        """(fx, fy, altitudes rad, origin z, beam offset, local fy) for projection_kernel.jacobian_one."""
        return (self.fx, self.fy, self._alt_rad, self.origin_z_m, self.beam_offset_m, self.jacobian_fy == "local")

    def project_jacobian(self, points: np.ndarray) -> np.ndarray:
        """points (N, 3) -> d(u, v)/dp (N, 2, 3); dv/dtheta = the nominal fy (reference) or the
        local slope of the altitude table (jacobian_fy='local'). Zero rows where undefined."""
        p = np.ascontiguousarray(points, dtype=np.float64).reshape(-1, 3)
        return jacobian_kernel(p, *self.jacobian_args())

    # -- point index <-> pixel ---------------------------------------------------------------
    def _destaggered(self, destaggered_input: bool | None) -> bool:
        return self.destaggered if destaggered_input is None else bool(destaggered_input)

    def pixel_of(self, row: np.ndarray, col: np.ndarray,
                 destaggered_input: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Cloud (row, col) (N,) -> image pixel (v (N,), u (N,)) int64 (Ouster: filled by index)
        """
        row = np.asarray(row, dtype=np.int64)
        col = np.asarray(col, dtype=np.int64)
        if not self._destaggered(destaggered_input):
            col = col + self.pixel_shift_by_row[row]
        return row, np.mod(col - self.u_shift, self.cols)

    def destagger_index(self, destaggered_input: bool | None = None) -> np.ndarray:
        """(H, W) int64: flat index (row * W + col) of the cloud point that fills each pixel.
        Cached per (u_shift, destaggered) -- it is the same for every scan (do not modify it)."""
        return self._destagger_cached(destaggered_input)[0]

    def destagger_columns(self, destaggered_input: bool | None = None) -> np.ndarray:
        """(H, W) int64: the cloud column of each pixel (destagger_index % W), cached with it."""
        return self._destagger_cached(destaggered_input)[1]

    def pixel_of_point(self, destaggered_input: bool | None = None) -> np.ndarray:
        """(H*W,) int64: the flat pixel each cloud point fills (destagger_index inverted), cached."""
        return self._destagger_cached(destaggered_input)[2]

    def _destagger_cached(self, destaggered_input: bool | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        key = (self.u_shift, self._destaggered(destaggered_input))
        cache = self.__dict__.setdefault("_index_cache", {})
        if key not in cache:
            cache.clear()
            index = self._destagger_index(key[1])
            inverse = np.empty(index.size, dtype=np.int64)
            inverse[index.reshape(-1)] = np.arange(index.size)
            cache[key] = (index, index % self.cols, inverse)
        return cache[key]

    def _destagger_index(self, destaggered_input: bool) -> np.ndarray:
        h, w = self.shape
        u = np.arange(w)[None, :] + self.u_shift                      # (1, W)
        if not self._destaggered(destaggered_input):
            u = u - self.pixel_shift_by_row[:, None]                   # (H, W)
        return np.arange(h)[:, None] * w + np.mod(u, w)

    def image_from_cloud(self, cloud: np.ndarray, field: str = "intensity",
                         destaggered_input: bool | None = None, min_range: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Structured cloud with x, y, z, `field` (and ring for unorganised clouds) ->
        (image float32 (H, W), point_index int64 (H, W) flat index into the cloud or -1,
        range float32 (H, W) = |xyz| in m). Organised (H, W) Ouster clouds are filled by index;
        unorganised (N,) clouds (rings models) by ring (else nearest row) and azimuth bin,
        the nearest point winning. Points that are zero, NaN or closer than min_range are
        absent."""
        names = cloud.dtype.names or ()
        for name in ("x", "y", "z", field):
            if name not in names:
                raise ValueError(f"cloud lacks field '{name}' (has {names})")
        flat = cloud.reshape(-1)
        h, w = self.shape
        if self.kind == "ouster" and cloud.ndim == 2:
            if cloud.shape != (h, w):
                raise ValueError(f"cloud is {cloud.shape[0]}x{cloud.shape[1]}, the image model "
                                 f"{h}x{w} (metadata of another sensor mode?)")
            # one compiled pass over the strided fields (float32 range: 10 um at 150 m)
            return fill_image(flat["x"], flat["y"], flat["z"], flat[field],
                              self.pixel_of_point(destaggered_input), h, w, float(min_range))
        xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype(np.float64)
        rng = np.linalg.norm(xyz, axis=1)                              # (N,)
        present = np.isfinite(rng) & (rng > 0) & (rng >= min_range)
        index = self._bin_unorganised(flat, xyz, rng, present, names)
        has = index >= 0
        safe = np.where(has, index, 0)
        image = np.where(has, flat[field][safe], 0).astype(np.float32)
        return image, index, np.where(has, rng[safe], 0).astype(np.float32)

    def _bin_unorganised(self, flat: np.ndarray, xyz: np.ndarray, rng: np.ndarray,
                         present: np.ndarray, names: tuple) -> np.ndarray:
        h, w = self.shape
        uv, ok = self.project(xyz)
        if "ring" in names and self.ring_to_row is not None:
            ring = flat["ring"].astype(np.int64)
            row = self.ring_to_row[np.clip(ring, 0, self.ring_to_row.size - 1)]
            ok = (present & np.isfinite(uv[:, 0]) & (ring >= 0)         # the ring gives the row
                  & (ring < self.ring_to_row.size))
        else:
            row = np.rint(uv[:, 1]).astype(np.int64)
            ok &= present
        col = np.mod(np.floor(uv[:, 0] + 0.5).astype(np.int64), w)
        pts = np.flatnonzero(ok)
        pix = row[pts] * w + col[pts]
        order = np.lexsort((rng[pts], pix))                            # by pixel, nearest first
        pix, pts = pix[order], pts[order]
        first = np.ones(pix.size, dtype=bool)
        first[1:] = pix[1:] != pix[:-1]
        index = np.full(h * w, -1, dtype=np.int64)
        index[pix[first]] = pts[first]
        return index.reshape(h, w)

    def estimate_u_shift(self, cloud: np.ndarray, destaggered_input: bool | None = None) -> int:
        """The u_shift that makes filling by index agree with the projection on an organised
        Ouster cloud (the most common offset between the two); the model's own u_shift is
        ignored. Calibrates clouds in unknown frames or driver versions."""
        h, w = self.shape
        if cloud.shape != (h, w):
            raise ValueError(f"need an organised {h}x{w} cloud, got {cloud.shape}")
        rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        if not self._destaggered(destaggered_input):
            cols = cols + self.pixel_shift_by_row[:, None]
        flat = cloud.reshape(-1)
        xyz = np.stack([flat["x"], flat["y"], flat["z"]], axis=1).astype(np.float64)
        uv, ok = self.project(xyz)
        ok &= np.linalg.norm(xyz, axis=1) > 0
        if not ok.any():
            raise ValueError("cloud has no valid point")
        diff = np.mod(cols.reshape(-1)[ok] - np.floor(uv[ok, 0] + 0.5).astype(np.int64), w)
        return int(np.argmax(np.bincount(diff, minlength=w)))


def destagger(image: np.ndarray, pixel_shift_by_row: Any, inverse: bool = False) -> np.ndarray:
    """Ouster destaggering of an (H, W, ...) image: out[u, (v + shift[u]) % W] = image[u, v]
    (ouster-sdk's convention); inverse=True staggers back to the raw column order. Structured
    (H, W) arrays move whole points, padding included."""
    shifts = np.asarray(pixel_shift_by_row, dtype=np.int64).reshape(-1)
    if image.shape[0] != shifts.size:
        raise ValueError(f"image has {image.shape[0]} rows, pixel_shift_by_row {shifts.size}")
    if image.dtype.names is not None and image.ndim == 2:
        arr = np.ascontiguousarray(image)
        raw = arr.view(np.uint8).reshape(arr.shape[0], arr.shape[1], arr.dtype.itemsize)
        return destagger(raw, shifts, inverse).reshape(arr.shape[0], -1).view(arr.dtype)
    w = image.shape[1]
    sign = 1 if inverse else -1                       # out[u, c] = image[u, (c - shift) % W]
    src = np.mod(np.arange(w)[None, :] + sign * shifts[:, None], w)     # (H, W)
    return image[np.arange(shifts.size)[:, None], src]
