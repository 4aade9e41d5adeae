"""What a topic monitor saw, as plain data: per-topic receive times, stamps and sizes, and the
summary a person reads (rate, gaps, latency). No ROS imports: tested without a graph.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class TopicRecord:
    topic: str
    msgtype: str
    recv_ns: list[int] = field(default_factory=list)          # wall clock at the callback
    stamp_ns: list[int | None] = field(default_factory=list)  # header stamp, None if no header
    size: list[int] = field(default_factory=list)             # serialized bytes

    def add(self, recv_ns: int, stamp_ns: int | None, size: int) -> None:
        self.recv_ns.append(recv_ns)
        self.stamp_ns.append(stamp_ns)
        self.size.append(size)

    def summary(self) -> dict:
        n = len(self.recv_ns)
        out = {"topic": self.topic, "type": self.msgtype, "count": n,
               "mean_bytes": float(np.mean(self.size)) if n else 0.0}
        if n >= 2:
            recv = np.asarray(self.recv_ns, dtype=np.int64)
            gaps = np.diff(recv) / 1e6
            out.update(rate_hz=float((n - 1) / ((recv[-1] - recv[0]) / 1e9)) if recv[-1] > recv[0] else 0.0,
                       max_gap_ms=float(gaps.max()))
        return out

    def to_json(self) -> dict:
        return {"topic": self.topic, "type": self.msgtype, "recv_ns": self.recv_ns,
                "stamp_ns": self.stamp_ns, "size": self.size}

    @classmethod
    def from_json(cls, d: dict) -> "TopicRecord":
        return cls(d["topic"], d["type"], list(d["recv_ns"]), list(d["stamp_ns"]), list(d["size"]))


def write_report(path: str | Path, records: list[TopicRecord]) -> None:
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps({"topics": [r.to_json() for r in records]}))
    tmp.replace(path)  # atomic: readers never see half a file


def read_report(path: str | Path) -> dict[str, TopicRecord]:
    data = json.loads(Path(path).read_text())
    return {d["topic"]: TopicRecord.from_json(d) for d in data["topics"]}


def format_summary(records: list[TopicRecord]) -> str:
    """A small table: topic, type, count, rate, max gap, mean size."""
    lines = [f"{'topic':<28} {'type':<32} {'count':>6} {'rate Hz':>8} {'max gap ms':>10} {'KB':>8}"]
    for r in records:
        s = r.summary()
        lines.append(f"{s['topic']:<28} {s['type']:<32} {s['count']:>6} {s.get('rate_hz', 0.0):>8.1f} "
                     f"{s.get('max_gap_ms', 0.0):>10.1f} {s['mean_bytes'] / 1024:>8.1f}")
    return "\n".join(lines)


def timing_errors_ms(record: TopicRecord, bag_t_ns: list[int]) -> np.ndarray:
    """Per-message error (ms) of receive times against the bag's times, messages matched in order.

    The median offset (transport latency + start-up) is removed, so what remains is the jitter
    and drift of the playback timing as a subscriber sees it.
    """
    n = min(len(record.recv_ns), len(bag_t_ns))
    offset = np.asarray(record.recv_ns[:n], dtype=np.int64) - np.asarray(bag_t_ns[:n], dtype=np.int64)
    return (offset - np.median(offset)) / 1e6
