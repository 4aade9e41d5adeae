"""Timed SE(3) trajectories: TUM files (t x y z qx qy qz qw) and association by timestamp.

Association follows evo (`evo.core.sync.associate_trajectories`, nearest_time): the trajectory with
fewer poses is the base; each of its stamps takes the nearest stamp of the other within max_diff.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation


class TumFormatError(ValueError):
    """A TUM trajectory file that does not parse (file, line number and reason in the message)."""


@dataclass
class Trajectory:
    """Poses T_world_body at timestamps. Quaternions are scalar-last (x, y, z, w), like TUM."""

    timestamps: np.ndarray  # (N,) seconds
    positions: np.ndarray   # (N, 3) metres
    quats_xyzw: np.ndarray  # (N, 4) unit quaternions
    name: str = ""

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        n = self.timestamps.size
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(n, 3)
        q = np.asarray(self.quats_xyzw, dtype=np.float64).reshape(n, 4)
        norms = np.linalg.norm(q, axis=1)
        if n and (not np.all(np.isfinite(q)) or np.any(norms < 1e-9)):
            raise ValueError("quaternions must be finite and non-zero")
        self.quats_xyzw = q / norms[:, None] if n else q

    @classmethod
    def from_poses(cls, timestamps: Sequence[float], poses: np.ndarray, name: str = "") -> "Trajectory":
        """From (N, 4, 4) homogeneous matrices."""
        poses = np.asarray(poses, dtype=np.float64).reshape(-1, 4, 4)
        quats = Rotation.from_matrix(poses[:, :3, :3]).as_quat() if len(poses) else np.zeros((0, 4))
        return cls(np.asarray(timestamps), poses[:, :3, 3], quats, name)

    def __len__(self) -> int:
        return int(self.timestamps.size)

    @property
    def rotations(self) -> Rotation:
        return Rotation.from_quat(self.quats_xyzw)

    def poses(self) -> np.ndarray:
        """(N, 4, 4) homogeneous matrices T_world_body."""
        out = np.tile(np.eye(4), (len(self), 1, 1))
        if len(self):
            out[:, :3, :3] = self.rotations.as_matrix()
            out[:, :3, 3] = self.positions
        return out

    def subset(self, idx: Sequence[int] | np.ndarray) -> "Trajectory":
        idx = np.asarray(idx, dtype=int)
        return Trajectory(self.timestamps[idx], self.positions[idx], self.quats_xyzw[idx], self.name)

    def transformed(self, left: np.ndarray | None = None, right: np.ndarray | None = None) -> "Trajectory":
        """left @ T_i @ right for every pose: `left` changes the world frame, `right` the body frame."""
        poses = self.poses()
        if left is not None:
            poses = np.asarray(left, dtype=np.float64) @ poses
        if right is not None:
            poses = poses @ np.asarray(right, dtype=np.float64)
        return Trajectory.from_poses(self.timestamps, poses, self.name)

    def path_length(self) -> float:
        """Sum of distances between consecutive positions (m)."""
        return float(np.sum(np.linalg.norm(np.diff(self.positions, axis=0), axis=1)))

    def duration(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0]) if len(self) > 1 else 0.0

    def interpolated(self, stamps: np.ndarray) -> "Trajectory":
        """Poses at `stamps` inside this trajectory's time span (others left out): positions
        linearly, rotations by slerp between the neighbouring poses. Needs sorted stamps."""
        from scipy.spatial.transform import Slerp

        t = np.asarray(stamps, dtype=np.float64).reshape(-1)
        if len(self) < 2:
            raise ValueError("interpolation needs at least two poses")
        t = t[(t >= self.timestamps[0]) & (t <= self.timestamps[-1])]
        pos = np.stack([np.interp(t, self.timestamps, self.positions[:, j]) for j in range(3)], axis=1)
        quats = Slerp(self.timestamps, self.rotations)(t).as_quat() if t.size else np.zeros((0, 4))
        return Trajectory(t, pos, quats, self.name)


def read_tum(path: str | Path, name: str | None = None) -> Trajectory:
    """Read a TUM file; '#' comments and blank lines are skipped, anything else must be 8 numbers."""
    path = Path(path)
    rows = []
    for lineno, line in enumerate(path.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        parts = text.replace(",", " ").split()
        if len(parts) != 8:
            raise TumFormatError(f"{path}:{lineno}: expected 8 values 't x y z qx qy qz qw', "
                                 f"got {len(parts)}: {line.strip()!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError:
            raise TumFormatError(f"{path}:{lineno}: not a number in {line.strip()!r}") from None
        if not all(np.isfinite(values)):
            raise TumFormatError(f"{path}:{lineno}: non-finite value in {line.strip()!r}")
        if np.linalg.norm(values[4:]) < 1e-9:
            raise TumFormatError(f"{path}:{lineno}: zero quaternion in {line.strip()!r}")
        rows.append(values)
    mat = np.asarray(rows, dtype=np.float64).reshape(-1, 8)
    return Trajectory(mat[:, 0], mat[:, 1:4], mat[:, 4:8], name if name is not None else path.stem)


def write_tum(path: str | Path, traj: Trajectory, header: str | None = None) -> Path:
    """Write a TUM file (ns-resolution stamps, 9 decimals everywhere); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mat = np.column_stack([traj.timestamps, traj.positions, traj.quats_xyzw])
    head = "# timestamp x y z qx qy qz qw" + (f"\n# {header}" if header else "")
    np.savetxt(path, mat, fmt="%.9f", delimiter=" ", header=head, comments="")
    return path


def matching_time_indices(stamps_1: np.ndarray, stamps_2: np.ndarray,
                          max_diff: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Indices (i1, i2) pairing each stamp of stamps_1 with the nearest of stamps_2 within max_diff."""
    s1, s2 = np.asarray(stamps_1, float), np.asarray(stamps_2, float)
    if s1.size == 0 or s2.size == 0:
        return np.zeros(0, int), np.zeros(0, int)
    if np.any(np.diff(s2) < 0):  # unsorted: linear search, first minimum wins (as evo)
        i2 = np.array([int(np.argmin(np.abs(s2 - s))) for s in s1], dtype=int)
        keep = np.abs(s2[i2] - s1) <= max_diff
        return np.flatnonzero(keep), i2[keep]
    ub = np.minimum(np.searchsorted(s2, s1, side="right"), s2.size - 1)
    diff_ub = s2[ub] - s1
    diff_lb = np.where(ub > 0, s1 - s2[np.maximum(ub - 1, 0)], np.inf)
    take_ub = (diff_ub <= max_diff) & (diff_ub < diff_lb)
    take_lb = ~take_ub & (diff_lb <= max_diff) & (diff_lb <= diff_ub)
    in_range = (s1 >= s2[0] - max_diff) & (s1 <= s2[-1] + max_diff)
    keep = in_range & (take_ub | take_lb)
    i2 = np.where(take_ub, ub, ub - 1)
    return np.flatnonzero(keep), i2[keep]


def associate(ref: Trajectory, est: Trajectory, max_diff: float = 0.01) -> tuple[Trajectory, Trajectory]:
    """(ref, est) reduced to pairs of matching stamps (|dt| <= max_diff s), like evo's nearest_time.

    Raises ValueError when nothing matches.
    """
    est_longer = len(est) > len(ref)
    short, long_ = (ref, est) if est_longer else (est, ref)
    i_short, i_long = matching_time_indices(short.timestamps, long_.timestamps, max_diff)
    if i_short.size == 0:
        raise ValueError(f"no matching timestamps between '{ref.name}' and '{est.name}' "
                         f"with max. time difference {max_diff} s")
    short, long_ = short.subset(i_short), long_.subset(i_long)
    return (short, long_) if est_longer else (long_, short)


def match_to_reference(ref: Trajectory, est: Trajectory, max_diff: float = 0.01) -> tuple[Trajectory, Trajectory, bool]:
    """(ref, est, interpolated): pairs by stamp (associate) or, when fewer than half of the
    shorter trajectory's poses find a partner within max_diff, the reference interpolated at the
    estimate's stamps (a LiDAR with a column window stamps its pose at the last column that
    arrived, between the reference's scan-rate stamps). Raises ValueError when nothing matches."""
    try:
        r, e = associate(ref, est, max_diff)
    except ValueError:
        r, e = ref.subset([]), est
    if len(r) >= 0.5 * min(len(ref), len(est)) or len(ref) < 2:
        if len(r) == 0:
            raise ValueError(f"no matching timestamps between '{ref.name}' and '{est.name}' "
                             f"with max. time difference {max_diff} s")
        return r, e, False
    inside = (est.timestamps >= ref.timestamps[0]) & (est.timestamps <= ref.timestamps[-1])
    if not inside.any():
        raise ValueError(f"'{est.name}' has no pose inside the time span of '{ref.name}'")
    return ref.interpolated(est.timestamps), est.subset(np.flatnonzero(inside)), True
