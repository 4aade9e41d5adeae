"""The impulse of a jolt that clipped the accelerometer, put back from the readings around it.

A knock drives the accelerometer past its full-scale range for a reading or two, and the clipped
readings lose most of the jolt's central impulse: integrated as they are, a 5 g jolt against a
+-2 g IMU leaves the velocity ~0.4 m/s off, which the scans then take half a second to undo.

A jolt moves the rig and brings it back. So over the whole episode -- from a quiet reading before
it (lag_s before the first reading that departs from it) to the first quiet ones after -- the
velocity changes only by what the steady motion around it does, and the impulse the clipped
readings lost is the one that closes that balance:

    sum_k 0.5 (f_k + f_k+1) dt_k + sum_(i,j) w_i R_i e_j c_ij = 0,   f_k = R_k a_k - a_before

with R_k the rotation since the episode start (the gyro's), a_before that quiet reading and
c_ij the part of reading i's axis j cut off by the clip (w_i: the reading's share of time). The
c_ij are its least-squares solution with each pushing its reading outward, beyond the clip level
(non-negative least squares on the outward directions; where the balance asks for the opposite
the clip is not what lost it and nothing is added); readings not integrated yet get them added,
the rest come back as a velocity correction for the filter (`JoltCorrection`). A clip level is
known once read twice (coin_lio.imu_saturation): a first jolt that clips a single reading is
left as read. A steady acceleration beside the jolt (braking during a knock) is kept: f is its
change. An episode that lasts longer than `max_s` (a sustained overload: a crash, a fall) is not
a jolt and is left as read. `jolt_spans` says when the jolts that may have clipped were, for the
pipeline to leave their points out. Pure numpy, no ROS.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from coin_lio.core import so3
from coin_lio.core.imu_propagation import ImuSample


@dataclass
class JoltCorrection:
    """Impulse lost by readings the filter had already integrated when the episode ended."""

    t: float                 # s, mean time of those readings
    dv_body: np.ndarray      # (3,) m/s (reading units x s) in the IMU frame at the episode start


class ClipRecovery:
    def __init__(self, threshold: float = 3.0, max_s: float = 0.3, quiet: int = 2,
                 lag_s: float = 0.05, clip_floor: float = 14.7) -> None:
        """threshold (m/s^2): a reading this far from the quiet one lag_s before it starts an
        episode (a jolt's rise is steep; a slow lead-in is inside the episode, not its baseline);
        `quiet` readings in a row within half of it end the episode; max_s: longer episodes are
        left as read; clip_floor (m/s^2): episodes with a reading this large may have clipped."""
        self.threshold, self.max_s, self.quiet, self.lag_s = threshold, max_s, quiet, lag_s
        self.clip_floor = clip_floor
        self.restored: list[float] = []    # m/s restored per recovered episode (the last 100)
        self.recovered = 0                 # episodes recovered since the start
        self.reset()

    def reset(self) -> None:
        self.spans: list[tuple[float, float]] = []   # s, the last 8 closed episodes that may have clipped
        self._recent: deque[ImuSample] = deque()   # quiet readings back to one lag_s old
        self._settling = True                   # (re)start: wait for two readings alike
        self._episode: list[ImuSample] = []     # the quiet reading before + the readings since
        self._rot: list[np.ndarray] = []        # rotation of each since the episode start
        self._calm = 0                          # quiet readings in a row at the episode's end
        self._first = 0                         # index of the episode's first departing reading

    def add(self, s: ImuSample, clipped: Callable[[np.ndarray], np.ndarray],
            integrated_until: float) -> JoltCorrection | None:
        """One reading (after the saturation check saw it); clipped(acc (3,)) -> (3,) bool, the
        axes at a known clip level; readings at or before integrated_until (s) are in the filter."""
        if self._settling:
            last = self._recent[-1] if self._recent else None
            self._settling = (last is None or np.linalg.norm(s.acc - last.acc) > 0.5 * self.threshold
                              or bool(clipped(s.acc).any()))     # two alike at the clip level: not quiet
            self._recent = deque([s])
            return None
        if not self._episode:
            self._recent.append(s)
            while len(self._recent) > 2 and self._recent[1].t <= s.t - self.lag_s:
                self._recent.popleft()
            d = s.acc - self._recent[0].acc
            if np.sqrt(d.dot(d)) <= self.threshold:                # np.linalg.norm's sum: every reading
                return None
            self._episode, self._rot, self._calm = [self._recent[0]], [np.eye(3)], 0
            for r in list(self._recent)[1:]:
                self._extend(r)
            self._first = len(self._episode) - 1
            return None
        R = self._extend(s)
        calm = np.linalg.norm(R @ s.acc - self._episode[0].acc) <= 0.5 * self.threshold
        self._calm = self._calm + 1 if calm else 0
        if s.t - self._episode[0].t > self.max_s:   # not a jolt: used as read, start over
            self._settling, self._recent, self._episode, self._rot = True, deque([s]), [], []
            return None
        if self._calm < self.quiet:
            return None
        if self._may_clip():
            self.spans = self.spans[-7:] + [self._span(len(self._episode) - self.quiet)]
        out = self._close(clipped, integrated_until)
        self._recent, self._episode, self._rot = deque([s]), [], []
        return out

    def shift_clock(self, step: float, shifted: set[int]) -> None:
        """The IMU clock moved: spans and the readings held here `step` s earlier (except those
        whose id() is in `shifted`, already moved by the caller: the same ImuSample objects)."""
        self.spans = [(a - step, b - step) for a, b in self.spans]
        for s in {id(r): r for r in [*self._recent, *self._episode]}.values():
            if id(s) not in shifted:
                s.t -= step

    def jolt_spans(self) -> list[tuple[float, float]]:
        """(start, end) s of the recent jolts that may have clipped the accelerometer, from the
        reading before the first that departed to the first quiet one after (an open one: to its
        last reading). The IMU's motion is least known there: clipped, coarsely sampled, and any
        clock offset left moves a 300 deg/s swing by 0.3 deg a millisecond."""
        if self._episode and self._may_clip():
            return self.spans + [self._span(len(self._episode) - 1)]
        return list(self.spans)

    def _may_clip(self) -> bool:
        return any(np.abs(r.acc).max() >= self.clip_floor for r in self._episode)

    def _span(self, last: int) -> tuple[float, float]:
        return self._episode[max(self._first - 1, 0)].t, self._episode[last].t

    def _extend(self, s: ImuSample) -> np.ndarray:
        """Append a reading to the episode with its rotation since the start (gyro, trapezoid)."""
        prev = self._episode[-1]
        R = self._rot[-1] @ so3.exp(0.5 * (prev.gyro + s.gyro) * (s.t - prev.t))
        self._episode.append(s)
        self._rot.append(R)
        return R

    def _close(self, clipped: Callable[[np.ndarray], np.ndarray],
               integrated_until: float) -> JoltCorrection | None:
        ep, rot = self._episode, np.stack(self._rot)
        t = np.array([s.t for s in ep])                                  # (K,)
        acc = np.stack([s.acc for s in ep])                              # (K, 3)
        f = np.einsum("kij,kj->ki", rot, acc) - acc[0]                   # (K, 3) change since before
        dt = np.diff(t)
        balance = (0.5 * (f[1:] + f[:-1]) * dt[:, None]).sum(axis=0)     # (3,) velocity change
        cols, where = [], []
        w = 0.5 * (np.r_[0.0, dt] + np.r_[dt, 0.0])                      # (K,) each reading's time
        for i in range(1, len(ep) - 1):
            for j in np.flatnonzero(clipped(acc[i])):
                cols.append(w[i] * rot[i][:, j])
                where.append((i, j))
        if not cols:
            return None
        signs = np.array([np.sign(acc[i, j]) for i, j in where])
        A = np.stack(cols, axis=1) * signs                               # (3, M): outward columns
        # c >= 0 (outward only), with a little ridge: near-equal columns (the same axis clipped
        # on two readings) share the impulse instead of cancelling each other
        ridge = np.sqrt(1e-3 * np.mean(np.sum(A * A, axis=0)))
        c = nnls(np.vstack([A, ridge * np.eye(A.shape[1])]), np.r_[-balance, np.zeros(A.shape[1])])[0]
        if not c.any():
            return None
        del self.restored[:-99]
        self.restored.append(float(np.linalg.norm(A @ c)))               # m/s put back
        self.recovered += 1
        c = c * signs                                                    # (M,) signed, m/s^2
        late = np.zeros(3)
        late_t = []
        for (i, j), cij in zip(where, c):
            if ep[i].t > integrated_until:
                ep[i].acc = ep[i].acc.copy()
                ep[i].acc[j] += cij
            else:
                late += w[i] * rot[i][:, j] * cij
                late_t.append(ep[i].t)
        if not late_t:
            return None
        return JoltCorrection(float(np.mean(late_t)), late)
