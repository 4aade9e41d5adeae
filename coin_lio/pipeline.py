"""LiDAR-inertial odometry pipeline (FAST-LIO2 geometric core): IMU initialisation and
propagation, deskewing, voxel downsampling, iterated point-to-plane update, local map.

Pure numpy/scipy. `LioPipeline` also satisfies coin_lio.eval's Odometry protocol
(add_imu / add_scan), so the benchmark runner runs it beside the peers.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from coin_lio.config import LioConfig
from coin_lio.core.degeneracy import Degeneracy, analyse, hold_biases, weak_bias_subspace
from coin_lio.core.clip_recovery import ClipRecovery
from coin_lio.core.deskew import deskew
from coin_lio.core.jolt_timing import ClockSearch
from coin_lio.core.iekf import Measurements, consider_covariance, information_6, iterated_update
from coin_lio.core.imu_propagation import ImuInitializer, ImuSample, interp_samples, propagate
from coin_lio.core.local_map import LocalMap, voxel_downsample
from coin_lio.core.map_seed import InitScans
from coin_lio.core.free_space import FreeSpaceCheck
from coin_lio.core.geometric_residuals import GeometricResiduals
from coin_lio.core.state import DIM, POS, VEL, NavState
from coin_lio.core.stationary import is_stationary
from coin_lio.core.time_offset import TimeOffsetEstimator
from coin_lio.imu_saturation import ImuSaturation
from coin_lio.io.cloud_kernel import gather_points, select_and_fill, select_points


@dataclass
class ScanResult:
    t_end: float                       # s, time of the pose (last point of the scan)
    status: str                        # 'initialising' | 'mapped' | 'tracked' | 'degraded'
    T_world_lidar: np.ndarray | None   # 4x4
    state: NavState | None
    degeneracy: Degeneracy | None = None
    num_points: int = 0                # registered (downsampled) points
    num_residuals: int = 0
    iterations: int = 0
    converged: bool = False
    timings_ms: dict = field(default_factory=dict)
    points_world: np.ndarray | None = None   # (M, 3) registered points, world frame
    covariance: np.ndarray | None = None     # (6, 6) of [position, rotation] (IMU body, world)
    num_photometric: int = 0                 # photometric residual rows in the last iteration
    num_tracked_patches: int = 0             # patches that survived tracking into this scan
    num_new_patches: int = 0                 # patches selected in this scan
    image: np.ndarray | None = None          # (H, W) float32 filtered intensity image
    patch_uv: np.ndarray | None = None       # (M, 2) patch centres in that image
    in_free_space: int = -1                  # registered points in space seen free before (-1: not checked)
    stationary: bool = False                 # standing still: velocity zero, position held (the attitude from the scan)


ZUPT_SIGMA = 0.01    # m/s: standing still, the velocity is zero to this ...
HOLD_SIGMA = 0.001   # m: ... and the position stays at the prior's to this
SEARCH_POINTS = 1500  # points registered per candidate shift when a jolt's scan reads the IMU clock

class LioPipeline:
    name = "coin_lio_geometric"

    def __init__(self, cfg: LioConfig | None = None, T_imu_lidar: np.ndarray | None = None,
                 metadata: dict | None = None) -> None:
        """metadata: the sensor's Ouster metadata (dict) instead of photometric.metadata_path."""
        self.cfg = cfg or LioConfig()
        self.T_imu_lidar = (np.asarray(T_imu_lidar, float) if T_imu_lidar is not None
                            else self.cfg.extrinsic.matrix())
        self.events: list[tuple[str, str]] = []   # (kind, message) for the caller to log
        self.saturation = ImuSaturation(self.cfg.input_check)   # kept over resets: the IMU's range
        c = self.cfg.imu
        self._recoveries_said = 0                  # clip_recovery.recovered at the last report
        floor = self.cfg.input_check.clip_acc_floor
        self.clip_recovery = ClipRecovery(c.jolt_threshold, c.jolt_max_s, clip_floor=floor) if c.clip_recovery else None
        # s, IMU clock minus LiDAR clock: imu.time_offset, then the online estimate (kept over resets)
        self.time_offset = self.cfg.imu.time_offset
        self.offset_estimator = TimeOffsetEstimator()
        self.clock_search = ClockSearch()
        self.free_space = FreeSpaceCheck(self.cfg.free_space)
        self.photo = None
        self.set_metadata(metadata or self.cfg.photometric.metadata_path or None)
        if self.photo is None and self.cfg.photometric.enabled:
            self.events.append(("photometric_off", "no sensor metadata (photometric.metadata_path): "
                                "geometric residuals only"))
        self.reset()

    def set_metadata(self, metadata: dict | str | None) -> None:
        """The sensor metadata (dict or JSON path) of the photometric part, which switches on with
        it (when enabled); patches tracked so far are dropped."""
        if metadata and self.cfg.photometric.enabled:
            from coin_lio.core.photometric import PhotometricTracker

            self.photo = PhotometricTracker(self.cfg.photometric, self.cfg.update.lidar_noise, metadata)

    # ---- state -------------------------------------------------------------------------
    def reset(self) -> None:
        self.imu: list[ImuSample] = []
        self.init = ImuInitializer(self.cfg.imu)
        self.state: NavState | None = None
        self.P: np.ndarray | None = None
        self.acc_scale = 1.0
        self.t_state: float | None = None          # time the state refers to
        self.map = LocalMap(self.cfg.map)
        self.init_scans = InitScans(self.cfg.map.confirm_s)
        self.last_imu_t: float | None = None
        self._jolts: list = []                     # JoltCorrection for the next propagation
        self._last_update: tuple | None = None     # (t, P prior, P posterior) of the last scan
        if self.clip_recovery is not None:
            self.clip_recovery.reset()
        self.offset_estimator.reset()
        self.free_space.reset()
        self._tracked = False                      # the last scan was tracked (a pair can start)
        self._clock_search_after = -np.inf         # s: no jolt clock search before (rate limit)
        self._photo_linger = self.cfg.photometric.linger_scans   # on at the start (on_demand)
        self._movers_seen = 0                      # scans left of the patch gate (movers seen lately)
        if self.photo is not None:
            self.photo.reset()

    @property
    def initialised(self) -> bool:
        return self.state is not None

    # ---- inputs --------------------------------------------------------------------------
    def add_imu(self, t_s: float, gyro: np.ndarray, acc: np.ndarray) -> bool:
        """One IMU sample stamped t_s on the IMU clock (moved onto the LiDAR clock by
        imu.time_offset and its online estimate); returns False (and records why) when rejected."""
        t_s -= self.time_offset
        gyro, acc = np.asarray(gyro, float), np.asarray(acc, float)
        g, a = gyro.ravel().tolist(), acc.ravel().tolist()   # six scalars: plain Python (~10 us less)
        if not (math.isfinite(t_s) and all(map(math.isfinite, g)) and all(map(math.isfinite, a))):
            self.events.append(("imu_nan", "IMU sample with NaN/inf dropped"))
            return False
        if max(map(abs, a)) > 500 or max(map(abs, g)) > 100:
            self.events.append(("imu_range", "IMU sample beyond physical range dropped"))
            return False
        if self.last_imu_t is not None:
            if t_s < self.last_imu_t - 1.0:
                self.events.append(("time_jump", f"IMU time jumped back {self.last_imu_t - t_s:.2f} s: reset"))
                self.reset()
            elif t_s <= self.last_imu_t:
                self.events.append(("imu_order", "IMU sample out of order or duplicated: dropped"))
                return False
            elif t_s - self.last_imu_t > self.cfg.imu.max_gap:
                if self.initialised:
                    self.events.append(("imu_gap", f"IMU gap of {t_s - self.last_imu_t:.2f} s: reset"))
                self.reset()   # also before initialisation: the old samples do not belong to this start
        self.last_imu_t = t_s
        self.saturation.observe(gyro, acc)          # reported; a jolt's clipped readings recovered
        self.events.extend(self._with_recoveries(self.saturation.events))
        self.saturation.events.clear()
        sample = ImuSample(t_s, gyro, acc)
        if self.state is None:
            self.init.add(sample)
        self.imu.append(sample)
        if self.clip_recovery is not None:
            done = self.t_state if self.t_state is not None else -np.inf
            jolt = self.clip_recovery.add(sample, self.saturation.acc_clipped, done)
            if jolt is not None and self.state is not None:
                self._jolts.append(jolt)
        return True

    def add_scan(self, t_s: float, points: np.ndarray, point_times: np.ndarray) -> np.ndarray | None:
        """Odometry protocol: returns T_world_lidar at the scan end, or None."""
        return self.process_scan(points, point_times).T_world_lidar

    def add_organized_scan(self, t_s: float, cloud: np.ndarray, point_times: np.ndarray) -> np.ndarray | None:
        """Odometry protocol, organised entry: cloud (H, W) as published, point_times (H, W) s."""
        return self.process_cloud(cloud, point_times).T_world_lidar

    def process_cloud(self, cloud: np.ndarray, point_times: np.ndarray,
                      valid: np.ndarray | None = None) -> ScanResult:
        """One scan straight from the driver's structured cloud (H, W) (or (1, N)) with its point
        times (H, W) absolute s and, optionally, a validity mask (H, W): the preprocess selection
        is made on the cloud's own xyz and only the kept points are converted to float64 (taking
        every valid point out first cost ~9 ms of a 128x1024 scan)."""
        t0 = time.perf_counter()
        model = self.photo.model if self.photo is not None else None
        fill = None
        if (model is not None and model.kind == "ouster" and cloud.shape == model.shape
                and self.photo.field(cloud) in (cloud.dtype.names or ())):
            # the photometric image (or the free-space check's range image) is built every scan:
            # select the points and fill it in the same pass over the cloud
            fill = (cloud[self.photo.field(cloud)].reshape(-1), model.pixel_of_point(), *model.shape)
        pts, times, filled = self.preprocess_cloud(cloud, point_times, valid, fill)
        organized = (cloud, point_times) if filled is None else (cloud, point_times, filled)
        return self.process_scan(pts, times, organized, preprocessed_ms=_ms(t0))

    # ---- the scan ------------------------------------------------------------------------
    def preprocess(self, points: np.ndarray, point_times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.cfg.preprocess
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        times = np.asarray(point_times, dtype=np.float64).reshape(-1)
        r2 = np.einsum("ij,ij->i", pts, pts)                # NaN compares False: dropped
        ok = np.isfinite(times) & (r2 > c.blind * c.blind) & (r2 < c.max_range * c.max_range)
        idx = np.flatnonzero(ok)[:: c.point_stride]
        return pts[idx], times[idx]

    def preprocess_cloud(self, cloud: np.ndarray, point_times: np.ndarray, valid: np.ndarray | None = None,
                         fill: tuple | None = None) -> tuple[np.ndarray, np.ndarray, tuple | None]:
        """preprocess() of a structured cloud's valid points, selected on its (float32) xyz: points
        (M, 3) float64, times (M,) s; with fill = (value field (H*W,), pixel of each point (H*W,),
        H, W) also the image, point index and range (H, W) of image_from_cloud, in the same pass
        (else None)."""
        c = self.cfg.preprocess
        x, y, z = (cloud[k].reshape(-1) for k in ("x", "y", "z"))      # strided views, no copies
        times = np.asarray(point_times, dtype=np.float64).reshape(-1)
        ok = np.ones(len(times), bool) if valid is None else np.asarray(valid, bool).reshape(-1)
        limits = (c.blind * c.blind, c.max_range * c.max_range, c.point_stride)
        if fill is None:
            idx, filled = select_points(x, y, z, times, ok, *limits), None
        else:
            out = select_and_fill(x, y, z, fill[0], times, ok, *limits, *fill[1:])
            idx, filled = out[0], out[1:]
        return (*gather_points(x, y, z, times, idx), filled)

    def process_scan(self, points: np.ndarray, point_times: np.ndarray,
                     organized: tuple[np.ndarray, np.ndarray] | None = None,
                     preprocessed_ms: float | None = None) -> ScanResult:
        """One scan. points (N, 3) LiDAR frame, point_times (N,) absolute s; organized: the
        published (H, W) cloud and its (H, W) point times, for the photometric residuals.
        preprocessed_ms: the points are preprocess()'s output already, made in this many ms."""
        tm: dict[str, float] = {}
        t0 = time.perf_counter()
        if preprocessed_ms is None:
            pts, times = self.preprocess(points, point_times)
            tm["preprocess"] = _ms(t0)
        else:
            pts, times = np.asarray(points, dtype=np.float64), np.asarray(point_times, dtype=np.float64)
            tm["preprocess"] = preprocessed_ms
            t0 -= preprocessed_ms * 1e-3                     # the total counts it
        if len(pts) < 10:
            self.events.append(("scan_empty", f"scan with {len(pts)} usable points skipped"))
            return ScanResult(float(np.max(point_times)) if np.size(point_times) else float("nan"),
                              "skipped", None, None, timings_ms=tm)
        t_end = float(times.max())
        if self.state is None:
            if not self.init.ready:                   # at rest: held for the first map (map_seed.py)
                self.init_scans.add(pts[voxel_downsample(pts, self.cfg.preprocess.scan_voxel)], t_end)
                return ScanResult(t_end, "initialising", None, None, timings_ms=tm)
            if self.init.moving():
                self.events.append(("init_moving", "IMU initialisation while moving: expect a biased start"))
                self.init_scans.clear()
            self.state, self.P, self.acc_scale = self.init.initial_state()
            self.state.rot_il = self.T_imu_lidar[:3, :3].copy()
            self.state.pos_il = self.T_imu_lidar[:3, 3].copy()
            self.t_state = self.init.samples[-1].t
        if t_end <= self.t_state:
            self.events.append(("scan_order", "scan ends before the filter time: skipped"))
            return ScanResult(t_end, "skipped", None, None, timings_ms=tm)
        t1 = time.perf_counter()
        self._apply_jolts()
        imu_window = self._imu_window(self.t_state, t_end)
        x_prop, P_prop, track = propagate(self.state, self.P, imu_window, self.t_state, t_end,
                                          self.cfg.imu, self.acc_scale)
        tm["propagate"] = _ms(t1)
        in_jolt = self._in_jolt(times)
        if (in_jolt is not None and self.cfg.imu.jolt_timing and len(self.map)
                and t_end >= self._clock_search_after):
            t1 = time.perf_counter()
            step = self._clock_from_jolt(pts, times, track, x_prop, P_prop)
            # a found shift is refined on the next jolt scan; otherwise the next search waits
            # (a legged robot's footfalls may reach the jolt floor every scan: ~0.1 s each)
            self._clock_search_after = t_end if step is not None else t_end + self.cfg.imu.jolt_timing_every
            if step is not None:                 # this scan on the found clock, from its start
                self._move_imu_clock(step, f"a jolt's scan fits the map best with the IMU track "
                                     f"{1e3 * step:+.1f} ms later")
                imu_window = self._imu_window(self.t_state, t_end)
                x_prop, P_prop, track = propagate(self.state, self.P, imu_window, self.t_state, t_end,
                                                  self.cfg.imu, self.acc_scale)
                in_jolt = self._in_jolt(times)   # the spans moved with the clock
            tm["jolt_clock"] = _ms(t1)
        jolt = self._jolt_points(in_jolt)
        if jolt is not None:
            pts, times = pts[~jolt], times[~jolt]
        # Downsample, then deskew only the points kept (FAST-LIO2 deskews every point first): the
        # voxel choice on the raw points differs by the motion within a scan (centimetres), and
        # each kept point is then moved exactly; a quarter of the work of deskewing everything.
        t1 = time.perf_counter()
        sel = self._downsample(pts, self.cfg.preprocess.max_points)
        tm["downsample"] = _ms(t1)
        on_demand = self.cfg.photometric.on_demand
        photo = (self._prepare_photometric(organized, track, x_prop, tm)
                 if not on_demand or self._photo_linger > 0 else None)
        if photo is not None:
            photo.gate_active = self._movers_seen > 0 and self.cfg.photometric.residual_gate > 0
        t1 = time.perf_counter()   # with the image's per-column motion when there is one
        body = deskew(pts[sel], times[sel], track, x_prop, photo.motion if photo is not None else None).points
        tm["deskew"] = _ms(t1)

        if len(self.map) == 0:   # first scan: it (its static part) becomes the map
            self._commit(x_prop, P_prop, t_end)
            world = _to_world(x_prop, body)
            now, waiting = self.init_scans.seed(self.map, lambda p: _to_world(x_prop, p), world, t_end)
            if waiting:
                self.events.append(("first_map", f"first map: {now} voxels seen at rest {self.cfg.map.confirm_s:g} s "
                                    f"before entered at once, {waiting} wait for static confirmation"))
            res0 = ScanResult(t_end, "mapped", x_prop.lidar_pose(), x_prop, num_points=len(body),
                              timings_ms=tm, points_world=world,
                              covariance=P_prop[:6, :6].copy())
            return self._finish_photometric(photo, res0, np.zeros((0, 3)), tm)

        geo = GeometricResiduals(body, self.map, self.cfg)
        n_photo = [0]
        still = is_stationary(np.array([s.gyro for s in imu_window]),
                              self.acc_scale * np.array([s.acc for s in imu_window]), x_prop, self.cfg.stationary)

        def measure(x: NavState, it: int) -> Measurements:
            g = geo(x, it)
            if photo is None:
                return g
            t_ph = time.perf_counter()
            p = photo.measure(x)
            tm["photometric"] = tm.get("photometric", 0.0) + _ms(t_ph)
            n_photo[0] = len(p.h)
            if g.H.shape[1] == p.H.shape[1]:
                H = np.concatenate([g.H, p.H])
            else:                                                          # extrinsic columns: 0
                H = np.zeros((len(g.h) + len(p.h), g.H.shape[1]))
                H[:len(g.h)], H[len(g.h):, :p.H.shape[1]] = g.H, p.H
            return Measurements(np.concatenate([g.h, p.h]), H, np.concatenate([g.var, p.var]))

        t1 = time.perf_counter()
        # standing still: the scan's rows plus a zero-velocity update, the position held at the prior
        update_rows = (lambda x, it: _held(measure(x, it), x, x_prop)) if still else measure
        try:
            res = iterated_update(x_prop, P_prop, update_rows, self.cfg.update)
        except (np.linalg.LinAlgError, FloatingPointError) as exc:
            self.events.append(("update_failed", f"update failed ({exc}): IMU-only pose"))
            res = None
        tm["update"] = _ms(t1) - geo.search_ms - tm.get("photometric", 0.0)
        tm["nearest_neighbours"] = geo.search_ms
        status = "tracked"
        if res is None or not res.state.is_finite() or len(geo.planes) < 20:
            status = "degraded"
            if res is not None and len(geo.planes) < 20:
                self.events.append(("few_residuals", f"only {len(geo.planes)} plane matches: IMU-only pose"))
            x_new, P_new, meas = x_prop, P_prop, None
        else:
            x_new, P_new, meas = res.state, res.P, geo.last
        degen = None
        if meas is not None and len(meas.h):
            degen = analyse(information_6(meas.H, meas.var), geo.last_normals, self.cfg.degeneracy)
            hold = (weak_bias_subspace(degen, x_new.rot)
                    if self.cfg.update.hold_weak_biases and self._movers_seen > 0 else None)
            if hold is not None and hold.any():
                hold_biases(x_new, x_prop, hold)
                P_new = consider_covariance(P_prop, P_new, res.meas, hold)
        self._estimate_time_offset(x_new, t_end, status == "tracked" and not still, imu_window)
        self._commit(x_new, P_new, t_end)
        self._last_update = (t_end, P_prop, P_new)
        t1 = time.perf_counter()
        world = _to_world(x_new, body)
        self.map.insert(world, t_end)
        self.map.trim(x_new.lidar_pose()[:3, 3])
        tm["map"] = _ms(t1)
        out = ScanResult(t_end, status, x_new.lidar_pose(), x_new, degen, len(body), len(geo.planes),
                         res.iterations if res else 0, bool(res and res.converged), tm, world,
                         P_new[:6, :6].copy(), num_photometric=n_photo[0], stationary=still)
        if on_demand and self.photo is not None:   # the photometric part where geometry is weak
            if degen is not None and bool(np.any(degen.weak)):
                if photo is None and self._photo_linger == 0:   # resting until now: patches for the next scan
                    photo = self._prepare_photometric(organized, track, x_prop, tm)
                self._photo_linger = self.cfg.photometric.linger_scans
            else:
                self._photo_linger = max(0, self._photo_linger - 1)
        self._check_free_space(out, body, photo, organized, status, tm)
        weak = degen.weak_translation if degen is not None else np.zeros((0, 3))
        out = self._finish_photometric(photo, out, weak, tm)
        if on_demand and self.photo is not None and self._photo_linger == 0:
            self.photo.reset()                       # resting: no stale patches when it starts again
        tm["total"] = _ms(t0)
        return out

    def _check_free_space(self, out: ScanResult, body: np.ndarray, photo, organized, status: str,
                          tm: dict) -> None:
        """Count the registered points in space seen free a few scans before (movers, dust)."""
        if self.photo is None or organized is None or status != "tracked":
            return
        t1 = time.perf_counter()
        try:
            rng = photo.frame.returns if photo is not None else self.photo.range_image(organized[0], _filled(organized))
        except ValueError:                           # a cloud the image model does not fit: said elsewhere
            rng = None
        if rng is not None:
            flags = self.free_space.check(body, out.T_world_lidar, rng, self.photo.model)
            out.in_free_space = -1 if flags is None else int(flags.sum())
            self._movers_seen = 10 if out.in_free_space >= 2 else max(0, self._movers_seen - 1)
            tm["free_space"] = _ms(t1)

    def _prepare_photometric(self, organized, track, x_prop: NavState, tm: dict):
        """The photometric tracker with this scan's image, or None (off, or no organised cloud)."""
        if self.photo is None or organized is None:
            return None
        t1 = time.perf_counter()
        try:
            self.photo.prepare(organized[0], organized[1], track, x_prop, _filled(organized))
        except ValueError as exc:   # wrong metadata for this cloud, ...: say so, go on with geometry
            self.events.append(("photometric_error", f"photometric residuals off for this scan: {exc}"))
            return None
        tm["image"] = _ms(t1)
        return self.photo

    def _finish_photometric(self, photo, res: ScanResult, weak_world: np.ndarray, tm: dict) -> ScanResult:
        if photo is None or res.state is None:
            return res
        t1 = time.perf_counter()
        # with static confirmation on, new patches only on mapped (confirmed static) structure
        static = self.map.has_point_near if self.map.pending is not None else None
        photo.track_and_select(res.state, weak_world, static)
        tm["patch_selection"] = _ms(t1)
        res.num_tracked_patches = photo.stats["tracked"]
        res.num_new_patches = photo.stats["new"]
        res.image = photo.frame.image
        res.patch_uv = photo.patches.uv.copy()
        return res

    def _estimate_time_offset(self, x_new: NavState, t_end: float, tracked: bool,
                              window: list[ImuSample]) -> None:
        """Feed the scan pair (last scan end -> this one) to the clock-offset estimate; once it is
        sure (20 scans, sigma <= imu.offset_max_sigma, |offset| >= 4 sigma) and matters (>= 1 ms),
        move the IMU clock by it (at most 50 ms a step) and start the estimate over."""
        c = self.cfg.imu
        pair = tracked and self._tracked
        self._tracked = tracked
        if not (c.estimate_time_offset and pair):
            return
        self.offset_estimator.add_pair(self.t_state, self.state.rot, t_end, x_new.rot, x_new.bg,
                                       np.array([s.t for s in window]), np.array([s.gyro for s in window]))
        est = self.offset_estimator.estimate()
        if (est is None or est.pairs < 20 or est.sigma > c.offset_max_sigma
                or abs(est.delta) < max(4 * est.sigma, 1e-3)):
            return
        self._move_imu_clock(est.delta, f"the gyro lags the LiDAR's rotation by {1e3 * est.delta:+.1f} ms "
                             f"(+-{1e3 * est.sigma:.1f} ms over {est.pairs} scans)")

    def _move_imu_clock(self, delta: float, why: str) -> None:
        """The IMU stamps are still `delta` s late: move the clock (at most 50 ms a step) and the
        buffered samples onto it, and start the online estimate over. The state at t_state has
        integrated the IMU up to t_state on the old clock, t_state - step on the new one: the
        velocity gets the specific force of [t_state - step, t_state] (negative step: it had
        that much too much). In a jolt that is tenths of a m/s."""
        step = float(np.clip(delta, -0.05, 0.05))
        if abs(self.time_offset + step) >= 0.5:
            return
        was, self.time_offset = self.time_offset, self.time_offset + step
        for s in self.imu:                       # the buffered samples onto the new clock
            s.t -= step
        if self.state is not None and self.t_state is not None and self.imu:
            dv = self._velocity_change(self.t_state - step, self.t_state)
            if np.all(np.isfinite(dv)):
                self.state.vel = self.state.vel + dv
        if self.last_imu_t is not None:
            self.last_imu_t -= step
        if self.clip_recovery is not None:       # its spans and the readings it holds (shared objects)
            self.clip_recovery.shift_clock(step, {id(s) for s in self.imu})
        for j in self._jolts:
            j.t -= step
        self.offset_estimator.reset()
        self.events.append(("imu_time_offset", f"IMU clock offset: {why}; IMU stamps now moved by "
                            f"{1e3 * self.time_offset:+.1f} ms (was {1e3 * was:+.1f}: "
                            "set lio.imu.time_offset to start with it)"))

    def _velocity_change(self, t0: float, t1: float) -> np.ndarray:
        """(3,) m/s: the world velocity change the buffered IMU signal gives over [t0, t1] (s,
        oriented: t1 < t0 gives minus that of [t1, t0]), at the state's attitude, bias and gravity."""
        lo, hi = min(t0, t1), max(t0, t1)
        ts = np.array([s.t for s in self.imu])
        knots = np.concatenate([[lo], ts[(ts > lo) & (ts < hi)], [hi]])
        a_k = interp_samples(knots, ts, np.array([s.acc for s in self.imu])) * self.acc_scale
        specific = (0.5 * (a_k[1:] + a_k[:-1]) - self.state.ba) * np.diff(knots)[:, None]
        dv = self.state.rot @ specific.sum(axis=0) + self.state.grav * (hi - lo)
        return dv if t1 >= t0 else -dv

    def _clock_from_jolt(self, pts: np.ndarray, times: np.ndarray, track, x_prop: NavState,
                         P_prop: np.ndarray) -> float | None:
        """A scan taken during a jolt: the IMU clock shift (s) with which it fits the map best
        (core/jolt_timing.py), registering its points (geometry only) deskewed with the track
        shifted by each candidate; None when no shift is clearly better than none."""
        sel = self._downsample(pts, SEARCH_POINTS)          # a swing of degrees shows in fewer
        p, t = pts[sel], times[sel]
        cap = 4 * np.sqrt(self.cfg.update.lidar_noise)      # m: a residual counts at most this

        def cost(delta: float) -> float:
            body = deskew(p, t, track.shifted(delta), x_prop).points
            try:
                x = iterated_update(x_prop, P_prop, GeometricResiduals(body, self.map, self.cfg),
                                    self.cfg.update).state
            except (np.linalg.LinAlgError, FloatingPointError):
                return np.inf
            fresh = GeometricResiduals(body, self.map, self.cfg)   # planes matched anew at x
            h = fresh(x, 0).h
            r = np.full(len(body), cap)
            r[fresh.planes.point_index] = np.minimum(np.abs(h), cap)
            return float(np.mean(r))

        est = self.clock_search.search(cost)
        return None if est is None or abs(est.delta) < 1e-3 else est.delta

    def _with_recoveries(self, events: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The saturation report, with what the clip recovery did since the last one."""
        rec = self.clip_recovery
        if rec is None or not events:
            return events
        n, self._recoveries_said = rec.recovered - self._recoveries_said, rec.recovered
        if n == 0:
            return events
        mean = float(np.mean(rec.restored[-n:]))
        dropped = "; their points left out" if self.cfg.imu.jolt_drop_points else ""
        note = (f"; {n} jolt(s) since the last report recovered (lost impulse restored, "
                f"{mean:.2f} m/s on average{dropped})")
        return [(k, m + note if k == "imu_saturated" else m) for k, m in events]

    def _downsample(self, pts: np.ndarray, cap: int) -> np.ndarray:
        """Indices of the scan's voxel-downsampled points (N, 3), at most `cap` of them (an even
        random subsample, seeded by the count so that a run repeats)."""
        sel = voxel_downsample(pts, self.cfg.preprocess.scan_voxel)
        if len(sel) > cap:
            sel = np.sort(np.random.default_rng(len(sel)).choice(sel, cap, False))
        return sel

    def _jolt_points(self, in_jolt: np.ndarray | None) -> np.ndarray | None:
        """(N,) bool: of the points measured during a jolt that may have clipped the IMU (in_jolt,
        from _in_jolt), those left out (imu.jolt_drop_points); None when there are none, or so
        many (>= 70 %) that the scan would lose its shape."""
        if not self.cfg.imu.jolt_drop_points or in_jolt is None:
            return None
        return in_jolt if in_jolt.mean() < 0.7 else None

    def _in_jolt(self, times: np.ndarray) -> np.ndarray | None:
        """(N,) bool: points measured during a jolt that may have clipped the IMU, or None."""
        if self.clip_recovery is None:
            return None
        spans = self.clip_recovery.jolt_spans()
        if not spans:                                # the usual case: no scan-wide reductions
            return None
        lo, hi = times.min(), times.max()
        spans = [(a, b) for a, b in spans if b >= lo and a <= hi]
        if not spans:
            return None
        m = np.zeros(len(times), bool)
        for a, b in spans:
            m |= (times >= a) & (times <= b)
        return m if m.any() else None

    def _apply_jolts(self) -> None:
        """The impulse recovered for clipped readings the filter had already integrated (the jolt
        ended after the scan that took them): the velocity and position it would have given, less
        what that scan's update already corrected of it. The update left (I - K H) of a prior error
        = P_post P_prior^-1 of it (the IMU frame at the jolt taken as now's: it returns)."""
        if not self._jolts:
            return
        e = np.zeros(DIM)
        for j in self._jolts:
            dv = self.acc_scale * (self.state.rot @ j.dv_body)
            e[VEL] += dv
            e[POS] += dv * max(0.0, self.t_state - j.t)
        self._jolts.clear()
        if self._last_update is not None and self._last_update[0] == self.t_state:
            P_prior, P_post = self._last_update[1:]
            try:
                e = P_post @ np.linalg.solve(P_prior, e)
            except np.linalg.LinAlgError:            # a singular prior: the whole correction
                pass
        if np.all(np.isfinite(e)):
            self.state = self.state.boxplus(e)

    def _commit(self, x: NavState, P: np.ndarray, t: float) -> None:
        self.state, self.P, self.t_state = x, P, t
        keep_from = max(0, np.searchsorted([s.t for s in self.imu], t) - 1)
        self.imu = self.imu[keep_from:]

    def _imu_window(self, t0: float, t1: float) -> list[ImuSample]:
        ts = np.array([s.t for s in self.imu])
        lo = max(0, int(np.searchsorted(ts, t0, side="right")) - 1)
        hi = int(np.searchsorted(ts, t1, side="right")) + 1
        window = self.imu[lo:hi]
        if not window:
            raise ValueError("no IMU data")
        if window[-1].t < t1 - self.cfg.imu.max_gap:
            self.events.append(("imu_behind", f"IMU ends {t1 - window[-1].t:.2f} s before the scan"))
        return window


def _held(m: Measurements, x: NavState, x_prop: NavState) -> Measurements:
    """Standing still: the scan's rows m (pose columns) plus a zero-velocity update (the velocity
    is zero to ZUPT_SIGMA) and the position held at the prior x_prop (to HOLD_SIGMA), so people
    passing cannot drag the pose while the scan still corrects the attitude."""
    cols = VEL.stop
    H = np.zeros((len(m.h) + 6, cols))
    H[:len(m.h), :m.H.shape[1]] = m.H
    H[len(m.h):len(m.h) + 3, VEL] = np.eye(3)
    H[len(m.h) + 3:, POS] = np.eye(3)
    return Measurements(np.concatenate([m.h, x.vel, x.pos - x_prop.pos]), H,
                        np.concatenate([m.var, np.full(3, ZUPT_SIGMA**2), np.full(3, HOLD_SIGMA**2)]))


def _to_world(x: NavState, body: np.ndarray) -> np.ndarray:
    T = x.lidar_pose()
    return body @ T[:3, :3].T + T[:3, 3]


def _filled(organized: tuple) -> tuple | None:
    """The (image, point index, range) process_cloud filled with the point selection, if it did."""
    return organized[2] if len(organized) > 2 else None


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1e3


def make_odometry(setup, config: str | None = None, **overrides) -> LioPipeline:
    """Factory for coin_lio.eval: COIN-LIO with the rig's extrinsic and metadata.

    config: a params YAML (config/coin_lio.yaml); overrides: dotted LioConfig keys.
    """
    from coin_lio.config import load_lio_config
    from suite_tools.config_params import build, flatten

    if getattr(setup, "max_num_threads", 0):    # the benchmark's "one thread each": OpenCV's pool too
        import cv2

        cv2.setNumThreads(int(setup.max_num_threads))
    cfg = load_lio_config(config)
    if overrides:
        cfg = build(LioConfig, {**flatten(cfg), **overrides})
    pipe = LioPipeline(cfg, T_imu_lidar=np.linalg.inv(setup.T_lidar_imu), metadata=setup.lidar_metadata)
    pipe.name = "coin_lio" if pipe.photo is not None else "coin_lio_geometric"
    return pipe


def make_geometric_odometry(setup, config: str | None = None, **overrides) -> LioPipeline:
    """Factory for coin_lio.eval: the geometric core alone (FAST-LIO2: photometric off)."""
    return make_odometry(setup, config, **{"photometric.enabled": False, **overrides})
