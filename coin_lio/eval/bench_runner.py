"""Run odometries over simulated sequences, time them and score them against ground truth.

    python -m coin_lio.eval.bench_runner SEQ [SEQ ...] --methods kiss_icp,rko_lio --out DIR
        [--set kiss_icp.mapping.voxel_size=0.5] [--set rko_lio.voxel_size=0.5] [--threads N]

Frames: a method returns T_odom_lidar at each scan's last point time. The runner writes
T_gtworld_gtbody = A @ T_odom_lidar @ T_lidar_gt, where T_lidar_gt comes from sequence.json and A
puts the estimate's first matched pose on the ground truth's (origin alignment, so the TUM file
lives in the GT frames). APE then applies its own SE(3) Umeyama alignment (evo --align).
"""
from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads (python -m); console scripts set it in main()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from coin_lio.eval.metrics import evaluate
from coin_lio.eval.method_feed import run_methods
from coin_lio.eval.odometry_api import ODOMETRY_FACTORIES
from coin_lio.eval.sequence import load_sequence
from coin_lio.eval.trajectory import Trajectory, match_to_reference, read_tum, write_tum



def to_gt_frames(est_lidar: Trajectory, gt: Trajectory, T_lidar_gt: np.ndarray,
                 max_diff: float) -> tuple[Trajectory, np.ndarray]:
    """T_odom_lidar -> T_gtworld_gtbody (body change, then origin alignment at the first match)."""
    est_body = est_lidar.transformed(right=T_lidar_gt)
    ref, est, _ = match_to_reference(gt, est_body, max_diff)
    A = ref.poses()[0] @ np.linalg.inv(est.poses()[0])
    return est_body.transformed(left=A), A


def timing_stats(rows: list[dict], imu_s: float, duration_s: float) -> dict:
    """Per-scan wall time statistics; rtf = sequence duration / (all add_scan + add_imu time)."""
    wall = np.array([r["wall_ms"] for r in rows], float)
    total_s = wall.sum() * 1e-3 + imu_s
    return {"imu_s": imu_s, "n_scans": len(rows),
            "median_ms": float(np.median(wall)) if wall.size else None,
            "p95_ms": float(np.percentile(wall, 95)) if wall.size else None,
            "max_ms": float(wall.max()) if wall.size else None, "processing_s": total_s,
            "sequence_s": duration_s, "rtf": duration_s / total_s if total_s > 0 else None}


def run_sequence(seq_dir: str | Path, methods: Sequence[str], out_dir: str | Path | None = None,
                 options: dict[str, dict] | None = None, max_diff: float = 0.01,
                 rpe_delta: float = 10.0, threads: int = 0, progress: bool = True,
                 interleave: bool = True) -> dict[str, dict]:
    """Every method over one sequence; {method: summary}. Writes TUMs, timing CSVs, summary.json
    and trajectories.png under out_dir/<sequence name>/ when out_dir is given. interleave: every
    event to every method in turn (method_feed: per-scan times measured in the same seconds);
    False: one method after the other."""
    unknown = [m for m in methods if m not in ODOMETRY_FACTORIES]
    if unknown:
        raise KeyError(f"unknown odometry {unknown}, known: {sorted(ODOMETRY_FACTORIES)}")
    info = load_sequence(seq_dir)
    gt = read_tum(info.ground_truth, name="ground truth")
    out = Path(out_dir) / info.name if out_dir else None
    results: dict[str, dict] = {}
    estimates: dict[str, Trajectory] = {}
    runs = run_methods(info, methods, options, threads, progress) if interleave else {}
    for method in methods:
        summary: dict[str, Any] = {"sequence": info.name, "method": method, "notes": list(info.notes),
                                   "cloud_frame": info.cloud_frame, "gt_frame": info.gt_frame,
                                   "T_lidar_imu": info.T_lidar_imu.tolist(),
                                   "T_lidar_gt": info.T_lidar_gt.tolist(),
                                   "options": (options or {}).get(method, {})}
        run = runs[method] if interleave else run_methods(info, [method], options, threads, progress)[method]
        if isinstance(run, ImportError):
            summary["error"] = f"unavailable: {run}"
            results[method] = summary
            print(f"[{info.name}] {method}: {summary['error']}")
            continue
        rows, est_lidar = run.scans, run.trajectory
        summary["config"] = run.config
        duration = (rows[-1]["end"] - rows[0]["stamp"]) if rows else 0.0
        summary["timing"] = timing_stats(rows, run.imu_s, duration)
        summary["n_failed_scans"] = sum(1 for r in rows if r["error"])
        summary["n_poses"] = len(est_lidar)
        try:
            est, A = to_gt_frames(est_lidar, gt, info.T_lidar_gt, max_diff)
            summary["T_gtworld_odom"] = A.tolist()
            summary["metrics"] = evaluate(gt, est, max_diff, rpe_delta)
            estimates[method] = est
        except ValueError as exc:
            est, summary["error"] = None, f"no evaluation: {exc}"
        if out is not None:
            if est is not None:
                write_tum(out / f"{method}.tum", est, header=f"{method} on {info.name}, GT frames "
                          f"({info.gt_frame}), pose at each scan's last point")
            _write_timing_csv(out / f"{method}_timing.csv", rows)
        results[method] = summary
        print(format_summary(summary))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(json.dumps(_finite(results), indent=1, default=_json_default))
        from coin_lio.eval.plot import plot_trajectories

        plot_trajectories(gt, estimates, out / "trajectories.png", title=f"{info.name}: all methods vs GT",
                          max_diff=max_diff)
    return results


def format_summary(s: dict) -> str:
    head = f"[{s['sequence']}] {s['method']}:"
    if "metrics" not in s:
        return f"{head} {s.get('error', 'no result')}"
    m, t = s["metrics"], s["timing"]
    ape = m["ape_m"]["rmse"] if m["ape_m"] else float("nan")
    return (f"{head} APE {ape:.3f} m | RPE({m['rpe']['delta_m']:g} m) {m['rpe']['pct']['mean']:.2f} % "
            f"({m['rpe']['n_pairs']} pairs) | dist {m['gt_distance_m']:.1f} m | per scan median "
            f"{t['median_ms']:.1f} / p95 {t['p95_ms']:.1f} / max {t['max_ms']:.1f} ms | RTF "
            f"{t['rtf']:.1f}x | poses {s['n_poses']}/{t['n_scans']}, failed {s['n_failed_scans']}")


def run_table(seq_dirs: Sequence[str | Path], methods: Sequence[str], out_dir: str | Path | None = None,
              options: dict[str, dict] | None = None, **kwargs: Any) -> list[dict]:
    """One row per sequence x method (flat dict); prints them as a markdown table."""
    rows = []
    for seq in seq_dirs:
        for method, s in run_sequence(seq, methods, out_dir, options, **kwargs).items():
            m, t = s.get("metrics"), s.get("timing", {})
            rows.append({
                "sequence": s["sequence"], "method": method,
                "distance_m": m["gt_distance_m"] if m else None,
                "ape_rmse_m": m["ape_m"]["rmse"] if m and m["ape_m"] else None,
                "rpe_delta_m": m["rpe"]["delta_m"] if m else None,
                "rpe_pct": m["rpe"]["pct"]["mean"] if m else None,
                "kitti_pct": m["kitti"]["t_err_pct"] if m else None,
                "median_ms": t.get("median_ms"), "p95_ms": t.get("p95_ms"), "max_ms": t.get("max_ms"),
                "rtf": t.get("rtf"), "n_poses": s.get("n_poses"), "n_scans": t.get("n_scans"),
                "error": s.get("error", "")})
    print(markdown_table(rows))
    return rows


def format_cell(v: Any, spec: str) -> str:
    """A table cell: '-' for a missing or non-finite value."""
    return "-" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def markdown_table(rows: list[dict]) -> str:
    f = format_cell
    delta = next((r["rpe_delta_m"] for r in rows if r.get("rpe_delta_m")), 10.0)
    lines = [f"| sequence | method | dist [m] | APE RMSE [m] | RPE {delta:g} m [%] | KITTI [%] | "
             "ms/scan median / p95 / max | RTF | poses | note |", "|" + " --- |" * 10]
    for r in rows:
        lines.append(f"| {r['sequence']} | {r['method']} | {f(r['distance_m'], '.1f')} | "
                     f"{f(r['ape_rmse_m'], '.3f')} | {f(r['rpe_pct'], '.2f')} | {f(r['kitti_pct'], '.2f')} | "
                     f"{f(r['median_ms'], '.1f')} / {f(r['p95_ms'], '.1f')} / {f(r['max_ms'], '.1f')} | "
                     f"{f(r['rtf'], '.1f')} | {r['n_poses'] or 0}/{r['n_scans'] or 0} | {r['error']} |")
    return "\n".join(lines)


def _write_timing_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ["scan", "stamp", "end", "n_valid", "wall_ms", "pose", "error"]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "stamp": f"{r['stamp']:.9f}", "end": f"{r['end']:.9f}",
                        "wall_ms": f"{r['wall_ms']:.3f}"})


def _finite(o: Any) -> Any:
    """NaN/inf -> None, so summary.json is strict JSON."""
    if isinstance(o, dict):
        return {k: _finite(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_finite(v) for v in o]
    if isinstance(o, (float, np.floating)) and not np.isfinite(o):
        return None
    return o


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o)}")


def _parse_sets(items: Sequence[str]) -> dict[str, dict]:
    """['kiss_icp.mapping.voxel_size=0.5', ...] -> {'kiss_icp': {'mapping.voxel_size': 0.5}}."""
    out: dict[str, dict] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        method, dot, opt = key.partition(".")
        if not sep or not dot or not opt:
            raise SystemExit(f"--set expects METHOD.OPTION=VALUE, got '{item}'")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out.setdefault(method, {})[opt] = value
    return out


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sequences", nargs="+", help="sequence directories (bag/, ground_truth.tum, ...)")
    p.add_argument("--methods", default="kiss_icp,rko_lio", help="comma-separated odometry names")
    p.add_argument("--out", default=None, help="output directory (TUM, timing CSV, summary, plot)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="method option, value parsed as JSON when possible (repeatable)")
    p.add_argument("--t-max-diff", type=float, default=0.01, help="association tolerance [s] (evo)")
    p.add_argument("--rpe-delta", type=float, default=10.0, help="RPE segment length [m]")
    p.add_argument("--threads", type=int, default=0, help="threads per method (0: library default)")
    p.add_argument("--sequential", action="store_true",
                   help="one method after the other (default: every event to every method in turn)")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in ODOMETRY_FACTORIES]
    if unknown:
        p.error(f"unknown method(s) {unknown}; known: {sorted(ODOMETRY_FACTORIES)}")
    run_table(args.sequences, methods, args.out, _parse_sets(args.set), max_diff=args.t_max_diff,
              rpe_delta=args.rpe_delta, threads=args.threads, progress=not args.no_progress,
              interleave=not args.sequential)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
