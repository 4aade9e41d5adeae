"""Static confirmation of new map voxels: keeps moving objects (people, cars) out of the map.

FAST-LIO2 adds every scan's points to empty map voxels at once, so a person walking beside the
path leaves a trail of points in the map; the next scans' points on that person fit planes of the
trail, and in a scene where only the person is vertical (a flat field) those planes pull the pose
along with the person. Here a voxel that is not in the map yet waits: it enters only when it is
seen again at least `confirm_s` after it was first seen, without a gap longer than `confirm_s`
(something that stays: the scene). A voxel a mover passed through is not seen again (the rays go
through the free space it left) and expires. Vectorised over sorted int64 voxel keys.
"""
from __future__ import annotations

import numpy as np


class StaticConfirmation:
    """Pending voxels: key, first and last time seen."""

    def __init__(self, confirm_s: float) -> None:
        self.confirm_s = float(confirm_s)
        self.keys = np.zeros(0, dtype=np.int64)        # sorted
        self.first = np.zeros(0)
        self.last = np.zeros(0)
        self.new_total = 0          # voxels that started waiting
        self.expired_total = 0      # ... that were not seen again in time (in a static scene too:
        #                             sparse far returns; ~40 % on the simulated scenes, so no sign of movers)

    def __len__(self) -> int:
        return len(self.keys)

    def confirm(self, keys: np.ndarray, t: float) -> np.ndarray:
        """keys (M,) unique int64 of voxels seen at time t (s) that the map lacks -> (M,) bool:
        the ones confirmed now (to insert). Updates the pending set."""
        keys = np.asarray(keys, dtype=np.int64)
        if len(self.keys):
            pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
            seen = self.keys[pos] == keys
        else:
            pos, seen = np.zeros(len(keys), dtype=np.int64), np.zeros(len(keys), dtype=bool)
        fresh_gap = np.zeros(len(keys), dtype=bool)
        fresh_gap[seen] = t - self.last[pos[seen]] <= self.confirm_s          # no long gap
        ok = np.zeros(len(keys), dtype=bool)
        ok[seen] = fresh_gap[seen] & (t - self.first[pos[seen]] >= self.confirm_s)
        # a voxel seen again after a gap starts over
        restart = seen & ~fresh_gap
        self.first[pos[restart]] = t
        self.last[pos[seen]] = t
        # drop the confirmed and the expired; add the new
        alive = t - self.last <= self.confirm_s
        self.expired_total += int((~alive).sum())
        alive[pos[ok]] = False
        new = keys[~seen]
        self.new_total += len(new)
        keys_all = np.concatenate([self.keys[alive], new])
        order = np.argsort(keys_all, kind="stable")
        self.keys = keys_all[order]
        self.first = np.concatenate([self.first[alive], np.full(len(new), t)])[order]
        self.last = np.concatenate([self.last[alive], np.full(len(new), t)])[order]
        return ok

