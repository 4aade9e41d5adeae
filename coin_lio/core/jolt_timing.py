"""IMU-LiDAR clock offset from a scan taken during a jolt.

A knock swings the rig by degrees within tens of milliseconds (5 g, 300 deg/s), and the jolt
covers most of a 100 ms scan. Deskewed with an IMU track read delta too early or too late, that
swing misplaces a point 20 m away by 10 cm a millisecond, so such a scan is the sharpest clock
there is: registered with the track shifted by the right delta, it fits the map; with any other,
it does not. The online estimate of time_offset.py needs rate changes at scan ends, which smooth
driving hardly gives (minutes of data); one knock gives the offset to a millisecond, and the
knock's own scan is registered with it instead of being pulled off by centimetres.

`ClockSearch.search(cost)` minimises cost(delta) (the pipeline's: register the scan deskewed with
the track shifted by delta, then the robust point-to-plane cost of the result) over +-max_offset:
a coarse grid, then halving steps around the best, then a parabola through the best and its
neighbours. An estimate only when the best cost is clearly (`min_gain`) below the cost at 0 and
not at the edge of the range. Pure python; the cost is a callable.

delta > 0: the IMU's stamps are still that late (the pose at LiDAR time t is the track's at
t + delta): add it to imu.time_offset (the sign of time_offset.OffsetEstimate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class JoltOffset:
    delta: float                  # s: the IMU stamps are still this late (add to imu.time_offset)
    gain: float                   # cost at delta / cost at 0 (< 1: better)
    costs: dict[float, float] = field(default_factory=dict)   # s -> cost, every delta evaluated


@dataclass
class ClockSearch:
    max_offset: float = 0.02      # s: searched over +- this
    coarse: float = 0.005         # s: first grid step; then halved down to `fine`
    fine: float = 0.00125         # s
    min_gain: float = 0.85        # the best cost must be below this x the cost at delta 0

    def __post_init__(self) -> None:
        if not (0 < self.fine <= self.coarse <= self.max_offset and 0 < self.min_gain < 1):
            raise ValueError("need 0 < fine <= coarse <= max_offset and 0 < min_gain < 1")

    def search(self, cost: Callable[[float], float]) -> JoltOffset | None:
        """The delta (s) minimising cost(delta) over +-max_offset, or None without a clear one."""
        costs: dict[float, float] = {}

        def at(delta: float) -> float:
            delta = round(delta, 9)
            if delta not in costs:
                c = float(cost(delta))
                costs[delta] = c if math.isfinite(c) else math.inf
            return costs[delta]

        n = int(round(self.max_offset / self.coarse))
        best = min((k * self.coarse for k in range(-n, n + 1)), key=at)
        step = self.coarse
        while step > self.fine + 1e-12:
            step *= 0.5
            best = min((best - step, best, best + step), key=lambda d: at(d) if abs(d) <= self.max_offset
                       else math.inf)
        zero = at(0.0)
        if not (math.isfinite(zero) and zero > 0) or abs(best) >= self.max_offset - 1e-9:
            return None
        gain = at(best) / zero
        if gain > self.min_gain:
            return None
        a, b, c = at(best - step), at(best), at(best + step)
        curv = a - 2 * b + c
        shift = 0.5 * (a - c) / curv if math.isfinite(curv) and curv > 0 else 0.0
        return JoltOffset(best + max(-0.5, min(0.5, shift)) * step, gain, costs)
