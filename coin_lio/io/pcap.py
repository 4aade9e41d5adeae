"""UDP datagrams of a classic libpcap capture, pure Python (no libpcap, no scapy): Ethernet
(+802.1Q), Linux cooked v1 and raw IPv4 links, microsecond or nanosecond stamps in either byte
order, IPv4 fragments reassembled. Used to read the real Ouster recordings (coin_lio.io.ouster_real).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator


class PcapError(ValueError):
    """A file this reader cannot parse (the reason is in the message)."""


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
        raise PcapError(f"{path}: not a pcap file (too short)")
    magic = data[:4]
    orders = {b"\xd4\xc3\xb2\xa1": ("<", 1000), b"\xa1\xb2\xc3\xd4": (">", 1000),
              b"\x4d\x3c\xb2\xa1": ("<", 1), b"\xa1\xb2\x3c\x4d": (">", 1)}
    if magic not in orders:
        raise PcapError(f"{path}: not a classic pcap file (magic {magic.hex()}; pcapng is "
                              "not supported)")
    end, frac_ns = orders[magic]
    link = struct.unpack(end + "I", data[20:24])[0]
    if link not in (1, 101, 113, 228):
        raise PcapError(f"{path}: link type {link} not supported")
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
