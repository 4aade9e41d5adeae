"""Timing of bag playback, without ROS: when (wall clock) each bag message is due, and precise
waiting for it. Kept apart from the player node so it is tested on its own.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable


@dataclass
class PlaybackClock:
    """Maps bag time to wall time: wall = wall_origin + (bag - bag_origin) / rate.

    `restart(bag_ns)` re-anchors the mapping (a new loop, or after a pause).
    """

    rate: float = 1.0
    bag_origin_ns: int = 0
    wall_origin_ns: int = 0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")

    def restart(self, bag_ns: int, wall_ns: int | None = None) -> None:
        self.bag_origin_ns = int(bag_ns)
        self.wall_origin_ns = time.monotonic_ns() if wall_ns is None else int(wall_ns)

    def wall_due_ns(self, bag_ns: int) -> int:
        return self.wall_origin_ns + int((bag_ns - self.bag_origin_ns) / self.rate)

    def bag_now_ns(self, wall_ns: int | None = None) -> int:
        wall = time.monotonic_ns() if wall_ns is None else wall_ns
        return self.bag_origin_ns + int((wall - self.wall_origin_ns) * self.rate)


def wait_until(wall_ns: int, on_tick: Callable[[], None] | None = None, tick_ns: int = 0,
               should_stop: Callable[[], bool] = lambda: False) -> bool:
    """Sleep until monotonic time `wall_ns` (sub-millisecond: coarse sleep, then a short spin).

    Calls `on_tick` every `tick_ns` while waiting (e.g. to publish /clock). Returns False when
    `should_stop()` became true first.
    """
    next_tick = time.monotonic_ns() if on_tick and tick_ns > 0 else None
    while True:
        now = time.monotonic_ns()
        if should_stop():
            return False
        if next_tick is not None and now >= next_tick:
            on_tick()
            next_tick += tick_ns
            if next_tick < now:  # fell behind: don't burst
                next_tick = now + tick_ns
        remaining = wall_ns - now
        if remaining <= 0:
            return True
        horizon = remaining if next_tick is None else min(remaining, next_tick - now)
        if horizon > 2_000_000:
            time.sleep(min(horizon - 1_500_000, 50_000_000) / 1e9)
        elif horizon > 200_000:
            time.sleep(0.0001)
