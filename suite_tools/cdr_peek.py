"""Cheap reads from serialized (CDR) messages without deserialising them: the header stamp of
messages whose first field is std_msgs/Header. Used where full decoding would cost more than the
work (1.5 MB point clouds in a monitor or a player).
"""
from __future__ import annotations

import struct


def header_stamp_ns(raw: bytes | memoryview) -> int | None:
    """Stamp (ns) of a CDR message that starts with std_msgs/Header, else None.

    Layout: 4-byte encapsulation (0x00 0x01 = CDR little-endian, 0x00 0x00 = big-endian),
    then builtin_interfaces/Time {int32 sec, uint32 nanosec}.
    """
    if len(raw) < 12:
        return None
    kind = bytes(raw[0:2])
    if kind in (b"\x00\x01", b"\x00\x03"):
        sec, nsec = struct.unpack_from("<iI", raw, 4)
    elif kind in (b"\x00\x00", b"\x00\x02"):
        sec, nsec = struct.unpack_from(">iI", raw, 4)
    else:
        return None
    if nsec >= 1_000_000_000:
        return None
    return sec * 1_000_000_000 + nsec
