"""Benchmarks of the coin_lio pipeline itself (peers side by side: coin_lio.eval.bench_sim).

  python -m coin_lio.eval.bench_lio stages SEQ_DIR [SEQ_DIR ...]   per-stage time breakdown
  python -m coin_lio.eval.bench_lio memory --minutes 10            RSS over a long run

`stages` runs the offline runner (the node's code path) and prints, per sequence, the median
time of each stage and the real-time factor. `memory` simulates a long drive in-process (no
bag: a 10-minute 128-beam bag would be 36 GB), feeds every scan to the odometry and samples the
process RSS; the figure of merit is the growth after warm-up.
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

STAGES = ["preprocess", "propagate", "deskew", "downsample", "image", "nearest_neighbours", "photometric",
          "update", "map", "patch_selection", "free_space", "total"]


def stages(seq_dirs: list[Path], config: Path | None, out: Path) -> list[dict]:
    from coin_lio.node_config import load_node_config
    from coin_lio.offline_runner import resolve_inputs, run

    rows = []
    for seq in seq_dirs:
        bag, cfg, gt = resolve_inputs(seq, load_node_config(config), None)
        s = run(bag, cfg, out / seq.name, gt, progress=True)
        duration = s["scans"] * 0.1
        rows.append({"sequence": seq.name, **{k: s["stage_median_ms"].get(k, float("nan")) for k in STAGES},
                     "p95": s["per_scan_ms"]["p95"], "rtf": duration / max(s["wall_s"], 1e-9),
                     "ape": ((s.get("metrics") or {}).get("ape_m") or {}).get("rmse", float("nan"))})
    head = "| sequence | " + " | ".join(STAGES) + " | p95 | RTF (incl. decode) | APE m |"
    lines = [head, "|" + "---|" * (len(STAGES) + 4)]
    for r in rows:
        lines.append(f"| {r['sequence']} | " + " | ".join(f"{r[k]:.1f}" for k in STAGES)
                     + f" | {r['p95']:.1f} | {r['rtf']:.1f}x | {r['ape']:.3f} |")
    table = "\n".join(lines)
    print("\nmedian ms per stage and scan (one core; image, photometric, patch_selection, free_space: "
          "COIN-LIO's part):\n" + table)
    out.mkdir(parents=True, exist_ok=True)
    (out / "stages.md").write_text(table + "\n")
    return rows


def memory(minutes: float, rows: int, cols: int, scene: str, out: Path, sample_every: int = 50) -> dict:
    """RSS (MB) over a long simulated run; returns growth after the first 20 % of scans."""
    import psutil
    from tqdm import tqdm

    from coin_lio.config import ExtrinsicConfig, LioConfig
    from coin_lio.io.scan import scan_from_cloud
    from coin_lio.odometry_driver import ImuReading, OdometryDriver
    from coin_lio.sim.imu import simulate_imu
    from coin_lio.sim.lidar_model import OusterConfig
    from coin_lio.sim.sequence import SequenceConfig, build

    cfg = SequenceConfig(scene=scene, duration=minutes * 60.0, ouster=OusterConfig(rows=rows, cols=cols))
    spec, traj, sim, frames = build(cfg)
    n_scans = int(cfg.duration * 10)
    imu = simulate_imu(traj, cfg.duration + 0.2, cfg.imu, seed=cfg.seed)
    lio = LioConfig(extrinsic=ExtrinsicConfig.from_matrix(frames["T_body"]["cloud"]))
    driver = OdometryDriver(lio)
    proc = psutil.Process()
    samples, i_imu, period = [], 0, sim.period_ns * 1e-9
    t_wall = time.perf_counter()
    for k in tqdm(range(n_scans), unit="scan", desc=f"memory {scene} {minutes:.0f} min"):
        t0 = k * period
        cloud = sim.scan(spec.scene, traj, t0, rng=np.random.default_rng([0, k]))
        while i_imu < len(imu.t) and imu.t[i_imu] <= t0 + period:
            driver.add_imu(ImuReading(float(imu.t[i_imu]), imu.gyro[i_imu], imu.acc[i_imu]))
            i_imu += 1
        driver.process(scan_from_cloud(cloud, int(round(t0 * 1e9))))
        driver.drain_events()
        if k % sample_every == 0:
            samples.append((k * period, proc.memory_info().rss / 2**20, len(driver.pipeline.map)))
    s = np.array(samples)
    warm = s[s[:, 0] >= 0.2 * s[-1, 0]]
    growth = (warm[-1, 1] - warm[0, 1]) / warm[0, 1] * 100
    out.mkdir(parents=True, exist_ok=True)
    np.savetxt(out / "memory.csv", s, delimiter=",", header="t_s,rss_mb,map_points", comments="")
    _plot_memory(s, out / "memory.png", f"{scene}, {rows}x{cols}, {minutes:.0f} min")
    res = {"scans": n_scans, "rss_start_mb": float(warm[0, 1]), "rss_end_mb": float(warm[-1, 1]),
           "rss_max_mb": float(s[:, 1].max()), "growth_after_warmup_pct": float(growth),
           "map_points_max": int(s[:, 2].max()), "wall_s": time.perf_counter() - t_wall}
    print(f"memory: RSS {res['rss_start_mb']:.0f} MB after warm-up -> {res['rss_end_mb']:.0f} MB at "
          f"{minutes:.0f} min ({growth:+.1f} %), map at most {res['map_points_max']} points")
    return res


def _plot_memory(s: np.ndarray, path: Path, title: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    ax.plot(s[:, 0] / 60, s[:, 1], label="RSS (MB)")
    ax2 = ax.twinx()
    ax2.plot(s[:, 0] / 60, s[:, 2] / 1000, color="tab:orange", label="map points (k)")
    ax.set_xlabel("sequence time (min)")
    ax.set_ylabel("RSS (MB)")
    ax2.set_ylabel("map points (thousands)")
    ax.set_title(f"coin_lio memory: {title}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_lio", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stages")
    s.add_argument("sequences", nargs="+", type=Path)
    s.add_argument("--config", type=Path, default=None)
    s.add_argument("--out", type=Path, default=Path("out/bench_lio"))
    m = sub.add_parser("memory")
    m.add_argument("--minutes", type=float, default=10.0)
    m.add_argument("--rows", type=int, default=32)
    m.add_argument("--cols", type=int, default=1024)
    m.add_argument("--scene", default="urban")
    m.add_argument("--out", type=Path, default=Path("out/bench_lio"))
    args = p.parse_args(argv)
    if args.cmd == "stages":
        stages(args.sequences, args.config, args.out)
    else:
        memory(args.minutes, args.rows, args.cols, args.scene, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
