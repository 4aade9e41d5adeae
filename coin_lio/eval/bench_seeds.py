"""Seed sweep: the simulated benchmark over many seeds of the same scenes and effects, summarised.

    python -m coin_lio.eval.bench_seeds --scenes field --duration 10 --effects none,movers,realistic
        --seeds 0-17 --methods coin_lio [--set coin_lio.free_space.open_range_m=0]
        [--data data/sim] [--out out/bench_seeds] [--keep-sequences]                (make bench-seeds)

Why: on the flat field COIN-LIO's heading and travel rest on the photometric part, and one run
under people and cars moves by up to 2x with any change to what that part sees (docs/coin_lio.md,
"Moving objects"). A change is judged over seeds, not on the benchmark's seed 0. A seed draws a
new scene texture, trajectory noise, IMU noise and biases, and new movers.

Each seed is one bench_sim.run_bench call (the same sequences, cache, methods and --set options)
into OUT/seed<N>/. Per scene x effect x method the summary gives APE mean / median / worst over
the seeds and the mean end error (origin-aligned, where a heading error shows); per effect the
number of seeds whose APE is within 2x of the same seed and method's clean ("none") run, and the
median of those ratios. Sequences of seeds above 0 are deleted after their run unless
--keep-sequences (a 10 s 128x1024 sequence is ~0.6 GB; a rerun regenerates them, ~13 s each).

Outputs: OUT/seeds.json (every bench row with its seed, scene and effect), OUT/summary.md (printed).
"""
from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads (python -m)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from coin_lio.eval.sim_sequences import cache_name, make_config, parse_sequences

DEFAULT_OUT = Path("out/bench_seeds")


def parse_seeds(text: str) -> list[int]:
    """'0-17' or '0,3,5' or '2' -> sorted distinct seeds (>= 0)."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi) if hi else int(lo)
        if a < 0 or b < a:
            raise ValueError(f"bad seed range '{part}': want N or N-M with 0 <= N <= M")
        seeds.update(range(a, b + 1))
    if not seeds:
        raise ValueError("no seed given")
    return sorted(seeds)


def summarise(rows: list[dict]) -> list[dict]:
    """rows with 'seed', 'scene', 'effect', 'method', 'ape_rmse_m', 'end_error_xyz_m' -> one
    summary per (scene, effect, method), in first-seen order."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["scene"], r["effect"], r["method"]), []).append(r)
    clean = {(r["scene"], r["method"], r["seed"]): r["ape_rmse_m"] for r in rows if r["effect"] == "none"}
    out = []
    for (scene, effect, method), rs in groups.items():
        ape = np.array([r["ape_rmse_m"] for r in rs], dtype=float)
        end = np.array([np.linalg.norm(r["end_error_xyz_m"]) if r.get("end_error_xyz_m") else np.nan for r in rs])
        ratios = np.array([r["ape_rmse_m"] / clean[(scene, method, r["seed"])] for r in rs
                           if clean.get((scene, method, r["seed"]), 0) > 0])
        out.append({"scene": scene, "effect": effect, "method": method, "seeds": len(rs),
                    "ape_mean": float(np.mean(ape)), "ape_median": float(np.median(ape)),
                    "ape_worst": float(np.max(ape)), "end_error_mean": float(np.nanmean(end)),
                    "within_2x": int((ratios <= 2.0).sum()), "ratio_median":
                    float(np.median(ratios)) if len(ratios) else float("nan"), "n_ratios": len(ratios)})
    return out


def summary_markdown(summary: list[dict]) -> str:
    lines = ["| scene | effect | method | seeds | APE mean / median / worst m | end error mean m | "
             "within 2x of clean | x clean (median) |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for s in summary:
        two = "" if s["effect"] == "none" else f"{s['within_2x']} of {s['n_ratios']}"
        ratio = "" if s["effect"] == "none" else f"{s['ratio_median']:.2f}x"
        lines.append(f"| {s['scene']} | {s['effect']} | {s['method']} | {s['seeds']} | {s['ape_mean']:.3f} / "
                     f"{s['ape_median']:.3f} / {s['ape_worst']:.3f} | {s['end_error_mean']:.2f} | {two} | {ratio} |")
    return "\n".join(lines)


def run_seeds(scenes: str, effects: str, seeds: Sequence[int], methods: Sequence[str], data_dir: Path,
              out_dir: Path, duration: float, rows: int = 128, cols: int = 1024,
              options: dict[str, dict] | None = None, keep_sequences: bool = False,
              rpe_delta: float = 5.0) -> list[dict]:
    """Run bench_sim on every seed; returns the summary (also OUT/summary.md, OUT/seeds.json)."""
    from tqdm import tqdm

    from coin_lio.eval.bench_sim import run_bench

    specs = parse_sequences(scenes, effects=effects)
    out_dir.mkdir(parents=True, exist_ok=True)
    all_rows: list[dict] = []
    for seed in tqdm(seeds, desc="bench-seeds", unit="seed"):
        names = {cache_name(s, make_config(s, duration, rows, cols, seed)): s for s in specs}
        table = run_bench(specs, methods, data_dir, out_dir / f"seed{seed}", duration, rows, cols, seed,
                          options=options, rpe_delta=rpe_delta, progress=False)
        for r in table:
            spec = names[r["sequence"]]
            all_rows.append({**r, "seed": seed, "scene": f"{spec.scene}_{spec.profile}", "effect": spec.effects})
        if seed > 0 and not keep_sequences:
            for name in names:
                shutil.rmtree(data_dir / name, ignore_errors=True)
        (out_dir / "seeds.json").write_text(json.dumps(all_rows, indent=1, default=str) + "\n")
    summary = summarise(all_rows)
    md = summary_markdown(summary)
    (out_dir / "summary.md").write_text(md + "\n")
    print(md)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from coin_lio.eval.bench_runner import _parse_sets
    from coin_lio.eval.bench_sim import DEFAULT_DATA

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scenes", default="field", help="as bench_sim --scenes")
    p.add_argument("--effects", default="none,movers,realistic", help="as bench_sim --effects; include none")
    p.add_argument("--seeds", default="0-17", help="N-M or a comma list")
    p.add_argument("--methods", default="coin_lio", help="comma-separated odometry names")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per sequence")
    p.add_argument("--rows", type=int, default=128)
    p.add_argument("--cols", type=int, default=1024)
    p.add_argument("--set", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="method option, as bench_sim --set (repeatable)")
    p.add_argument("--rpe-delta", type=float, default=5.0, help="RPE segment length [m]")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="sequence cache directory")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--keep-sequences", action="store_true", help="keep the sequences of seeds above 0")
    args = p.parse_args(argv)
    try:
        seeds = parse_seeds(args.seeds)
        if "none" not in [e.strip() for e in args.effects.split(",")]:
            raise ValueError("--effects must include none: the ratios are taken against each seed's clean run")
    except ValueError as exc:
        p.error(str(exc))
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        run_seeds(args.scenes, args.effects, seeds, methods, args.data, args.out, args.duration, args.rows,
                  args.cols, _parse_sets(args.set), args.keep_sequences, args.rpe_delta)
    except (OSError, ValueError) as exc:
        print(f"[bench-seeds] error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
