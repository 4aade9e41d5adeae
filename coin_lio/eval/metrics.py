"""Trajectory error metrics that reproduce evo's numbers on the same (associated) trajectories.

- APE: translation error after SE(3) Umeyama alignment without scale
  == `evo_ape tum GT EST --align` (pose_relation trans_part), statistics rmse/mean/median/std/min/max.
- RPE: translation part of E = (Q_i^-1 Q_j)^-1 (P_i^-1 P_j) over pairs (i, j) that are `delta` metres
  of path apart == `evo_rpe tum GT EST --delta 10 --delta_unit m [--all_pairs] [--pairs_from_reference]`
  (metres); the percentages here are those metres / delta * 100. RPE needs no alignment: it is
  invariant to a rigid change of the estimate's world frame (evo's --align changes nothing).
- KITTI drift: the KITTI odometry devkit (evaluate_odometry.cpp) on the associated poses: segments of
  100..800 m of ground-truth path starting every `step` frames, t_err = |trans(inv(dP) dQ)| / length.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from coin_lio.eval.trajectory import Trajectory, match_to_reference

KITTI_LENGTHS = (100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0)


def umeyama_alignment(src: np.ndarray, dst: np.ndarray,
                      with_scale: bool = False) -> tuple[np.ndarray, np.ndarray, float]:
    """(R, t, s) minimising sum |dst_i - (s R src_i + t)|^2 for src, dst of shape (N, 3) (Umeyama 1991)."""
    src, dst = np.asarray(src, float), np.asarray(dst, float)
    if src.shape != dst.shape or src.ndim != 2:
        raise ValueError(f"point sets must have equal (N, m) shapes, got {src.shape} and {dst.shape}")
    n, m = src.shape
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    xs, xd = src - mu_s, dst - mu_d
    cov = xd.T @ xs / n                                  # (m, m), eq. 38
    u, d, vt = np.linalg.svd(cov)
    if np.count_nonzero(d > np.finfo(d.dtype).eps) < m - 1:
        raise ValueError("degenerate point sets (collinear or too few): alignment is not unique")
    s_mat = np.eye(m)
    if np.linalg.det(u) * np.linalg.det(vt) < 0.0:
        s_mat[-1, -1] = -1.0
    rot = u @ s_mat @ vt
    scale = float(np.trace(np.diag(d) @ s_mat) / (np.sum(xs ** 2) / n)) if with_scale else 1.0
    return rot, mu_d - scale * rot @ mu_s, scale


def align_se3(ref: Trajectory, est: Trajectory) -> tuple[Trajectory, np.ndarray]:
    """est moved onto ref (same length, associated) by the best rigid transform; (aligned, T 4x4)."""
    rot, trans, _ = umeyama_alignment(est.positions, ref.positions)
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = rot, trans
    return est.transformed(left=T), T


def _stats(errors: np.ndarray) -> dict[str, float]:
    e = np.asarray(errors, float)
    if e.size == 0:
        return {k: float("nan") for k in ("rmse", "mean", "median", "std", "min", "max")}
    return {"rmse": float(np.sqrt(np.mean(e ** 2))), "mean": float(np.mean(e)),
            "median": float(np.median(e)), "std": float(np.std(e)), "min": float(np.min(e)),
            "max": float(np.max(e))}


@dataclass
class ApeResult:
    stats: dict[str, float]            # metres
    errors: np.ndarray = field(repr=False)  # (N,) per pose, metres
    alignment: np.ndarray = field(repr=False)  # 4x4 applied to the estimate


def ape(ref: Trajectory, est: Trajectory, align: bool = True) -> ApeResult:
    """Absolute translation error of associated trajectories, after SE(3) alignment if `align`."""
    _check_pair(ref, est)
    aligned, T = align_se3(ref, est) if align else (est, np.eye(4))
    errors = np.linalg.norm(aligned.positions - ref.positions, axis=1)
    return ApeResult(_stats(errors), errors, T)


def path_pairs(positions: np.ndarray, delta: float, all_pairs: bool = False,
               tol: float = 0.0) -> list[tuple[int, int]]:
    """Index pairs `delta` metres of path apart (evo.core.filters.filter_pairs_by_path, same arithmetic)."""
    positions = np.asarray(positions, float)
    if len(positions) < 2:
        return []
    if all_pairs:
        dist = np.concatenate(([0.0], np.cumsum(np.linalg.norm(positions[:-1] - positions[1:], axis=1))))
        pairs = []
        for i in range(dist.size - 1):
            ahead = dist[i + 1:] - dist[i]
            k = int(np.argmin(np.abs(ahead - delta)))
            if np.abs(ahead[k] - delta) <= tol:
                pairs.append((i, k + i + 1))
        return pairs
    ids, travelled = [0], 0.0
    for i in range(1, len(positions)):
        travelled += float(np.linalg.norm(positions[i] - positions[i - 1]))
        if travelled >= delta:
            ids.append(i)
            travelled = 0.0
    return list(zip(ids, ids[1:]))


@dataclass
class RpeResult:
    delta_m: float
    stats_m: dict[str, float]        # translation error per segment, metres
    stats_pct: dict[str, float]      # the same / delta_m * 100
    pairs: list[tuple[int, int]] = field(repr=False)
    errors_m: np.ndarray = field(repr=False)


def rpe(ref: Trajectory, est: Trajectory, delta: float = 10.0, all_pairs: bool = True,
        pairs_from_reference: bool = True, rel_delta_tol: float = 0.1) -> RpeResult:
    """Relative translation error over `delta`-metre segments of associated trajectories.

    Defaults equal `evo_rpe tum GT EST --delta 10 --delta_unit m --all_pairs --pairs_from_reference`
    (evo's own CLI defaults are consecutive pairs taken from the estimate's path).
    """
    _check_pair(ref, est)
    base = ref if pairs_from_reference else est
    pairs = path_pairs(base.positions, delta, all_pairs, delta * rel_delta_tol)
    if pairs:
        i, j = np.asarray(pairs).T
        Q, P = ref.poses(), est.poses()
        q_rel = np.linalg.inv(Q[i]) @ Q[j]
        p_rel = np.linalg.inv(P[i]) @ P[j]
        errors = np.linalg.norm((np.linalg.inv(q_rel) @ p_rel)[:, :3, 3], axis=1)
    else:
        errors = np.zeros(0)
    stats = _stats(errors)
    return RpeResult(delta, stats, {k: v / delta * 100.0 for k, v in stats.items()}, pairs, errors)


@dataclass
class KittiResult:
    t_err_pct: float            # mean translational error over all segments, %
    r_err_deg_per_100m: float   # mean rotational error, deg / 100 m
    n_segments: int
    per_length: dict[float, tuple[float, int]]  # length -> (t_err %, segment count)


def kitti_drift(ref: Trajectory, est: Trajectory, lengths=KITTI_LENGTHS, step: int = 10) -> KittiResult:
    """KITTI devkit drift: segments start every `step` poses; their length is measured on ref."""
    _check_pair(ref, est)
    Q, P = ref.poses(), est.poses()
    dist = np.concatenate(([0.0], np.cumsum(np.linalg.norm(np.diff(ref.positions, axis=0), axis=1))))
    t_errs: dict[float, list[float]] = {float(length): [] for length in lengths}
    r_errs: list[float] = []
    for first in range(0, len(ref), step):
        for length in lengths:
            beyond = np.flatnonzero(dist[first:] > dist[first] + length)
            if beyond.size == 0:
                continue
            last = first + int(beyond[0])
            err = np.linalg.inv(np.linalg.inv(P[first]) @ P[last]) @ (np.linalg.inv(Q[first]) @ Q[last])
            t_errs[float(length)].append(float(np.linalg.norm(err[:3, 3])) / length)
            cos = np.clip(0.5 * (np.trace(err[:3, :3]) - 1.0), -1.0, 1.0)
            r_errs.append(float(np.arccos(cos)) / length)
    all_t = [e for v in t_errs.values() for e in v]
    per_length = {length: (float(np.mean(v)) * 100.0 if v else float("nan"), len(v))
                  for length, v in t_errs.items()}
    if not all_t:
        return KittiResult(float("nan"), float("nan"), 0, per_length)
    return KittiResult(float(np.mean(all_t)) * 100.0, float(np.rad2deg(np.mean(r_errs))) * 100.0,
                       len(all_t), per_length)


def evaluate(gt: Trajectory, est: Trajectory, max_diff: float = 0.01, rpe_delta: float = 10.0,
             rpe_all_pairs: bool = True, rpe_pairs_from_reference: bool = True) -> dict:
    """Associate, then APE / RPE / KITTI drift as one JSON-friendly dict.

    When fewer than half of the estimate's poses have a ground-truth stamp within max_diff (a
    LiDAR with a column window or lost packets at the scan end stamps its pose at the last column
    that arrived, between the ground truth's scan-rate stamps), the ground truth is interpolated
    at the estimate's stamps instead (`reference_interpolated`: true in the result)."""
    ref, est_a, interpolated = match_to_reference(gt, est, max_diff)
    out: dict = {"n_matched": len(ref), "n_estimate": len(est), "reference_interpolated": interpolated,
                 "gt_distance_m": ref.path_length(), "est_distance_m": est_a.path_length(),
                 "duration_s": ref.duration()}
    try:
        out["ape_m"] = ape(ref, est_a).stats
    except ValueError as exc:  # fewer than 3 poses, or all on a line: alignment not unique
        out["ape_m"], out["ape_error"] = None, str(exc)
    r = rpe(ref, est_a, rpe_delta, rpe_all_pairs, rpe_pairs_from_reference)
    out["rpe"] = {"delta_m": rpe_delta, "n_pairs": len(r.pairs), "m": r.stats_m, "pct": r.stats_pct}
    k = kitti_drift(ref, est_a)
    out["kitti"] = {k_: v for k_, v in asdict(k).items() if k_ != "per_length"}
    out["evo_equivalent"] = evo_commands(max_diff, rpe_delta, rpe_all_pairs, rpe_pairs_from_reference)
    return out


def evo_commands(max_diff: float = 0.01, delta: float = 10.0, all_pairs: bool = True,
                 pairs_from_reference: bool = True) -> dict[str, str]:
    """The evo command lines whose numbers `evaluate` reproduces."""
    rpe_cmd = (f"evo_rpe tum GT EST --t_max_diff {max_diff} --delta {delta:g} --delta_unit m"
               + (" --all_pairs" if all_pairs else "") + (" --pairs_from_reference" if pairs_from_reference
                                                          else "") + f"  (metres; % = m / {delta:g} * 100)")
    return {"ape": f"evo_ape tum GT EST --align --t_max_diff {max_diff}", "rpe": rpe_cmd}


def _check_pair(ref: Trajectory, est: Trajectory) -> None:
    if len(ref) != len(est):
        raise ValueError(f"trajectories must be associated (equal length), got {len(ref)} and {len(est)}")
