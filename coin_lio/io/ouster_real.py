"""Real Ouster recordings (pcap + sensor metadata JSON) -> the suite's cloud and metadata layouts.

Pure numpy, no ouster-sdk: the pcap is read record by record (Ethernet / Linux cooked / raw IPv4,
IPv4 fragments reassembled, UDP only), lidar and IMU packets are told apart by their UDP port and
size, and the lidar packets are decoded with the bit layouts of ouster-sdk 1.0.1
(ouster_core/src/parsing.cpp) for the profiles LEGACY, RNG19_RFL8_SIG16_NIR16(_DUAL) and
RNG15_RFL8_NIR8. Columns are batched into frames like the sdk's FrameBatcher: by frame id, column
= measurement id, columns whose status bit 0 is clear stay zero. The test data of the ouster-sdk
source archive (sdk/tests/pcaps, fetched by `make setup` into data/ouster_sdk_tests/) carries md5
digests of the sdk's own decoding; `frame_digest` reproduces them.

`frame_to_cloud` gives the organised cloud as ouster-ros publishes it ("original" layout,
suite_tools.pointcloud2.OUSTER_ORIGINAL_DTYPE, raw = staggered column order, os_lidar frame like
the simulator's default): xyz = range * direction + offset from the metadata's lookup table
(coin_lio.io.ouster_geometry.ouster_xyz_lut = the sdk's make_xyz_lut), t = column timestamp - the
first valid column's timestamp (the header stamp), intensity = SIGNAL, reflectivity, ring = row,
ambient = NEAR_IR, range in mm; pixels without a return are all-zero except t, ring, ambient.
The low-bandwidth profile RNG15_RFL8_NIR8 carries no SIGNAL channel: intensity='auto' then takes
REFLECTIVITY (noted in the frame's info), intensity='signal' leaves zeros.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from suite_tools.pointcloud2 import OUSTER_ORIGINAL_DTYPE
# metadata + packet layouts (also re-exported: PROFILES, pixel_shift_offset, suite_metadata)
from coin_lio.io.ouster_format import (IMU_PACKET_BYTES, PROFILES, LidarFrame, OusterDataError,  # noqa: F401
                                       SensorFormat, decode_lidar_packets, pixel_shift_offset,
                                       read_metadata, suite_metadata)
from coin_lio.io.pcap import UdpPacket, iter_udp

STANDARD_G = 9.80665                     # ouster-ros: linear_acceleration = g-units * this
DATA_ENV = "COIN_LIO_OUSTER_DATA"        # overrides the default data directory
PCAP_SUBDIR = "sdk/tests/pcaps"

# Recordings of the ouster-sdk 1.0.1 test data (PCAP_SUBDIR): name -> (pcap, metadata JSON).
RECORDINGS: dict[str, tuple[str, str]] = {
    "OS-1-128": ("OS-1-128_v2.3.0_1024x10_lb_n3.pcap", "OS-1-128_v2.3.0_1024x10.json"),
    "OS-0-128": ("OS-0-128-U1_v2.3.0_1024x10.pcap", "OS-0-128-U1_v2.3.0_1024x10.json"),
    "OS-2-128": ("OS-2-128-U1_v2.3.0_1024x10.pcap", "OS-2-128-U1_v2.3.0_1024x10.json"),
    "OS-0-32": ("OS-0-32-U1_v2.2.0_1024x10.pcap", "OS-0-32-U1_v2.2.0_1024x10.json"),
    "OS-1-32": ("OS-1-32-G_v2.1.1_1024x10.pcap", "OS-1-32-G_v2.1.1_1024x10.json"),
    "OS-2-32": ("OS-2-32-U0_v2.0.0_1024x10.pcap", "OS-2-32-U0_v2.0.0_1024x10.json"),
}


def default_data_dir() -> Path:
    """$COIN_LIO_OUSTER_DATA, else <repository>/data/ouster_sdk_tests (where `make setup` puts it)."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "data" / "ouster_sdk_tests"


def find_recording(name: str = "OS-1-128", root: str | Path | None = None) -> tuple[Path, Path]:
    """(pcap, metadata JSON) of a named recording of the ouster-sdk test data; FileNotFoundError
    (with how to get the data) when absent."""
    if name not in RECORDINGS:
        raise KeyError(f"unknown recording '{name}', known: {sorted(RECORDINGS)}")
    base = Path(root) if root is not None else default_data_dir()
    candidates = [base / PCAP_SUBDIR, base, *sorted(base.glob(f"*/{PCAP_SUBDIR}"))]
    pcap_name, json_name = RECORDINGS[name]
    for d in candidates:
        if (d / pcap_name).is_file() and (d / json_name).is_file():
            return d / pcap_name, d / json_name
    raise FileNotFoundError(
        f"{pcap_name} not found under {base} (run `make setup`, which fetches the ouster-sdk 1.0.1 "
        f"source archive's test data into data/ouster_sdk_tests/, or set {DATA_ENV})")


def split_packets(path: str | Path, sf: SensorFormat) -> tuple[list[UdpPacket], list[UdpPacket], int]:
    """(lidar packets, IMU packets, packets of neither kind) of a pcap, by port and size."""
    lidar, imu, other = [], [], 0
    for p in iter_udp(path):
        port_ok_l = sf.udp_port_lidar in (0, p.dst_port)
        port_ok_i = sf.udp_port_imu in (0, p.dst_port)
        if len(p.payload) == sf.lidar_packet_size and port_ok_l:
            lidar.append(p)
        elif len(p.payload) == IMU_PACKET_BYTES and port_ok_i and sf.imu_profile == "LEGACY":
            imu.append(p)
        else:
            other += 1
    return lidar, imu, other


def read_frames(pcap: str | Path, metadata: str | Path) -> list[LidarFrame]:
    """Every frame of a recording, in order (incomplete first/last frames included; check
    `.complete`). Column placement and zeroing follow the sdk's FrameBatcher."""
    meta, sf, _ = read_metadata(metadata)
    lidar, _, _ = split_packets(pcap, sf)
    if not lidar:
        raise OusterDataError(f"{pcap}: no lidar packets of {sf.lidar_packet_size} bytes "
                              f"({sf.profile}, {sf.rows} rows) on port {sf.udp_port_lidar}")
    dec = decode_lidar_packets([p.payload for p in lidar], sf)
    frames: list[LidarFrame] = []
    order: list[int] = []
    for i, fid in enumerate(dec["frame_id"].tolist()):
        if not order or order[-1] != fid:
            order.append(fid)
            frames.append(_empty_frame(fid, sf))
        fr = frames[-1]
        fr.n_packets += 1
        for c in range(sf.columns_per_packet):
            m = int(dec["measurement_id"][i, c])
            if m >= sf.cols or not dec["status"][i, c] & 1:
                continue
            fr.timestamp[m] = dec["timestamp"][i, c]
            fr.measurement_id[m] = m
            fr.status[m] = dec["status"][i, c]
            for name in sf.fields:
                fr.fields[name][:, m] = dec[name][i, c]
    for fr in frames:
        fr.info = {"prod_line": sf.prod_line, "profile": sf.profile, "pcap": str(pcap),
                   "metadata": str(metadata)}
    return frames


def _empty_frame(fid: int, sf: SensorFormat) -> LidarFrame:
    return LidarFrame(fid, {n: np.zeros((sf.rows, sf.cols), dtype=spec[3])
                            for n, spec in sf.fields.items()},
                      np.zeros(sf.cols, np.uint64), np.zeros(sf.cols, np.uint16),
                      np.zeros(sf.cols, np.uint32), sf.profile)


def read_first_complete_frame(pcap: str | Path, metadata: str | Path) -> LidarFrame:
    for fr in read_frames(pcap, metadata):
        if fr.complete:
            return fr
    raise OusterDataError(f"{pcap}: no frame with all columns valid")


@dataclass
class ImuData:
    t_ns: np.ndarray        # (N,) int64 sensor time of the gyro sample (ouster-ros' stamp)
    acc: np.ndarray         # (N, 3) m/s^2 (packet: g units)
    gyro: np.ndarray        # (N, 3) rad/s (packet: deg/s)
    accel_t_ns: np.ndarray  # (N,) int64
    sys_t_ns: np.ndarray    # (N,) int64


def read_imu(pcap: str | Path, metadata: str | Path) -> ImuData:
    """LEGACY IMU packets (48 bytes: sys, accel, gyro time u64; acc xyz f32 g; gyro xyz f32 deg/s)."""
    _, sf, _ = read_metadata(metadata)
    _, imu, _ = split_packets(pcap, sf)
    if not imu:
        none = np.zeros(0, np.int64)
        return ImuData(none, np.zeros((0, 3)), np.zeros((0, 3)), none.copy(), none.copy())
    raw = np.frombuffer(b"".join(p.payload for p in imu), dtype=np.dtype(
        [("sys", "<u8"), ("acc_t", "<u8"), ("gyro_t", "<u8"), ("acc", "<f4", 3),
         ("gyro", "<f4", 3)]))
    return ImuData(raw["gyro_t"].astype(np.int64), raw["acc"].astype(np.float64) * STANDARD_G,
                   np.radians(raw["gyro"].astype(np.float64)), raw["acc_t"].astype(np.int64),
                   raw["sys"].astype(np.int64))


# ---------------------------------------------------------------------------------------------
# Frame -> suite layouts

def frame_digest(frame: LidarFrame) -> dict[str, str]:
    """md5 hashes as ouster-sdk's FieldDigest.from_frame (sdk/tests/pcaps/*_digest.json 'scans')."""
    md5 = lambda a: hashlib.md5(np.ascontiguousarray(a).tobytes()).hexdigest()  # noqa: E731
    out = {"FRAME_ID": str(frame.frame_id), "TIMESTAMP": md5(frame.timestamp.astype(np.uint64)),
           "STATUS": md5(frame.status.astype(np.uint64)),
           "MEASUREMENT_ID": md5(frame.measurement_id.astype(np.uint16))}
    out.update({name: md5(a) for name, a in frame.fields.items()})
    return out


def frame_to_cloud(frame: LidarFrame, meta: Any, cloud_frame: str = "os_lidar",
                   intensity: str = "auto") -> tuple[np.ndarray, int]:
    """(organised (H, W) OUSTER_ORIGINAL_DTYPE cloud in raw column order, header stamp ns).

    intensity: 'auto' (SIGNAL, else REFLECTIVITY), 'signal' (zeros without SIGNAL),
    'reflectivity'. The choice is recorded in frame.info['intensity_field']."""
    from coin_lio.io.ouster_geometry import ouster_xyz_lut

    h, w = frame.shape
    if (h, w) != (meta.pixels_per_column, meta.columns_per_frame):
        raise OusterDataError(f"frame {h}x{w} does not match the metadata "
                              f"{meta.pixels_per_column}x{meta.columns_per_frame}")
    f = frame.fields
    if intensity == "auto":
        src = "SIGNAL" if "SIGNAL" in f else "REFLECTIVITY"
    elif intensity in ("signal", "reflectivity"):
        src = intensity.upper()
    else:
        raise ValueError(f"intensity must be 'auto', 'signal' or 'reflectivity', got '{intensity}'")
    frame.info["intensity_field"] = src if src in f else "zeros (no SIGNAL in this profile)"
    valid_col = frame.valid_columns
    if not valid_col.any():
        raise OusterDataError("frame has no valid column")
    ts = frame.timestamp.astype(np.int64)
    stamp = int(ts[valid_col][0])                         # ouster-ros: first valid column
    cols = np.arange(w)
    if valid_col.sum() >= 2:                               # missing columns: nominal times
        slope, icpt = np.polyfit(cols[valid_col], ts[valid_col] - stamp, 1)
        t_rel = np.where(valid_col, ts - stamp, np.round(icpt + slope * cols))
    else:
        t_rel = np.zeros(w)
    rng_mm = f["RANGE"].astype(np.uint32)
    has = rng_mm > 0
    direction, offset = ouster_xyz_lut(meta, cloud_frame)
    xyz = direction * (rng_mm * 1e-3)[..., None] + offset
    xyz = np.where(has[..., None], xyz, 0.0)
    out = np.zeros((h, w), dtype=OUSTER_ORIGINAL_DTYPE)
    out["x"], out["y"], out["z"] = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    inten = f[src].astype(np.float32) if src in f else np.zeros((h, w), np.float32)
    out["intensity"] = np.where(has, inten, 0.0)
    out["t"] = np.broadcast_to(np.clip(t_rel, 0, 2**32 - 1).astype(np.uint32), (h, w))
    out["reflectivity"] = np.where(has, f["REFLECTIVITY"], 0).astype(np.uint16)
    out["ring"] = np.arange(h, dtype=np.uint16)[:, None]
    out["ambient"] = f["NEAR_IR"].astype(np.uint16)
    out["range"] = rng_mm
    return out, stamp


def load_real_frame(name: str = "OS-1-128", root: str | Path | None = None,
                    cloud_frame: str = "os_lidar", intensity: str = "auto"):
    """(cloud, stamp ns, OusterMetadata, LidarFrame) of the first complete frame of a recording."""
    pcap, meta_path = find_recording(name, root)
    meta, _, _ = read_metadata(meta_path)
    frame = read_first_complete_frame(pcap, meta_path)
    cloud, stamp = frame_to_cloud(frame, meta, cloud_frame, intensity)
    return cloud, stamp, meta, frame


def write_real_sequence(name: str, out_dir: str | Path, root: str | Path | None = None,
                        points_topic: str = "/ouster/points", imu_topic: str = "/ouster/imu",
                        cloud_frame: str = "os_lidar") -> dict:
    """Every complete frame and every IMU sample of a recording as a ROS 2 bag (MCAP) plus
    metadata.json in the simulator's layout: OUT/bag, OUT/metadata.json. Bag time of a cloud =
    its stamp + one scan period (as the simulator); IMU at its sample time."""
    from suite_tools.bag_io import BagWriter, make_imu, make_pointcloud2

    pcap, meta_path = find_recording(name, root)
    meta, _, _ = read_metadata(meta_path)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    period_ns = 1_000_000_000 // meta.frequency_hz
    events: list[tuple[int, int, str, Any]] = []
    n_clouds = 0
    for fr in read_frames(pcap, meta_path):
        if not fr.complete:
            continue
        cloud, stamp = frame_to_cloud(fr, meta, cloud_frame)
        events.append((stamp + period_ns, 1, points_topic,
                       make_pointcloud2(cloud, stamp, cloud_frame, is_dense=False)))
        n_clouds += 1
    imu = read_imu(pcap, meta_path)
    for t, g, a in zip(imu.t_ns.tolist(), imu.gyro, imu.acc):
        events.append((t, 0, imu_topic, make_imu(t, "os_imu", g, a)))
    events.sort(key=lambda e: (e[0], e[1]))
    with BagWriter(out / "bag") as writer:
        for t, _, topic, msg in events:
            writer.write(topic, t, msg)
    meta.write(out / "metadata.json")
    return {"bag": out / "bag", "metadata": out / "metadata.json", "n_clouds": n_clouds,
            "n_imu": len(imu.t_ns), "prod_line": meta.prod_line}
