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
coin_lio.io.pointcloud2.OUSTER_ORIGINAL_DTYPE, raw = staggered column order, os_lidar frame like
the simulator's default): xyz = range * direction + offset from the metadata's lookup table
(coin_lio.sim.lidar_model.ouster_xyz_lut = the sdk's make_xyz_lut), t = column timestamp - the
first valid column's timestamp (the header stamp), intensity = SIGNAL, reflectivity, ring = row,
ambient = NEAR_IR, range in mm; pixels without a return are all-zero except t, ring, ambient.
The low-bandwidth profile RNG15_RFL8_NIR8 carries no SIGNAL channel: intensity='auto' then takes
REFLECTIVITY (noted in the frame's info), intensity='signal' leaves zeros.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from coin_lio.io.pointcloud2 import OUSTER_ORIGINAL_DTYPE

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


# ---------------------------------------------------------------------------------------------
# Metadata

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
    """(coin_lio.sim OusterMetadata, SensorFormat, raw JSON dict) of a sensor metadata file."""
    from coin_lio.sim.metadata import OusterMetadata

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
    """The metadata dict in the simulator's JSON layout (coin_lio.sim.metadata reads it back)."""
    return meta.to_dict(layout)


# ---------------------------------------------------------------------------------------------
# pcap

@dataclass
class UdpPacket:
    t_ns: int           # capture time
    src_port: int
    dst_port: int
    payload: bytes


def iter_udp(path: str | Path) -> Iterator[UdpPacket]:
    """UDP datagrams of a classic libpcap file (microsecond or nanosecond stamps, either byte
    order; link types Ethernet (+802.1Q), Linux cooked v1, raw IPv4), IPv4 fragments reassembled."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise OusterDataError(f"{path}: not a pcap file (too short)")
    magic = data[:4]
    orders = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
              b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
    if magic not in orders:
        raise OusterDataError(f"{path}: not a classic pcap file (magic {magic.hex()}; pcapng is "
                              "not supported)")
    end, frac_ns = orders[magic]
    link = struct.unpack(end + "I", data[20:24])[0]
    if link not in (1, 101, 113, 228):
        raise OusterDataError(f"{path}: link type {link} not supported")
    fragments: dict[tuple, dict[int, bytes]] = {}
    totals: dict[tuple, int] = {}
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        t_ns = sec * 1_000_000_000 + frac * frac_ns
        ip = _ipv4_payload(frame, link)
        if ip is None or len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:   # IPv4 + UDP only
            continue
        ihl = (ip[0] & 0x0F) * 4
        total_len = struct.unpack(">H", ip[2:4])[0]
        ident, flags_frag = struct.unpack(">HH", ip[4:8])
        more, frag_off = (flags_frag >> 13) & 1, (flags_frag & 0x1FFF) * 8
        body = ip[ihl:max(total_len, ihl)] if total_len else ip[ihl:]
        if more or frag_off:
            key = (ip[12:16], ip[16:20], ident)
            fragments.setdefault(key, {})[frag_off] = body
            if not more:
                totals[key] = frag_off + len(body)
            got = fragments[key]
            if key in totals and sum(len(b) for b in got.values()) >= totals[key]:
                buf = bytearray(totals[key])
                for o, b in got.items():
                    buf[o:o + len(b)] = b
                del fragments[key], totals[key]
                body = bytes(buf)
            else:
                continue
        if len(body) < 8:
            continue
        sport, dport, ulen = struct.unpack(">HHH", body[:6])
        yield UdpPacket(t_ns, sport, dport, body[8:ulen] if ulen >= 8 else body[8:])


def _ipv4_payload(frame: bytes, link: int) -> bytes | None:
    if link == 1:                                            # Ethernet II (+ VLAN tags)
        off, ethertype = 14, struct.unpack(">H", frame[12:14])[0] if len(frame) >= 14 else 0
        while ethertype in (0x8100, 0x88A8) and len(frame) >= off + 4:
            ethertype = struct.unpack(">H", frame[off + 2:off + 4])[0]
            off += 4
        return frame[off:] if ethertype == 0x0800 else None
    if link == 113:                                          # Linux cooked capture v1
        return frame[16:] if len(frame) >= 16 and frame[14:16] == b"\x08\x00" else None
    return frame                                             # raw IPv4 (101, 228)


# ---------------------------------------------------------------------------------------------
# Lidar packets -> frames

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
    from coin_lio.sim.lidar_model import ouster_xyz_lut

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
