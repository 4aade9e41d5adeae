"""Sensor models: Ouster OS-style and Velodyne-style beam geometry, timing and point layouts.

Ouster geometry follows ouster-sdk's make_xyz_lut: for raw (measurement) column v and row u,
encoder angle e = 2 pi - 2 pi v / W, beam azimuth a = -beam_azimuth_angles[u], altitude
alt = beam_altitude_angles[u];
    direction d = (cos(e + a) cos(alt), sin(e + a) cos(alt), sin(alt))
    point = range * d + n (cos e, sin e, 0) - n d,  n = lidar_origin_to_beam_origin,
i.e. the beam leaves the beam origin n (cos e, sin e, 0) and `range` counts from the LiDAR
origin through that beam origin. The azimuth angle decreases with the column (the head spins
clockwise seen from above). Sensor-frame points are lidar_to_sensor_transform applied to that.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.io.ouster_geometry import CLOUD_FRAMES
from coin_lio.io.ouster_metadata import IMU_TO_SENSOR_MM, LIDAR_TO_SENSOR_MM, OusterMetadata

# Ouster points use suite_tools.pointcloud2.OUSTER_ORIGINAL_DTYPE (ouster-ros "original").
# velodyne_pointcloud PointcloudXYZIRT (packed fields, set with PointCloud2Modifier).
VELODYNE_DTYPE = np.dtype({
    "names": ["x", "y", "z", "intensity", "ring", "time"],
    "formats": ["<f4", "<f4", "<f4", "<f4", "<u2", "<f4"],
    "offsets": [0, 4, 8, 12, 16, 18], "itemsize": 22})

# family: (top altitude deg, bottom altitude deg, beam origin mm, staggered outer azimuth deg)
OUSTER_FAMILIES = {
    "OS-0": (45.9, -45.9, 27.67, 8.34),
    "OS-1": (22.5, -22.5, 15.806, 4.2),
    "OS-2": (11.25, -11.25, 13.762, 2.1),
}


@dataclass
class LidarNoiseConfig:
    """Measurement imperfections shared by both sensor models."""

    range_sigma: float = 0.01         # m, Gaussian range noise (1 sigma)
    dropout_prob: float = 0.002       # probability of a random missing return
    grazing_cos_min: float = 0.03     # no return when |cos(incidence)| is below this
    signal_gain: float = 2.5e4        # signal = gain * reflectivity * cos / (range^2 + 1)
    min_signal: float = 4.0           # returns weaker than this are dropped (dark and far)
    signal_noise: float = 1.0         # x sqrt(signal) photon noise
    reflectivity_noise: float = 1.5   # counts (Ouster 0..255 scale, 100 = white lambertian)
    ambient_noise: float = 4.0        # counts

    def __post_init__(self) -> None:
        for name in ("range_sigma", "signal_gain", "min_signal", "signal_noise",
                     "reflectivity_noise", "ambient_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("dropout_prob", "grazing_cos_min"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")

    @classmethod
    def noiseless(cls) -> "LidarNoiseConfig":
        return cls(range_sigma=0.0, dropout_prob=0.0, grazing_cos_min=0.0, min_signal=0.0,
                   signal_noise=0.0, reflectivity_noise=0.0, ambient_noise=0.0)


@dataclass
class OusterConfig:
    """An OS-style spinning LiDAR; pixel_shift_by_row = round(azimuth * cols / 360) + offset."""

    rows: int = 128
    cols: int = 1024
    frequency_hz: int = 10
    family: str = "OS-0"
    azimuth_layout: str = "staggered"   # staggered: 4 emitter columns (OS0-128 rev C); uniform
    quantize_azimuths: bool = False     # azimuths on the column grid: destaggering is exact
    pixel_shift_offset: int = 0         # constant added to every pixel_shift_by_row entry
    destaggered: bool = False           # False: raw column order, as ouster-ros publishes it
    cloud_frame: str = "os_lidar"       # os_lidar (ouster-ros ROS 2 default) or os_sensor
    min_range: float = 0.3              # m
    max_range: float = 75.0             # m
    frame_ids: tuple[str, str, str] = ("os_sensor", "os_lidar", "os_imu")
    imu_mount_rpy_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #   the IMU turned against the usual Ouster layout (its axes parallel to os_sensor): roll,
    #   pitch, yaw about os_sensor x, y, z (R = Rz Ry Rx); the metadata's imu_to_sensor says so

    def __post_init__(self) -> None:
        self.imu_mount_rpy_deg = tuple(float(a) for a in self.imu_mount_rpy_deg)
        if len(self.imu_mount_rpy_deg) != 3 or not all(np.isfinite(self.imu_mount_rpy_deg)):
            raise ValueError(f"imu_mount_rpy_deg must be 3 finite angles, got {self.imu_mount_rpy_deg}")
        if self.rows not in (16, 32, 64, 128):
            raise ValueError(f"rows must be 16, 32, 64 or 128, got {self.rows}")
        if self.cols not in (512, 1024, 2048):
            raise ValueError(f"cols must be 512, 1024 or 2048, got {self.cols}")
        if self.frequency_hz not in (10, 20) or (self.cols == 2048 and self.frequency_hz != 10):
            raise ValueError(f"lidar mode {self.cols}x{self.frequency_hz} does not exist "
                             "(512/1024 at 10 or 20 Hz, 2048 at 10 Hz)")
        if self.family not in OUSTER_FAMILIES:
            raise ValueError(f"family must be one of {sorted(OUSTER_FAMILIES)}, "
                             f"got '{self.family}'")
        if self.azimuth_layout not in ("staggered", "uniform"):
            raise ValueError(f"azimuth_layout must be 'staggered' or 'uniform', got "
                             f"'{self.azimuth_layout}'")
        if self.cloud_frame not in CLOUD_FRAMES:
            raise ValueError(f"cloud_frame must be one of {CLOUD_FRAMES}, "
                             f"got '{self.cloud_frame}'")
        if not 0 <= self.min_range < self.max_range:
            raise ValueError(f"need 0 <= min_range < max_range, got {self.min_range}, "
                             f"{self.max_range}")

    @property
    def period_ns(self) -> int:
        return 1_000_000_000 // self.frequency_hz

    def imu_mount_rotation(self) -> np.ndarray:
        """(3, 3) the IMU's axes in the usual IMU layout (= os_sensor axes): Rz(yaw) Ry(pitch) Rx(roll)."""
        roll, pitch, yaw = self.imu_mount_rpy_deg
        return Rotation.from_euler("ZYX", [yaw, pitch, roll], degrees=True).as_matrix()

    def metadata(self) -> OusterMetadata:
        alt, az = ouster_beam_angles(self.rows, self.family, self.azimuth_layout)
        if self.quantize_azimuths:
            az = np.round(az * self.cols / 360.0) * 360.0 / self.cols
        shift = np.round(az * self.cols / 360.0).astype(int) + self.pixel_shift_offset
        imu_to_sensor = IMU_TO_SENSOR_MM.copy()
        imu_to_sensor[:3, :3] = np.round(self.imu_mount_rotation(), 12) + 0.0
        return OusterMetadata(
            beam_altitude_angles=alt.tolist(), beam_azimuth_angles=az.tolist(),
            pixel_shift_by_row=shift.tolist(), columns_per_frame=self.cols,
            lidar_origin_to_beam_origin_mm=OUSTER_FAMILIES[self.family][2],
            lidar_mode=f"{self.cols}x{self.frequency_hz}",
            lidar_to_sensor_transform=LIDAR_TO_SENSOR_MM, imu_to_sensor_transform=imu_to_sensor,
            prod_line=f"{self.family}-{self.rows}")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class VelodyneConfig:
    """A Velodyne-style spinning LiDAR: rings fire together per column, no beam offset."""

    rings: int = 16
    cols: int = 1800                 # firings per revolution (0.2 deg at 10 Hz for a VLP-16)
    frequency_hz: float = 10.0
    min_range: float = 0.4
    max_range: float = 100.0
    laser_period_s: float = 2.304e-6  # time between two lasers of one firing sequence
    frame_id: str = "velodyne"

    def __post_init__(self) -> None:
        if self.rings not in (16, 32, 64):
            raise ValueError(f"rings must be 16, 32 or 64, got {self.rings}")
        if not 360 <= self.cols <= 4500:
            raise ValueError(f"cols must be in [360, 4500], got {self.cols}")
        if not 5.0 <= self.frequency_hz <= 20.0:
            raise ValueError(f"frequency_hz must be in [5, 20], got {self.frequency_hz}")
        if not 0 <= self.min_range < self.max_range:
            raise ValueError(f"need 0 <= min_range < max_range, got {self.min_range}, "
                             f"{self.max_range}")
        if self.rings * self.laser_period_s >= 1.0 / (self.frequency_hz * self.cols):
            raise ValueError("laser_period_s too long: a firing sequence overruns its column")

    @property
    def period_ns(self) -> int:
        return int(round(1e9 / self.frequency_hz))

    def altitudes_deg(self) -> np.ndarray:
        """(rings,) in firing order: low and high lasers interleave (VLP-16: -15, 1, -13, ...)."""
        lo, hi = {16: (-15.0, 15.0), 32: (-30.67, 10.67), 64: (-24.9, 2.0)}[self.rings]
        asc = np.linspace(lo, hi, self.rings)
        half = self.rings // 2
        return np.stack([asc[:half], asc[half:]], axis=1).reshape(-1)

    def to_dict(self) -> dict:
        return asdict(self)


def ouster_beam_angles(rows: int, family: str = "OS-0",
                       layout: str = "staggered") -> tuple[np.ndarray, np.ndarray]:
    """(altitude, azimuth) in deg, top row first, shaped like real OS tables.

    Altitudes: uniform spacing plus the 4-periodic unevenness of real units (spacings ~1.4, 1.05,
    0.7, 0.85 x nominal as on an OS0-128). Azimuths, staggered: four emitter columns
    (+a, +a/3, -a/3, -a), a growing toward the edges of the field of view; uniform: one column
    slightly left of the encoder (~ -2.7 deg, more at the bottom), as on OS "U" units.
    """
    top, bottom, _, a_outer = OUSTER_FAMILIES[family]
    spacing = (top - bottom) / (rows - 1)
    pattern = np.array([0.0, -0.42, -0.48, -0.2])
    uneven = np.resize(pattern, rows) * spacing
    uneven[-1] = 0.0
    alt = np.linspace(top, bottom, rows) + uneven
    rel = alt / max(abs(top), abs(bottom))
    if layout == "staggered":
        outer = a_outer * (1.0 + 0.3 * rel ** 2)
        az = np.resize(np.array([1.0, 1.0 / 3.0, -1.0 / 3.0, -1.0]), rows) * outer
    else:
        az = -(a_outer / 3.0) * (1.0 + 0.2 * rel ** 2 + 0.25 * np.clip(-rel, 0, None) ** 2)
    return alt, az
