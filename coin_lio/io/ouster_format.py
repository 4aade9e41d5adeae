"""Ouster sensor metadata and lidar packet layouts (as ouster-sdk 1.0.1 decodes them), pure numpy.

Profiles LEGACY, RNG19_RFL8_SIG16_NIR16(_DUAL) and RNG15_RFL8_NIR8: per-pixel bit fields from
ouster_core/src/parsing.cpp; `decode_lidar_packets` decodes equally sized packets vectorised.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# Per-pixel fields: name -> (bit start, bit count, up-shift, frame dtype), as the sdk decodes them.
_LEGACY = {"RANGE": (0, 20, 0, np.uint32), "FLAGS": (28, 4, 0, np.uint8),
           "REFLECTIVITY": (32, 8, 0, np.uint8), "SIGNAL": (48, 16, 0, np.uint16),
           "NEAR_IR": (64, 16, 0, np.uint16)}
_SINGLE = {"RANGE": (0, 19, 0, np.uint32), "FLAGS": (19, 5, 0, np.uint8),
           "REFLECTIVITY": (32, 8, 0, np.uint8), "SIGNAL": (48, 16, 0, np.uint16),
           "NEAR_IR": (64, 16, 0, np.uint16)}
_DUAL = {"RANGE": (0, 19, 0, np.uint32), "FLAGS": (19, 5, 0, np.uint8),
         "REFLECTIVITY": (24, 8, 0, np.uint8), "RANGE2": (32, 19, 0, np.uint32),
         "FLAGS2": (51, 5, 0, np.uint8), "REFLECTIVITY2": (56, 8, 0, np.uint8),
         "SIGNAL": (64, 16, 0, np.uint16), "SIGNAL2": (80, 16, 0, np.uint16),
         "NEAR_IR": (96, 16, 0, np.uint16)}
_LOW_BANDWIDTH = {"RANGE": (0, 15, 3, np.uint32), "FLAGS": (15, 1, 0, np.uint8),
                  "REFLECTIVITY": (16, 8, 0, np.uint8), "NEAR_IR": (24, 8, 4, np.uint16)}
# profile -> (bytes per pixel, fields)
PROFILES: dict[str, tuple[int, dict]] = {
    "LEGACY": (12, _LEGACY), "RNG19_RFL8_SIG16_NIR16": (12, _SINGLE),
    "RNG19_RFL8_SIG16_NIR16_DUAL": (16, _DUAL), "RNG15_RFL8_NIR8": (4, _LOW_BANDWIDTH),
}
IMU_PACKET_BYTES = 48                    # LEGACY IMU profile


class OusterDataError(ValueError):
    """A recording or metadata file this reader cannot decode (the reason is in the message)."""


@dataclass
class SensorFormat:
    """What decoding needs, from the metadata JSON (legacy flat or nested FW >= 2.x layout)."""

    rows: int
    cols: int
    columns_per_packet: int
    profile: str
    imu_profile: str
    udp_port_lidar: int
    udp_port_imu: int
    column_window: tuple[int, int]
    prod_line: str

    @property
    def packet_header(self) -> int:
        return 0 if self.profile == "LEGACY" else 32

    @property
    def packet_footer(self) -> int:
        return 0 if self.profile == "LEGACY" else 32

    @property
    def col_header(self) -> int:
        return 16 if self.profile == "LEGACY" else 12

    @property
    def col_footer(self) -> int:
        return 4 if self.profile == "LEGACY" else 0

    @property
    def pixel_bytes(self) -> int:
        return PROFILES[self.profile][0]

    @property
    def col_size(self) -> int:
        return self.col_header + self.rows * self.pixel_bytes + self.col_footer

    @property
    def lidar_packet_size(self) -> int:
        return self.packet_header + self.columns_per_packet * self.col_size + self.packet_footer

    @property
    def fields(self) -> dict[str, tuple]:
        return PROFILES[self.profile][1]


def _pick(doc: dict, *paths: str, default: Any = None) -> Any:
    for path in paths:
        node: Any = doc
        for key in path.split("/"):
            if not isinstance(node, dict) or key not in node:
                break
            node = node[key]
        else:
            return node
    return default


def read_metadata(path: str | Path) -> tuple[Any, SensorFormat, dict]:
    """(OusterMetadata, SensorFormat, raw JSON dict) of a sensor metadata file."""
    from coin_lio.io.ouster_metadata import OusterMetadata

    raw = json.loads(Path(path).read_text())
    meta = OusterMetadata.from_dict(raw)
    fmt = raw.get("data_format") or raw.get("lidar_data_format") or {}
    profile = (fmt.get("udp_profile_lidar") or _pick(raw, "config_params/udp_profile_lidar")
               or "LEGACY")
    if profile not in PROFILES:
        raise OusterDataError(f"{path}: lidar profile {profile} is not supported "
                              f"(supported: {sorted(PROFILES)})")
    imu_profile = fmt.get("udp_profile_imu") or _pick(raw, "config_params/udp_profile_imu") or "LEGACY"
    window = fmt.get("column_window") or [0, meta.columns_per_frame - 1]
    sf = SensorFormat(
        rows=int(fmt.get("pixels_per_column", meta.pixels_per_column)),
        cols=int(meta.columns_per_frame),
        columns_per_packet=int(fmt.get("columns_per_packet", 16)),
        profile=profile, imu_profile=imu_profile,
        udp_port_lidar=int(_pick(raw, "udp_port_lidar", "config_params/udp_port_lidar", default=0)
                           or 0),
        udp_port_imu=int(_pick(raw, "udp_port_imu", "config_params/udp_port_imu", default=0) or 0),
        column_window=(int(window[0]), int(window[1])),
        prod_line=str(_pick(raw, "prod_line", "sensor_info/prod_line", default="")))
    if sf.rows != meta.pixels_per_column:
        raise OusterDataError(f"{path}: pixels_per_column {sf.rows} != {meta.pixels_per_column} beams")
    return meta, sf, raw


def pixel_shift_offset(meta: Any) -> int:
    """The constant c in pixel_shift_by_row = round(azimuth * W / 360) + c (firmware 2.x units
    report c != 0, e.g. 12 on an OS-1-128; 3.x reports 0); OusterDataError if not constant."""
    az = np.asarray(meta.beam_azimuth_angles, float)
    diff = np.asarray(meta.pixel_shift_by_row) - np.round(az * meta.columns_per_frame / 360.0)
    values = np.unique(diff.astype(int))
    if values.size != 1:
        raise OusterDataError(f"pixel_shift_by_row - round(azimuth * W / 360) is not constant: "
                              f"{values.tolist()}")
    return int(values[0])


def suite_metadata(meta: Any, layout: str = "legacy") -> dict:
    """The metadata dict in the simulator's JSON layout (coin_lio.io.ouster_metadata reads it back)."""
    return meta.to_dict(layout)


@dataclass
class LidarFrame:
    """One frame as the sdk batches it: (H, W) fields in raw (staggered) column order."""

    frame_id: int
    fields: dict[str, np.ndarray]       # RANGE (mm, uint32), SIGNAL, REFLECTIVITY, NEAR_IR, FLAGS...
    timestamp: np.ndarray               # (W,) uint64 ns, 0 where the column is missing/invalid
    measurement_id: np.ndarray          # (W,) uint16
    status: np.ndarray                  # (W,) uint32
    profile: str
    n_packets: int = 0
    info: dict = field(default_factory=dict)

    @property
    def valid_columns(self) -> np.ndarray:
        return (self.status & 1).astype(bool)

    @property
    def complete(self) -> bool:
        return bool(self.valid_columns.all())

    @property
    def shape(self) -> tuple[int, int]:
        return self.fields["RANGE"].shape


def _bits(pix: np.ndarray, start: int, count: int, upshift: int) -> np.ndarray:
    """Little-endian bit field of every pixel: pix (..., bytes per pixel) uint8 -> uint64."""
    b0, sh = divmod(start, 8)
    n_bytes = (sh + count + 7) // 8
    val = np.zeros(pix.shape[:-1], dtype=np.uint64)
    for k in range(n_bytes):
        val |= pix[..., b0 + k].astype(np.uint64) << np.uint64(8 * k)
    val = (val >> np.uint64(sh)) & np.uint64((1 << count) - 1)
    return val << np.uint64(upshift) if upshift else val


def _le(block: np.ndarray, start: int, size: int) -> np.ndarray:
    """Unsigned little-endian integers of `size` bytes at byte `start` of the last axis."""
    return _bits(block, 8 * start, 8 * size, 0)


def decode_lidar_packets(payloads: list[bytes], sf: SensorFormat) -> dict[str, np.ndarray]:
    """Column headers and pixel fields of equally sized lidar packets, vectorised.

    Returns frame_id (P,), measurement_id / timestamp / status (P, C), and every field (P, C, H)."""
    size = sf.lidar_packet_size
    buf = np.frombuffer(b"".join(payloads), dtype=np.uint8).reshape(len(payloads), size)
    cols = buf[:, sf.packet_header: sf.packet_header + sf.columns_per_packet * sf.col_size]
    cols = cols.reshape(len(payloads), sf.columns_per_packet, sf.col_size)
    out: dict[str, np.ndarray] = {
        "timestamp": _le(cols, 0, 8), "measurement_id": _le(cols, 8, 2).astype(np.uint16)}
    if sf.profile == "LEGACY":
        out["frame_id"] = _le(cols[:, 0], 10, 2).astype(np.int64)
        out["status"] = _le(cols, sf.col_size - 4, 4).astype(np.uint32)
    else:
        out["frame_id"] = _le(buf, 2, 2).astype(np.int64)
        out["status"] = _le(cols, 10, 2).astype(np.uint32)
    pix = cols[:, :, sf.col_header: sf.col_header + sf.rows * sf.pixel_bytes]
    pix = pix.reshape(len(payloads), sf.columns_per_packet, sf.rows, sf.pixel_bytes)
    for name, (start, count, up, dtype) in sf.fields.items():
        out[name] = _bits(pix, start, count, up).astype(dtype)
    return out
