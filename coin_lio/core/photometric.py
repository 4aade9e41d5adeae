"""COIN-LIO's photometric part inside the filter: per-scan intensity image, patch residuals and
their Jacobians (through the deskewing: patch points are moved back to the time their pixel was
measured), patch tracking and degeneracy-aware selection of new patches.

A patch is P = size^2 world points with reference intensities from the frame it was selected
in. Residual of point k in the current scan, at filter state x (IMU pose R, p; extrinsic R_IL, t_IL):
    q      = R^T (P_k - p)                   point in the IMU frame at scan end
    p_end  = R_IL^T (q - t_IL)               LiDAR frame at scan end
    p_t    = R_t^T (p_end - t_t)             LiDAR frame at the time t of its pixel (IMU motion)
    r      = I(pi(p_t)) - ref_k
    dr/dx  = grad I . dpi/dp (p_t) . R_t^T . [ -R_IL^T R^T  |  R_IL^T [q]x ]   (position, rotation)
Rows are scaled by photo_scale and share the LiDAR noise, as in the reference.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Callable

import numpy as np

from coin_lio.config import PhotometricConfig
from coin_lio.core.deskew import lidar_motion
from coin_lio.core.iekf import Measurements
from coin_lio.core.motion_kernel import column_time_layout
from coin_lio.core.imu_propagation import ImuTrack
from coin_lio.core.robust_kernel import huber_weights_kernel
from coin_lio.core.state import NavState
from coin_lio.photometric.patch_kernel import patch_rows_kernel, track_kernel
from coin_lio.photometric.projection_kernel import project_at_pixel_time, scan_end_points


@dataclass
class PhotoFrame:
    """One scan's image data (destaggered image layout, (H, W) each)."""

    image: np.ndarray        # filtered intensity, float32
    grad_u: np.ndarray
    grad_v: np.ndarray
    mask: np.ndarray         # bool: patches may live here
    range: np.ndarray        # m, 0 where no point; short row gaps on continuous surfaces filled
    point_index: np.ndarray  # flat index into the organised cloud, -1 where no point
    cloud: np.ndarray        # (H*W,) the organised cloud, flat (structured), LiDAR frame at each point's time
    returns: np.ndarray      # m: the range as measured (0: no return), before the gaps were filled

    def xyz(self, index: np.ndarray) -> np.ndarray:
        """(..., 3) float64 points of the cloud at flat indices (...)."""
        return np.stack([self.cloud[c][index] for c in ("x", "y", "z")], axis=-1).astype(np.float64)


@dataclass
class PatchSet:
    world: np.ndarray        # (M, P, 3) world points
    ref: np.ndarray          # (M, P) reference intensities
    age: np.ndarray          # (M,) scans tracked
    uv: np.ndarray           # (M, 2) last centre pixel
    origin: np.ndarray       # (M, 3) world position of the LiDAR when the patch was selected

    @classmethod
    def empty(cls, p: int) -> "PatchSet":
        return cls(np.zeros((0, p, 3)), np.zeros((0, p)), np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 3)))

    def __len__(self) -> int:
        return len(self.age)

    def keep(self, sel: np.ndarray) -> "PatchSet":
        return PatchSet(*(getattr(self, f.name)[sel] for f in fields(self)))

    def concat(self, other: "PatchSet") -> "PatchSet":
        return PatchSet(*(np.concatenate([getattr(self, f.name), getattr(other, f.name)]) for f in fields(self)))

    def view_change_cos(self, sensor: np.ndarray) -> np.ndarray:
        """(M,) cosine of the angle at each patch's centre between the rays from where the LiDAR
        was when the patch was selected and from `sensor` (3,) world."""
        centre = self.world[:, self.world.shape[1] // 2]
        a, b = centre - self.origin, centre - sensor
        # |a| |b| as np.linalg.norm(., axis=1) computes them, without its dispatch (~8 us a call)
        lengths = np.sqrt(np.add.reduce(a * a, axis=1)) * np.sqrt(np.add.reduce(b * b, axis=1))
        return np.einsum("ij,ij->i", a, b) / np.maximum(lengths, 1e-12)


class PhotometricTracker:
    def __init__(self, cfg: PhotometricConfig, noise: float = 1e-3, metadata: dict | None = None) -> None:
        # import the image side now (OpenCV, scipy.signal): not in the middle of the first scan
        import coin_lio.photometric.features  # noqa: F401
        import coin_lio.photometric.image_filter as image_filter
        from coin_lio.photometric.patches import patch_offsets

        image_filter.fir_taps(cfg.filter.highpass_taps, cfg.filter.highpass_cutoff, True)

        self.cfg, self.noise = cfg, noise
        self.features = cfg.features
        self._filter_cfg = cfg.filter                # for the model's rows once it is built (prepare)
        self.metadata = metadata if metadata is not None else (cfg.metadata_path or None)
        self.model = None                    # ImageModel, built at the first scan
        self.patches = PatchSet.empty(cfg.patch_size ** 2)
        self.offsets = patch_offsets(cfg.patch_size)
        self.rng = np.random.default_rng(0)
        self.frame: PhotoFrame | None = None
        self.track: ImuTrack | None = None
        self.end_prior: NavState | None = None
        self.stats = {"tracked": 0, "new": 0, "residuals": 0, "dropped": {}}
        self.gate_active = False                 # set by the pipeline while moving objects are seen
        self._gated: np.ndarray | None = None    # (patches,) bool
        self._uv_range: np.ndarray | None = None # (H, W) m: the range image patches.uv are pixels of

    def reset(self) -> None:
        self.patches = PatchSet.empty(self.cfg.patch_size ** 2)
        self.frame = None
        self._uv_range = None

    # ---- per scan ----------------------------------------------------------------------------
    def prepare(self, cloud: np.ndarray, times: np.ndarray, track: ImuTrack, end_prior: NavState,
                filled: tuple | None = None) -> PhotoFrame:
        """Build the scan's image, filter, mask and pixel times. cloud (H, W) structured, times (H, W);
        track and end_prior: the IMU motion over the scan (its relative motion moves points between
        a pixel's time and the scan end; the update does not change it, as in the reference);
        filled: this cloud's model.image_from_cloud(cloud, field(cloud)) when already made."""
        from coin_lio.photometric.gap_fill_kernel import fill_row_gaps
        from coin_lio.photometric.image_filter import filter_image, validity_mask

        c = self.cfg
        if self.model is None:
            from dataclasses import replace

            self.model = self._build_model(cloud)
            # the border margin (10 px for 128 rows) scales with the image: 16-ring sensors too
            rows = self.model.rows
            self.features = replace(c.features, margin=min(c.features.margin,
                                                           max(c.patch_size // 2 + 1, rows // 8)))
            self._filter_cfg = c.filter.for_rows(rows)      # once: a dataclass replace is ~10 us
        field = self.field(cloud)
        intensity, index, rng = filled if filled is not None else self.model.image_from_cloud(cloud, field=field)
        returns = rng
        if c.mask.fill_gaps_px > 0:          # grazing dark ground: single returns missing
            rng, _ = fill_row_gaps(np.ascontiguousarray(rng, np.float32), c.mask.fill_gaps_px,
                                   c.mask.fill_gaps_rel, c.mask.wrap_horizontal)
        filt = filter_image(intensity, self._filter_cfg, scale=field != "reflectivity")
        mask = validity_mask(rng, c.mask)
        self.frame = PhotoFrame(filt.image, filt.grad_u, filt.grad_v, mask, rng, index, cloud.reshape(-1),
                                returns)
        self.track, self.end_prior = track, end_prior
        self._gated = None                       # this scan's patches in the update (_gate)
        # LiDAR(t) -> LiDAR(end) once per distinct pixel time (an Ouster scan has one per column),
        # not once per patch point and iteration; time_index (H, W): each pixel's time
        flat_times = np.asarray(times, np.float64).reshape(-1)
        t2 = flat_times.reshape(cloud.shape)
        if self.model.kind == "rings":          # Velodyne-like: time from each pixel's point, per column
            pixel_time = _ring_pixel_times(flat_times, index)
            times, col_inv = np.unique(pixel_time[0], return_inverse=True)
            self.time_index = np.broadcast_to(col_inv, pixel_time.shape)
        elif t2.shape[0] > 1 and (layout := column_time_layout(t2)) > 0:   # Ouster: one time per column
            columns = self.model.destagger_columns()
            if layout == 2:                      # increasing (the usual case): the pixel's column
                times, self.time_index = t2[0], columns
            else:
                times, col_inv = np.unique(t2[0], return_inverse=True)
                self.time_index = col_inv[columns]
        else:
            times, inverse = np.unique(flat_times[self.model.destagger_index()], return_inverse=True)
            self.time_index = inverse.reshape(index.shape)
        self.R_u, self.t_u = lidar_motion(times, track, end_prior)
        self.motion = (times, self.R_u, self.t_u)   # deskew's transforms at these times (deskew())
        return self.frame

    def range_image(self, cloud: np.ndarray, filled: tuple | None = None) -> np.ndarray | None:
        """(H, W) m range image of an organised cloud in the image layout (0: no return), without
        the intensity work of prepare(); None before the first prepare() built the image model."""
        if self.model is None:
            return None
        return (filled if filled is not None else self.model.image_from_cloud(cloud, field=self.field(cloud)))[2]

    def field(self, cloud: np.ndarray) -> str:
        """The image channel: intensity_field, else reflectivity when the cloud lacks it."""
        f = self.cfg.intensity_field
        return f if f in (cloud.dtype.names or ()) else "reflectivity"

    def _build_model(self, cloud: np.ndarray):
        from coin_lio.photometric.projection import ImageModel

        c = self.cfg
        if not self.metadata:
            raise ValueError("photometric residuals need the sensor metadata (lio.photometric.metadata_path)")
        meta = self.metadata
        if not isinstance(meta, dict):
            import json
            from pathlib import Path

            meta = json.loads(Path(meta).read_text())
        if meta.get("sensor") == "velodyne" or "altitudes_deg_by_ring" in meta:   # ring + azimuth image
            return ImageModel.from_rings(meta["altitudes_deg_by_ring"], int(meta.get("columns_per_frame", 1024)))
        if cloud.ndim != 2 or cloud.shape[0] < 2:
            raise ValueError("an Ouster image model needs the organised cloud (height = rows)")
        model = ImageModel.from_metadata(meta, u_shift=max(c.u_shift, 0), destaggered=c.destaggered)
        if c.u_shift < 0:   # calibrate the column offset on the data: robust to frame conventions
            model.u_shift = model.estimate_u_shift(cloud) % model.cols
        return model

    # ---- residuals ---------------------------------------------------------------------------
    def measure(self, x: NavState) -> Measurements:
        """Photometric rows at state x (position, rotation columns), patches fully visible only."""
        n = len(self.patches)
        if n == 0 or self.frame is None:
            return Measurements(np.zeros(0), np.zeros((0, 6)), np.ones(0))
        p_t, k, q, uv, ok = self._project(x, self.patches.world)
        f = self.frame
        valid, inten, gu, gv, res, H = patch_rows_kernel(uv, ok, f.image, f.grad_u, f.grad_v, f.mask,
                                                         p_t.reshape(-1, 3), self.model.jacobian_args(),
                                                         self.R_u, k, q, self.patches.ref, x.rot_il, x.rot)
        if not valid.any():
            return Measurements(np.zeros(0), np.zeros((0, 6)), np.ones(0))
        sel = np.flatnonzero(valid)
        if self.gate_active or self.cfg.change_gate_px > 0:   # moving objects: their patches sit out
            sel = sel[self._gate(sel, inten, gu, gv, uv[:, uv.shape[1] // 2])]
        r = res[sel].reshape(-1)
        H = H[sel].reshape(-1, 6)
        s = self.cfg.photo_scale
        var = np.full(r.size, self.noise)
        if self.cfg.huber_k > 0:
            var /= huber_weights(r, self.cfg.huber_k)
        return Measurements(s * r, s * H, var)

    def _gate(self, sel: np.ndarray, inten: np.ndarray, gu: np.ndarray, gv: np.ndarray,
              centre_uv: np.ndarray) -> np.ndarray:
        """(S,) bool over sel: the patches that stay in the update, decided once per scan at the
        first linearisation (the prior; inten, gu, gv (M, P) of every patch are read only then) and
        kept for the iterations. Out go, while moving objects
        are seen (gate_active), patches whose residual RMS per unit of their gradient RMS (a pose
        error of d pixels gives about |grad| x d on every patch) exceeds residual_gate x the median
        patch's: a patch a person or a car walks into, or next to (the brightness normalisation's
        window), disagrees with every other patch at once; and always, patches near which the range
        image changed since the last scan (_moved_near; centre_uv (M, 2) this scan's centres)."""
        if self._gated is None or len(self._gated) != len(self.patches):
            self._gated = np.ones(len(self.patches), bool)
            if self.gate_active and len(sel) >= 5 and self.cfg.residual_gate > 0:
                rms = np.sqrt(np.mean((inten[sel] - self.patches.ref[sel]) ** 2, axis=1))   # (S,)
                ratio = rms / (np.sqrt(np.mean(gu[sel] ** 2 + gv[sel] ** 2, axis=1)) + 1.0)
                self._gated[sel[ratio > self.cfg.residual_gate * max(float(np.median(ratio)), 0.05)]] = False
            self._gated &= ~self._moved_near(centre_uv)
        return self._gated[sel]

    def _moved_near(self, centre_uv: np.ndarray) -> np.ndarray:
        """(patches,) bool: something moved in the patch's brightness window since the last scan
        (centre_uv (M, 2): the patches' centres in this scan at the prior)."""
        from coin_lio.photometric.change_kernel import window_change

        c = self.cfg
        if c.change_gate_px <= 0 or self._uv_range is None or len(self.patches.uv) != len(centre_uv):
            return np.zeros(len(centre_uv), bool)
        bw = c.filter.brightness_window
        prev = np.ascontiguousarray(self._uv_range, np.float32)
        changed, _ = window_change(np.ascontiguousarray(self.frame.range, np.float32),
                                   np.ascontiguousarray(centre_uv, np.float64), prev,
                                   np.ascontiguousarray(self.patches.uv, np.float64),
                                   bw[0] // 2 + c.patch_size // 2, bw[1] // 2 + c.patch_size // 2,
                                   c.change_margin, 0.1)
        return changed >= c.change_gate_px

    def _project(self, x: NavState, world: np.ndarray):
        """world (M, P, 3) -> p_t (M, P, 3) in LiDAR(t), k (M*P,) the pixel time's index into
        R_u / t_u, q (M, P, 3) in the IMU frame, uv (M, P, 2), ok (M, P)."""
        m, p = world.shape[:2]
        q, p_end = scan_end_points(np.ascontiguousarray(world, np.float64).reshape(-1, 3),
                                   x.pos, x.rot, x.pos_il, x.rot_il)
        p_t, k, uv, ok = project_at_pixel_time(p_end, *self.model.projection_args(), self.time_index,
                                               self.R_u, self.t_u)
        return p_t.reshape(m, p, 3), k, q.reshape(m, p, 3), uv.reshape(m, p, 2), ok.reshape(m, p)

    # ---- after the update: track, then select ---------------------------------------------
    def track_and_select(self, x: NavState, weak_world: np.ndarray,
                         static: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        """Drop lost patches, age the rest, add new ones where the weak directions need them;
        `static(world (C, 3)) -> (C,) bool` vetoes new patches off the static map (moving objects)."""
        c, f = self.cfg, self.frame
        drops = self.stats["dropped"]
        if len(self.patches):
            p_t, _, _, uv, ok = self._project(x, self.patches.world)
            centre = uv[:, uv.shape[1] // 2]
            # inside the image and mask; visible: not occluded (the measurement is well in front
            # of the patch, not merely off by the range gradient of a surface seen at grazing
            # incidence); the NCC against the reference intensities
            inside, visible, score = track_kernel(f.image, f.mask, f.range, uv, ok, p_t, self.patches.ref,
                                                  int(self.features.margin), float(c.occlusion_threshold),
                                                  float(c.occlusion_relative))
            similar = score > c.ncc_threshold
            aged = self.patches.age + 1 >= c.max_age
            turned = np.zeros(len(aged), bool)   # a reference is one view: seen from too far aside, stale
            if c.max_view_change_deg > 0:
                turned = self.patches.view_change_cos(x.lidar_pose()[:3, 3]) < np.cos(np.radians(c.max_view_change_deg))
            young = ~aged & ~turned
            tracked = inside & visible & similar
            for name, flag in (("left_image", ~inside), ("occluded", inside & ~visible),
                               ("ncc", inside & visible & ~similar), ("age", tracked & aged),
                               ("view", tracked & ~aged & turned)):
                drops[name] = drops.get(name, 0) + int(flag.sum())
            keep = tracked & young
            self.patches = self.patches.keep(keep)
            self.patches.age += 1
            self.patches.uv = centre[keep]
        self.stats["tracked"] = len(self.patches)
        self.stats["new"] = self._select(x, weak_world, static)
        self._uv_range = f.range                 # patches.uv: pixels of this scan's image

    def _select(self, x: NavState, weak_world: np.ndarray, static=None) -> int:
        from coin_lio.photometric.features import (detect_candidates, dominant_directions,
                                                   random_candidates, select_patches)
        from coin_lio.photometric.patch_kernel import candidate_patch_kernel
        from coin_lio.photometric.patches import patch_intensities

        c, f = self.cfg, self.frame
        need = c.features.num_features - len(self.patches)
        if len(self.patches) >= c.features.refill_below * c.features.num_features:   # need <= 0 too
            return 0
        existing = np.rint(self.patches.uv) if len(self.patches) else None
        if c.features.selection_mode == "random":
            cand = random_candidates(f.mask, existing, self.features, self.rng)[: 20 * need]
        else:
            cand, _ = detect_candidates(f.grad_u, f.grad_v, f.mask, existing, self.features)
        if len(cand) == 0:
            return 0
        # (K, P) point indices; full: every pixel filled and its bilinear neighbours in the mask,
        # as tracking will demand
        idx, full = candidate_patch_kernel(f.point_index, f.mask, np.ascontiguousarray(cand, np.int64),
                                           c.patch_size)
        centre_pts = np.where(full[:, None], f.xyz(np.clip(idx[:, idx.shape[1] // 2], 0, None)), np.nan)
        dirs = dominant_directions(f.image, cand, c.features.structure_block, c.features.structure_ksize)
        R_wl = x.rot @ x.rot_il
        weak_lidar = np.asarray(weak_world, float).reshape(-1, 3) @ R_wl       # R_WL^T v
        chosen = select_patches(cand, dirs, weak_lidar, centre_pts, self.model, need,
                                c.features.selection_mode, self.rng, valid=full)
        if len(chosen) == 0:
            return 0
        pid = idx[chosen]                                                    # (C, P) point indices
        raw = f.xyz(pid)                                                     # LiDAR(t) frame
        k = self.time_index.reshape(-1)[self._pixel_flat(cand[chosen])].reshape(-1)   # (C*P,)
        R_t, t_t = self.R_u[k], self.t_u[k]
        p_end = np.einsum("nij,nj->ni", R_t, raw.reshape(-1, 3)) + t_t
        T = x.lidar_pose()
        world = (p_end @ T[:3, :3].T + T[:3, 3]).reshape(len(chosen), -1, 3)
        if static is not None:
            on_map = static(world[:, world.shape[1] // 2])
            chosen, world = chosen[on_map], world[on_map]
            if len(chosen) == 0:
                return 0
        ref = patch_intensities(f.image, cand[chosen], c.patch_size)
        new = PatchSet(world, ref, np.zeros(len(chosen), np.int64), cand[chosen].astype(float),
                       np.repeat(T[:3, 3][None], len(chosen), axis=0))
        self.patches = self.patches.concat(new)
        return len(chosen)

    def _pixel_flat(self, centres: np.ndarray) -> np.ndarray:
        """Flat pixel indices (C, P) of the patches around integer centres (C, 2)."""
        h, w = self.frame.image.shape
        pix = np.rint(centres[:, None, :] + self.offsets[None]).astype(np.int64)
        return np.clip(pix[..., 1], 0, h - 1) * w + np.mod(pix[..., 0], w)



def huber_weights(r: np.ndarray, k: float, min_rows: int = 50) -> np.ndarray:
    """(N,) IRLS weights of residuals r (N,): 1 within k x the robust spread (1.4826 x median |r|),
    k x spread / |r| beyond (Huber). All 1 below min_rows rows or when the spread is 0: too few
    rows to tell the bulk from the outliers. (One compiled pass: core/robust_kernel.py.)"""
    return huber_weights_kernel(np.ascontiguousarray(r, dtype=np.float64).reshape(-1), float(k), int(min_rows))


def _ring_pixel_times(flat_times: np.ndarray, index: np.ndarray) -> np.ndarray:
    """(H, W) time of each image column for a ring + azimuth image: the median time of the points
    that landed in the column, interpolated across empty columns (a spinning sensor's time is
    linear in azimuth)."""
    h, w = index.shape
    has = index >= 0
    t = np.where(has, flat_times[np.clip(index, 0, None)], np.nan)
    with np.errstate(all="ignore"):
        col = np.nanmedian(np.where(has.any(axis=0)[None, :], t, 0.0), axis=0)
    known = has.any(axis=0)
    if not known.any():
        raise ValueError("no point landed in the image")
    cols = np.arange(w)
    col = np.interp(cols, cols[known], col[known])
    return np.broadcast_to(col, (h, w)).copy()
