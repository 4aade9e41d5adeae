"""coin-lio-run: the odometry over a bag, without a ROS graph, exactly as the node runs it.

    coin-lio-run BAG_OR_SEQUENCE_DIR --config config/coin_lio.yaml --out DIR [--gt GT.tum]

Writes DIR/trajectory.tum (the IMU body in the odometry frame, at each scan's end), timing.csv
(per-scan stage times, ms), degeneracy.jsonl (per-scan eigenvalues, weak directions, residual
counts), summary.json, and with ground truth (given, or a simulator sequence's) the APE/RPE
evaluation and trajectory.png. Messages are converted by the node's functions, scans wait for
the IMU by the node's rule (odometry_driver.ScanGate), and the sensor metadata comes, as in the
node, from lio.photometric.metadata_path or else from the bag's metadata_topic (/ouster/metadata).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402


from coin_lio.kernel_warmup import warm_up_once  # noqa: E402
from coin_lio.node_config import NodeConfig, load_node_config  # noqa: E402
from coin_lio.odometry_driver import OdometryDriver, ScanGate  # noqa: E402


def bag_metadata_topic(bag: Path, cfg: NodeConfig) -> str:
    """The topic the runner takes the sensor metadata from: cfg.metadata_topic when the config
    has no photometric.metadata_path and the bag holds that topic (as the node subscribes), else ''."""
    from suite_tools.bag_io import bag_topics

    if cfg.lio.photometric.metadata_path or not cfg.metadata_topic:
        return ""
    return cfg.metadata_topic if cfg.metadata_topic in bag_topics(bag) else ""


def iter_bag_events(bag: Path, cfg: NodeConfig, metadata_topic: str = ""):
    """('imu', ImuReading), ('scan', LidarScan), ('metadata', dict) in arrival order, converted
    exactly as the node converts its messages (coin_lio.ros_messages); bad messages come as
    (kind, reason) with the node's kinds: 'cloud_bad', 'imu_bad', 'metadata_bad'."""
    from coin_lio import ros_messages as rm
    from suite_tools.bag_io import read_bag

    convert = {cfg.imu_topic: ("imu", rm.imu_from_msg),
               cfg.points_topic: ("scan", lambda msg: rm.read_scan(msg, cfg.lio.preprocess))}
    if metadata_topic:
        convert[metadata_topic] = ("metadata", rm.metadata_from_msg)
    for m in read_bag(bag, list(convert)):
        kind, fn = convert[m.topic]
        try:
            yield kind, fn(m.decode())
        except (ValueError, TypeError) as exc:
            yield ("cloud" if kind == "scan" else kind) + "_bad", f"{m.topic} message dropped: {exc}"


def run(bag: Path, cfg: NodeConfig, out: Path, gt_path: Path | None = None,
        max_scans: int | None = None, progress: bool = True) -> dict:
    """Run the odometry over a bag; returns the summary written to out/summary.json."""
    from tqdm import tqdm

    from coin_lio.eval.trajectory import Trajectory, write_tum
    from suite_tools.bag_io import bag_topics

    warm_up_once()                      # compiled kernels ready: per-scan times without the compile
    out.mkdir(parents=True, exist_ok=True)
    meta_topic = bag_metadata_topic(bag, cfg)
    driver = OdometryDriver(cfg.lio, cfg.time_jump_reset,
                            metadata_source=f"the bag's {meta_topic}" if meta_topic else "")
    n_total = bag_topics(bag).get(cfg.points_topic, ("", 0))[1]
    stamps, poses, timing_rows, events = [], [], [], []
    # scans wait for the IMU to cover them, as in the node (no wall-clock bound)
    gate = ScanGate(imu_time_offset=cfg.lio.imu.time_offset)
    bar = tqdm(total=min(n_total, max_scans or n_total), unit="scan", disable=not progress, desc="coin-lio-run")
    degen_file = open(out / "degeneracy.jsonl", "w")
    t_wall = time.perf_counter()

    n_done = [0]   # scans handed to the driver (a disabled tqdm does not count)

    def process(scan) -> None:
        n_done[0] += 1
        t0 = time.perf_counter()
        res = driver.process(scan)
        wall_ms = (time.perf_counter() - t0) * 1e3
        gate.imu_time_offset = driver.time_offset     # moved by the online estimate
        events.extend(driver.drain_events())
        bar.update(1)
        if res is None or res.T_world_lidar is None:
            return
        stamps.append(res.t_end)
        poses.append(res.state.imu_pose())
        timing_rows.append({"t": res.t_end, "status": res.status, "wall_ms": wall_ms,
                            "points": res.num_points, "residuals": res.num_residuals,
                            "iterations": res.iterations, "photometric_rows": res.num_photometric,
                            "patches_tracked": res.num_tracked_patches, "patches_new": res.num_new_patches,
                            "in_free_space": res.in_free_space, "stationary": int(res.stationary),
                            **{f"{k}_ms": v for k, v in res.timings_ms.items()}})
        d = res.degeneracy
        degen_file.write(json.dumps({
            "t": res.t_end, "status": res.status, "num_residuals": res.num_residuals,
            "num_photometric": res.num_photometric, "num_tracked_patches": res.num_tracked_patches,
            "num_new_patches": res.num_new_patches,
            "eigenvalues": None if d is None else d.eigenvalues.tolist(),
            "weak": None if d is None else d.weak.tolist(),
            "weak_translation": None if d is None else d.weak_translation.tolist(),
            "normal_strength": None if d is None else d.normal_strength.tolist()}) + "\n")

    for kind, item in iter_bag_events(bag, cfg, meta_topic):
        if kind == "imu":
            driver.add_imu(item)
            gate.add_imu(item.t)
        elif kind == "scan":
            gate.add_scan(item)
        elif kind == "metadata":
            driver.set_metadata(item)
        else:
            events.append((kind, item))
        while (not max_scans or n_done[0] < max_scans) and (scan := gate.pop_ready()) is not None:
            process(scan)
        if max_scans and n_done[0] >= max_scans:
            break
    # the bag ended: no more IMU will come; extrapolate as the node does after imu_wait
    while (not max_scans or n_done[0] < max_scans) and (scan := gate.pop_ready(flush=True)) is not None:
        process(scan)
    bar.close()
    degen_file.close()
    wall = time.perf_counter() - t_wall
    traj = Trajectory.from_poses(stamps, np.reshape(poses, (-1, 4, 4)), name="coin_lio")
    write_tum(out / "trajectory.tum", traj)
    _write_csv(out / "timing.csv", timing_rows)
    walls = np.array([r["wall_ms"] for r in timing_rows]) if timing_rows else np.zeros(1)
    stages = {k[:-3]: float(np.median([r.get(k, 0.0) for r in timing_rows]))
              for k in (timing_rows[-1] if timing_rows else {}) if k.endswith("_ms") and k != "wall_ms"}
    summary = {"bag": str(bag), "scans": len(timing_rows), "counts": dict(driver.counts),
               "per_scan_ms": {"median": float(np.median(walls)), "p95": float(np.percentile(walls, 95)),
                               "max": float(walls.max())},
               "stage_median_ms": stages, "wall_s": wall,
               "imu_time_offset_s": driver.time_offset,      # imu.time_offset + the online estimate
               "events": _count_events(events)}
    if gt_path is not None and gt_path.exists() and len(traj.timestamps) >= 3:
        from coin_lio.eval.metrics import evaluate
        from coin_lio.eval.plot import plot_trajectories
        from coin_lio.eval.trajectory import read_tum

        gt = read_tum(gt_path)
        summary["metrics"] = evaluate(gt, traj)
        plot_trajectories(gt, {"coin_lio": traj}, out / "trajectory.png", title=bag.parent.name)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float))
    return summary


def _count_events(events: list[tuple[str, str]]) -> dict:
    out: dict = {}
    for kind, msg in events:
        entry = out.setdefault(kind, {"count": 0, "first": msg})
        entry["count"] += 1
    return out


def _write_csv(path: Path, rows: list[dict]) -> None:
    keys = sorted({k for r in rows for k in r}, key=lambda k: (k != "t", k))
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def resolve_inputs(path: Path, cfg: NodeConfig, gt: Path | None) -> tuple[Path, NodeConfig, Path | None]:
    """A simulator sequence directory brings its bag, topics, extrinsic and ground truth."""
    if (path / "sequence.json").exists():
        seq = json.loads((path / "sequence.json").read_text())
        from coin_lio.config import ExtrinsicConfig

        cfg.points_topic = seq.get("topics", {}).get("points", cfg.points_topic)
        cfg.imu_topic = seq.get("topics", {}).get("imu", cfg.imu_topic)
        T = seq.get("extrinsics", {}).get("T_imu_cloud")
        if T is not None:
            cfg.lio.extrinsic = ExtrinsicConfig.from_matrix(np.asarray(T, float), cfg.lio.extrinsic.source)
        gt = gt or path / seq.get("files", {}).get("ground_truth", "ground_truth.tum")
        meta = path / seq.get("files", {}).get("metadata", "metadata.json")
        if not cfg.lio.photometric.metadata_path and meta.exists():
            cfg.lio.photometric.metadata_path = str(meta)
        return path / seq.get("files", {}).get("bag", "bag"), cfg, gt
    return path, cfg, gt


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="coin-lio-run", description=__doc__.split("\n")[0])
    p.add_argument("input", type=Path, help="bag (MCAP/sqlite3) or a simulator sequence directory")
    p.add_argument("--config", type=Path, default=None, help="params YAML (config/coin_lio.yaml)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--gt", type=Path, default=None, help="ground truth TUM (body = IMU frame)")
    p.add_argument("--max-scans", type=int, default=None)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    try:
        cfg = load_node_config(args.config)
    except (ValueError, OSError) as exc:
        print(f"coin-lio-run: bad config: {exc}", file=sys.stderr)
        return 2
    if not args.input.exists():
        print(f"coin-lio-run: {args.input} does not exist", file=sys.stderr)
        return 2
    bag, cfg, gt = resolve_inputs(args.input, cfg, args.gt)
    s = run(bag, cfg, args.out, gt, args.max_scans, progress=not args.quiet)
    ms = s["per_scan_ms"]
    print(f"scans {s['scans']}  per scan median {ms['median']:.1f} ms  p95 {ms['p95']:.1f} ms  "
          f"max {ms['max']:.1f} ms")
    print("stage medians (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in s["stage_median_ms"].items()))
    if "metrics" in s:
        m = s["metrics"]
        ape = (m.get("ape_m") or {}).get("rmse", float("nan"))
        print(f"APE {ape:.3f} m  RPE(10 m) {m['rpe']['pct']['mean']:.2f} %  over {m['gt_distance_m']:.1f} m")
    for kind, e in s["events"].items():
        print(f"event {kind}: {e['count']}x, first: {e['first']}")
    if s["imu_time_offset_s"] != cfg.lio.imu.time_offset:
        print(f"IMU clock offset at the end: {1e3 * s['imu_time_offset_s']:+.1f} ms (lio.imu.time_offset "
              f"{1e3 * cfg.lio.imu.time_offset:+.1f} ms + the online estimate)")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
