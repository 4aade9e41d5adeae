"""Configuration of coin_lio: one dataclass per component, validated on construction.

config/coin_lio.yaml mirrors it under `/**/coin_lio_node: ros__parameters: lio:`; the node and the
offline runner both read it (`load_lio_config`). Defaults are FAST-LIO2's / COIN-LIO's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coin_lio.photometric.photometric_config import FeatureConfig, ImageFilterConfig, MaskConfig
from suite_tools.config_params import ConfigError, build, load_node_params


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass
class PreprocessConfig:
    blind: float = 0.65             # m: closer points are dropped (housing, robot)
    max_range: float = 150.0        # m
    point_stride: int = 4           # keep every k-th valid point (FAST-LIO point_filter_num)
    scan_voxel: float = 0.5         # m: voxel filter of the scan before registration
    time_field: str = "auto"        # per-point time field; auto: t (Ouster, ns), time (Velodyne,
    #                                 s), offset_time (Livox, ns), timestamp (absolute s)
    time_scale: float = 0.0         # seconds per unit of that field; 0: the field's known unit
    max_points: int = 4000          # cap on registered points per scan (uniform subsample)

    def __post_init__(self) -> None:
        _check(0 <= self.blind < self.max_range, "need 0 <= blind < max_range")
        _check(self.point_stride >= 1, "point_stride must be >= 1")
        _check(self.scan_voxel > 0 and self.time_scale >= 0, "scan_voxel must be > 0, time_scale >= 0")
        _check(self.max_points >= 100, "max_points must be >= 100")


@dataclass
class ImuConfig:
    acc_noise: float = 0.1          # FAST-LIO acc_cov
    gyr_noise: float = 0.1          # gyr_cov
    acc_bias_noise: float = 1e-4    # b_acc_cov
    gyr_bias_noise: float = 1e-4    # b_gyr_cov
    init_samples: int = 20          # at least this many static samples for gravity and gyro bias
    init_duration: float = 1.0      # s of (static) IMU data averaged at start: a gyro bias from 20
    #                                 noisy samples alone turns into degrees of yaw drift per second
    gravity: float = 9.81           # m/s^2; accelerations are rescaled to it at initialisation
    max_gap: float = 0.5            # s: a larger gap in IMU data resets the filter
    time_offset: float = 0.0        # s: IMU clock minus LiDAR clock for the same instant (FAST-LIO's
    #                                 time_offset_lidar_to_imu, e.g. from LI-Init): IMU stamps are
    #                                 moved onto the LiDAR clock by subtracting it
    estimate_time_offset: bool = True  # estimate the offset left on line (coin_lio/core/time_offset.py)
    #                                    and move the IMU clock by it once sure
    offset_max_sigma: float = 0.003  # s: ... sure = sigma at most this (and the offset >= 4 sigma)
    clip_recovery: bool = True      # put back the impulse a jolt's clipped accelerometer readings
    #                                 lost (coin_lio/core/clip_recovery.py)
    jolt_threshold: float = 3.0     # m/s^2: readings this far from the last quiet one are a jolt
    jolt_max_s: float = 0.3         # s: longer episodes are not jolts and are used as read
    jolt_drop_points: bool = True   # leave the points measured during such a jolt out of the scan's
    #                                 registration and the map (its motion is the least known)
    jolt_timing: bool = True        # a jolt's scan reads the IMU clock offset: registered with the
    #                                 IMU track shifted, the best fit moves the clock (core/jolt_timing.py)
    jolt_timing_every: float = 5.0  # s: after a search that moved nothing, the next waits this long

    def __post_init__(self) -> None:
        _check(self.jolt_threshold > 0 and 0 < self.jolt_max_s <= 2.0,
               "jolt_threshold must be > 0 and jolt_max_s in (0, 2] s")
        _check(min(self.acc_noise, self.gyr_noise, self.acc_bias_noise, self.gyr_bias_noise) > 0,
               "IMU noise densities must be > 0")
        _check(abs(self.time_offset) < 0.5, "time_offset must be within +-0.5 s")
        _check(self.jolt_timing_every >= 0, "jolt_timing_every must be >= 0 s")
        _check(0 < self.offset_max_sigma <= 0.01, "offset_max_sigma must be in (0, 0.01] s")
        _check(self.init_samples >= 10, "init_samples must be >= 10")
        _check(0 <= self.init_duration <= 10, "init_duration must be in [0, 10] s")
        _check(self.gravity > 0 and self.max_gap > 0, "gravity and max_gap must be > 0")


@dataclass
class MapConfig:
    voxel_size: float = 0.5         # m: at most one map point per voxel (filter_size_map)
    half_extent: float = 150.0      # m: the map keeps points within this box around the sensor
    trim_distance: float = 20.0     # m of travel between trims of the box
    # s: a new voxel enters the map only when seen again this long after first seen, and new
    # patches only lie on the map (moving objects stay out: coin_lio/core/static_confirmation.py);
    # the first scan's voxels enter at once when seen this long before in the scans of the IMU
    # initialisation (coin_lio/core/map_seed.py); 0 = at once, as FAST-LIO2
    confirm_s: float = 1.0

    def __post_init__(self) -> None:
        _check(self.voxel_size > 0 and self.half_extent > 10 * self.voxel_size, "bad map sizes")
        _check(0.0 <= self.confirm_s <= 10.0, "confirm_s must be in [0, 10] s")
        _check(self.trim_distance > 0, "trim_distance must be > 0")


@dataclass
class GeometryConfig:
    num_neighbors: int = 5          # map points per plane
    max_neighbor_sq_dist: float = 5.0   # m^2: reject if the farthest neighbour is farther
    plane_threshold: float = 0.1    # m: every neighbour within this of the plane
    min_score: float = 0.9          # keep if 1 - 0.9 |pd| / sqrt(|p|) > min_score

    def __post_init__(self) -> None:
        _check(self.num_neighbors >= 3, "num_neighbors must be >= 3")
        _check(self.max_neighbor_sq_dist > 0 and self.plane_threshold > 0, "bad plane thresholds")


@dataclass
class UpdateConfig:
    max_iterations: int = 5         # iterated EKF iterations
    convergence_eps: float = 1e-3   # every state step below this -> converged
    lidar_noise: float = 1e-3       # m^2, variance of a point-to-plane residual
    research_distance: float = 0.05  # m: re-search neighbours when the pose moved more than this
    estimate_extrinsic: bool = False
    hold_weak_biases: bool = True   # while moving objects are seen, keep the IMU biases' update out
    #                                 of the directions the geometry leaves weak (core/degeneracy.py)

    def __post_init__(self) -> None:
        _check(1 <= self.max_iterations <= 20, "max_iterations must be in 1..20")
        _check(self.convergence_eps > 0 and self.lidar_noise > 0, "bad update tolerances")


@dataclass
class ExtrinsicConfig:
    """LiDAR pose in the IMU frame: p_imu = R p_lidar + t (FAST-LIO extrinsic_R / extrinsic_T),
    "LiDAR" being the frame the clouds are published in.

    source: where the extrinsic comes from. auto (default): from the sensor metadata (Ouster
    lidar_to_sensor / imu_to_sensor, coin_lio.io.sensor_metadata) when there is metadata with them,
    the clouds are in os_lidar / os_sensor and the IMU messages in os_imu; else translation/rotation
    here. metadata: from the metadata whenever it can be. config: always translation/rotation here.
    """

    translation: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    rotation: list[float] = field(default_factory=lambda: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0])
    source: str = "auto"            # auto | metadata | config

    def __post_init__(self) -> None:
        _check(len(self.translation) == 3 and len(self.rotation) == 9, "extrinsic needs 3 + 9 numbers")
        _check(self.source in ("auto", "metadata", "config"), "extrinsic.source must be auto, metadata or config")
        R = np.asarray(self.rotation, float).reshape(3, 3)
        _check(np.allclose(R @ R.T, np.eye(3), atol=1e-4) and np.linalg.det(R) > 0,
               "extrinsic rotation is not a rotation matrix")

    def matrix(self) -> np.ndarray:
        """T_imu_lidar (4x4)."""
        T = np.eye(4)
        T[:3, :3] = np.asarray(self.rotation, float).reshape(3, 3)
        T[:3, 3] = self.translation
        return T

    @classmethod
    def from_matrix(cls, T_imu_lidar: np.ndarray, source: str = "auto") -> "ExtrinsicConfig":
        T = np.asarray(T_imu_lidar, float)
        return cls(translation=T[:3, 3].tolist(), rotation=T[:3, :3].reshape(-1).tolist(), source=source)


@dataclass
class DegeneracyConfig:
    weak_threshold: float = 25.0    # a direction is weak if sum of |n . v| (terms > min) < this
    min_component: float = 0.5

    def __post_init__(self) -> None:
        _check(self.weak_threshold > 0 and 0 <= self.min_component < 1, "bad degeneracy thresholds")


@dataclass
class PhotometricConfig:
    """COIN-LIO's photometric residuals on the intensity image (defaults = the reference's)."""

    enabled: bool = True                # False = the geometric core alone (FAST-LIO2)
    metadata_path: str = ""             # Ouster metadata JSON of the sensor ('' = from the node's
    #                                     metadata_topic / the bag's metadata topic)
    intensity_field: str = "intensity"  # image channel (falls back to reflectivity if absent)
    destaggered: bool = False           # clouds arrive already destaggered (newer drivers)
    u_shift: int = -1                   # image column offset; -1 = calibrate on the first scan
    photo_scale: float = 0.00095        # residual scale (rows share the LiDAR noise)
    patch_size: int = 5                 # 5x5 = 25 points per patch
    max_age: int = 25                   # scans a patch is tracked at most
    # ... and while the sensor sees it within this angle of the direction it was selected from
    # (its reference intensities are a view; 0: age alone, as the reference)
    max_view_change_deg: float = 30.0
    ncc_threshold: float = 0.7075       # drop a patch whose NCC to its reference is not above
    occlusion_threshold: float = 0.2    # m: something this much in front of the patch -> occluded
    occlusion_relative: float = 0.25    # ... and at least this share of its range: at grazing
    #                                     incidence (ground far ahead) half a pixel is metres of range
    # run the photometric part only where geometry leaves a direction weak (and `linger_scans`
    # after): in well-conditioned scenes it costs ~40 % of the scan time and adds nothing
    on_demand: bool = True
    linger_scans: int = 20
    # while moving objects are seen (free-space returns in the last 10 scans), patches whose
    # residual per unit of gradient exceeds this x the median patch's sit out the update (0: never)
    residual_gate: float = 2.0
    # always: patches near which something moved since the last scan sit out: at least this many
    # pixels of the window around the patch (its brightness window) changed range by more than
    # max(change_margin m, 10 %) beyond the window's common change (0: never; change_kernel.py)
    change_gate_px: int = 4
    change_margin: float = 0.5
    # robust weights (Huber, recomputed every iteration): a row whose |residual| exceeds this x the
    # rows' robust spread (1.4826 x median |r|) counts with weight huber_k x spread / |r|
    # (0: every row alike, as the reference; docs/coin_lio.md "Moving objects")
    huber_k: float = 2.0
    filter: ImageFilterConfig = field(default_factory=ImageFilterConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)

    def __post_init__(self) -> None:
        _check(self.linger_scans >= 1 and self.residual_gate >= 0, "linger_scans >= 1, residual_gate >= 0")
        _check(self.change_gate_px >= 0 and self.change_margin > 0, "change_gate_px >= 0, change_margin > 0")
        _check(self.huber_k == 0 or 1.0 <= self.huber_k < 100, "huber_k must be 0 (off) or in [1, 100)")
        _check(self.photo_scale > 0 and self.patch_size >= 3 and self.patch_size % 2 == 1,
               "photo_scale must be > 0 and patch_size odd >= 3")
        _check(0 <= self.max_view_change_deg <= 180, "max_view_change_deg must be in [0, 180]")
        _check(self.max_age >= 1 and -1 <= self.ncc_threshold < 1 and self.occlusion_threshold > 0
               and 0 <= self.occlusion_relative < 1,
               "bad tracking thresholds")
        _check(self.u_shift >= -1, "u_shift must be >= 0, or -1 to calibrate")


@dataclass
class InputCheckConfig:
    """What the odometry watches in its input to say when real-sensor effects show: missing
    column blocks or azimuth sectors (dropped packets) and a cropped column window (the driver,
    coin_lio.input_effects), clipped IMU readings (the pipeline, coin_lio.imu_saturation)."""

    scan_window: int = 50                # scans the column statistics cover
    missing_columns_warn: float = 0.01   # share of columns (outside a fixed window) missing -> warn
    azimuth_bins: int = 720              # sectors of an unorganised (Velodyne) sweep: 0.5 deg each
    imu_window: int = 1000               # IMU readings the saturation statistics cover
    clip_acc_floor: float = 14.7         # m/s^2: only readings above this can be clipped (1.5 g)
    clip_gyr_floor: float = 3.0          # rad/s: ... above this for the gyro (172 deg/s)
    clip_repeats: int = 2                # readings with the same extreme value that make it a clip level
    moving_min_scans: int = 10           # scans of scan_window with >= 2 returns in space seen free
    #                                      before (lio.free_space) that make the moving-objects report

    def __post_init__(self) -> None:
        _check(self.scan_window >= 5 and self.imu_window >= 50, "scan_window >= 5, imu_window >= 50")
        _check(0 < self.missing_columns_warn < 1, "missing_columns_warn must be in (0, 1)")
        _check(36 <= self.azimuth_bins <= 7200, "azimuth_bins must be in [36, 7200]")
        _check(1 <= self.moving_min_scans <= self.scan_window, "moving_min_scans must be in [1, scan_window]")
        _check(self.clip_acc_floor > 0 and self.clip_gyr_floor > 0 and self.clip_repeats >= 2,
               "clip floors must be > 0 and clip_repeats >= 2")


@dataclass
class FreeSpaceConfig:
    """Returns in space seen free a few scans before (coin_lio/core/free_space.py): movers, dust."""

    lag_scans: int = 3          # compare with the scan this many before (0.3 s at 10 Hz: a walker moves ~0.4 m)
    margin_m: float = 0.3       # m: the earlier rays must reach this much farther ...
    margin_rel: float = 0.05    # ... or this share of the range, whichever is larger
    min_range: float = 1.0      # m: closer points are not judged (the robot's own parts)
    radius_px: int = 2          # neighbourhood (5x5) whose every ray must have reached farther
    max_spread: float = 0.1     # neighbourhoods whose ranges spread more than this share are not judged
    open_range_m: float = 10.0  # m: for points nearer than this, an earlier neighbourhood without any return
                                # is open space (sky: a surface this near returns); 0: never judged

    def __post_init__(self) -> None:
        _check(1 <= self.lag_scans <= 20 and self.margin_m > 0 and 0 <= self.margin_rel < 1
               and self.min_range >= 0 and self.open_range_m >= 0, "free_space: lag_scans in [1, 20], margin_m > 0, "
               "margin_rel in [0, 1), min_range >= 0, open_range_m >= 0")
        _check(self.radius_px in (1, 2, 3) and 0 < self.max_spread < 1,
               "free_space: radius_px 1-3, max_spread in (0, 1)")


@dataclass
class StationaryConfig:
    """Standing still (coin_lio/core/stationary.py): while the IMU shows no motion over a scan and
    the velocity estimate is near zero, the update adds a zero-velocity row set and holds the
    position at the prior (the scan still corrects the attitude): people or cars passing a robot
    that waits cannot drag its pose along."""

    enabled: bool = True
    max_gyro: float = 0.02       # rad/s: mean bias-corrected turn rate over the scan's IMU readings
    max_acc: float = 0.05        # m/s^2: mean linear acceleration (gravity removed) at most this ...
    max_acc_std: float = 0.1     # m/s^2: ... and its spread over the readings (vibration) at most this
    max_speed: float = 0.05      # m/s: the velocity estimate at the prior at most this
    min_samples: int = 5         # IMU readings the scan must hold to judge

    def __post_init__(self) -> None:
        _check(self.max_gyro > 0 and self.max_acc > 0 and self.max_acc_std > 0 and self.max_speed > 0,
               "stationary: thresholds must be > 0")
        _check(self.min_samples >= 2, "stationary: min_samples must be >= 2")


@dataclass
class LioConfig:
    preprocess: PreprocessConfig = field(default_factory=PreprocessConfig)
    imu: ImuConfig = field(default_factory=ImuConfig)
    map: MapConfig = field(default_factory=MapConfig)
    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    update: UpdateConfig = field(default_factory=UpdateConfig)
    extrinsic: ExtrinsicConfig = field(default_factory=ExtrinsicConfig)
    degeneracy: DegeneracyConfig = field(default_factory=DegeneracyConfig)
    photometric: PhotometricConfig = field(default_factory=PhotometricConfig)
    input_check: InputCheckConfig = field(default_factory=InputCheckConfig)
    free_space: FreeSpaceConfig = field(default_factory=FreeSpaceConfig)
    stationary: StationaryConfig = field(default_factory=StationaryConfig)


NODE_NAME = "coin_lio_node"


def load_lio_config(path: str | Path | None, node_name: str = NODE_NAME) -> LioConfig:
    """LioConfig from the `lio` section of a node params YAML (defaults when path is None)."""
    if path is None:
        return LioConfig()
    params = load_node_params(path, node_name)
    if "lio" not in params:
        raise ConfigError(f"{path}: '{node_name}' has no 'lio' parameters")
    return build(LioConfig, params["lio"], "lio.")
