"""Simulated benchmark: every named scene as an Ouster 128x1024 @ 10 Hz sequence, every odometry on each.

    python -m coin_lio.eval.bench_sim [--scenes tunnel,field_dynamic,...] [--duration 20]
        [--methods kiss_icp,rko_lio] [--data data/sim] [--out out/bench_sim] [--threads 1]
        [--set kiss_icp.mapping.voxel_size=0.5] [--regenerate]            (make bench-sim)

Sequences (default): tunnel, field, corridor, urban, stairs with the smooth profile, plus tunnel and
field with the dynamic profile. A sequence name is SCENE or SCENE_PROFILE ("tunnel" = tunnel_smooth).
They are generated once into DATA/<scene>_<profile>/ (coin_lio.sim: bag, ground_truth.tum,
metadata.json, sequence.json) and reused while sequence.json's config equals the requested one and
the simulator's sources are unchanged (DATA/<name>/bench_sim_cache.json holds their hash).

Disk: a 128x1024 cloud is 6.3 MB (48-byte points), so a sequence takes 63 MB per second: the
default 20 s x 7 sequences is ~8.8 GB (60 s would be 26 GB). Choose --duration accordingly.

Methods: every name registered in coin_lio.eval.odometry_api.ODOMETRY_FACTORIES whose module (and,
for the peers, their package) imports, unless --methods names them. Peer settings are the ones a
fair user would pick (DEFAULT_OPTIONS, overridable with --set): the libraries' defaults, plus
rko_lio's initialization_phase (the sequences start with 1.5 s at rest). --threads 1 (default)
limits every method to one thread.

Outputs in OUT/: table.md (the markdown table, also printed), results.json / results.csv (one row
per sequence x method), and per sequence the bench runner's TUM files, timing CSVs, summary.json and
trajectories.png.
"""
from __future__ import annotations

import os

if __name__ == "__main__":  # before numpy loads (python -m); console scripts set it in main()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import csv
import importlib
import importlib.util
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from coin_lio.eval.sim_sequences import (DEFAULT_DURATION_S, DEFAULT_IMU, DEFAULT_SEQUENCES,  # noqa: F401
                                         EFFECTS, IMU_PRESETS, SeqSpec, cache_name, cache_status,
                                         ensure_sequence, make_config, parse_sequences, sequence_bytes, sim_source_hash)

log = logging.getLogger(__name__)

DEFAULT_DATA = Path("data/sim")
DEFAULT_OUT = Path("out/bench_sim")

# Packages a registered method needs beyond its adapter module (the adapters import them lazily).
METHOD_PACKAGES: dict[str, tuple[str, ...]] = {"kiss_icp": ("kiss_icp",), "rko_lio": ("rko_lio",)}

# What a fair user would set: the libraries' defaults, except that rko_lio is told the platform
# starts at rest (its initialization_phase estimates gravity and gyro bias from the IMU samples
# between the first two scans; the simulated sequences start with 1.5 s at rest).
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "kiss_icp": {},
    "rko_lio": {"initialization_phase": True},
}


def method_available(name: str) -> tuple[bool, str]:
    """(importable?, reason) for a registered odometry, without building it."""
    from coin_lio.eval.odometry_api import ODOMETRY_FACTORIES

    target = ODOMETRY_FACTORIES.get(name)
    if target is None:
        return False, "not registered"
    for pkg in METHOD_PACKAGES.get(name, ()):
        if importlib.util.find_spec(pkg) is None:
            return False, f"package '{pkg}' not installed"
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        try:
            mod = importlib.import_module(module)
        except Exception as exc:  # ImportError, or a module that is being written and breaks
            return False, f"{module}: {type(exc).__name__}: {exc}"
        if not hasattr(mod, attr):
            return False, f"{module} has no '{attr}'"
    return True, ""


def available_methods() -> tuple[list[str], dict[str, str]]:
    """(registered methods that import, {unavailable method: reason})."""
    from coin_lio.eval.odometry_api import ODOMETRY_FACTORIES

    ok, bad = [], {}
    for name in ODOMETRY_FACTORIES:
        good, why = method_available(name)
        if good:
            ok.append(name)
        else:
            bad[name] = why
    return ok, bad


def end_errors(seq_out: Path, gt_path: Path, method: str, max_diff: float) -> list[float] | None:
    """Position error (x, y, z, world axes) of the last matched pose of the origin-aligned estimate
    the runner wrote (OUT/<seq>/<method>.tum): the drift, e.g. along the tunnel axis (x)."""
    from coin_lio.eval.trajectory import match_to_reference, read_tum

    est_path = seq_out / f"{method}.tum"
    if not est_path.exists():
        return None
    try:
        ref, est, _ = match_to_reference(read_tum(gt_path), read_tum(est_path), max_diff)
    except ValueError:
        return None
    if not len(ref):
        return None
    return (est.positions[-1] - ref.positions[-1]).tolist()


def rows_from_summaries(summaries: dict[str, dict], seq_out: Path, gt_path: Path,
                        max_diff: float) -> list[dict]:
    rows = []
    for method, s in summaries.items():
        m, t = s.get("metrics"), s.get("timing", {})
        dist = m["gt_distance_m"] if m else None
        ape = m["ape_m"]["rmse"] if m and m.get("ape_m") else None
        rows.append({
            "sequence": s["sequence"], "method": method, "distance_m": dist, "ape_rmse_m": ape,
            "ape_pct_dist": 100.0 * ape / dist if ape is not None and dist else None,
            "rpe_delta_m": m["rpe"]["delta_m"] if m else None,
            "rpe_pct": m["rpe"]["pct"]["mean"] if m and m["rpe"]["n_pairs"] else None,
            "rpe_pairs": m["rpe"]["n_pairs"] if m else 0,
            "end_error_xyz_m": end_errors(seq_out, gt_path, method, max_diff) if m else None,
            "median_ms": t.get("median_ms"), "p95_ms": t.get("p95_ms"), "rtf": t.get("rtf"),
            "n_poses": s.get("n_poses", 0), "n_scans": t.get("n_scans", 0),
            "n_failed_scans": s.get("n_failed_scans", 0), "error": s.get("error", ""),
            "options": s.get("options", {})})
    return rows


def markdown_table(rows: list[dict]) -> str:
    from coin_lio.eval.bench_runner import format_cell as f

    delta = next((r["rpe_delta_m"] for r in rows if r.get("rpe_delta_m")), 10.0)
    lines = [f"| sequence | method | dist [m] | APE RMSE [m] | APE [% dist] | RPE {delta:g} m [%] | "
             "end error x / y / z [m] | ms/scan median / p95 | RTF | poses | note |",
             "|" + " --- |" * 11]
    for r in rows:
        end = r.get("end_error_xyz_m")
        end_s = " / ".join(f"{e:+.2f}" for e in end) if end else "-"
        note = r.get("error") or (f"{r['n_failed_scans']} scans failed" if r.get("n_failed_scans")
                                  else "")
        lines.append(
            f"| {r['sequence']} | {r['method']} | {f(r['distance_m'], '.1f')} | "
            f"{f(r['ape_rmse_m'], '.3f')} | {f(r['ape_pct_dist'], '.2f')} | {f(r['rpe_pct'], '.2f')} | "
            f"{end_s} | {f(r['median_ms'], '.1f')} / {f(r['p95_ms'], '.1f')} | {f(r['rtf'], '.1f')} | "
            f"{r['n_poses'] or 0}/{r['n_scans'] or 0} | {note} |")
    return "\n".join(lines)


def method_options(methods: Sequence[str], overrides: dict[str, dict] | None = None) -> dict[str, dict]:
    out = {m: dict(DEFAULT_OPTIONS.get(m, {})) for m in methods}
    for m, opts in (overrides or {}).items():
        out.setdefault(m, {}).update(opts)
    return out


def run_bench(specs: Sequence[SeqSpec], methods: Sequence[str], data_dir: Path, out_dir: Path,
              duration: float = DEFAULT_DURATION_S, rows: int = 128, cols: int = 1024,
              seed: int = 0, threads: int = 1, options: dict[str, dict] | None = None,
              regenerate: bool = False, rpe_delta: float = 10.0, max_diff: float = 0.01,
              progress: bool = True, interleave: bool = True) -> list[dict]:
    """Generate (or reuse) every sequence, run every method on each (interleaved: every event to
    every method in turn, see coin_lio.eval.method_feed), write OUT/table.md etc."""
    from coin_lio.eval.bench_runner import run_sequence
    from coin_lio.eval.sequence import load_sequence

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    configs = {s: make_config(s, duration, rows, cols, seed) for s in specs}
    todo = [s for s in specs
            if regenerate or not cache_status(data_dir / cache_name(s, configs[s]), configs[s])[0]]
    if todo:
        need = sum(sequence_bytes(configs[s]) for s in todo)
        data_dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(data_dir).free
        print(f"[bench-sim] {len(todo)} sequence(s) to generate, ~{need / 1e9:.1f} GB "
              f"({free / 1e9:.0f} GB free in {data_dir})")
        if need > free:
            raise OSError(f"not enough disk for the sequences: ~{need / 1e9:.1f} GB needed")
    opts = method_options(methods, options)
    imus = sorted({s.imu for s in specs})
    table: list[dict] = []
    t0 = time.perf_counter()
    out_dir.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        seq_dir, _ = ensure_sequence(spec, data_dir, configs[spec], regenerate, progress)
        info = load_sequence(seq_dir)
        summaries = run_sequence(seq_dir, methods, out_dir, opts, max_diff=max_diff,
                                 rpe_delta=rpe_delta, threads=threads, progress=progress,
                                 interleave=interleave)
        table += rows_from_summaries(summaries, out_dir / info.name, info.ground_truth, max_diff)
        _write_outputs(out_dir, table, methods, opts, duration, threads, rows, cols, imus)
    md = _write_outputs(out_dir, table, methods, opts, duration, threads, rows, cols, imus)
    print(md)
    print(f"[bench-sim] {len(specs)} sequence(s) x {len(methods)} method(s) in "
          f"{time.perf_counter() - t0:.0f} s; table: {out_dir / 'table.md'}")
    return table


def _write_outputs(out_dir: Path, rows: list[dict], methods: Sequence[str], opts: dict,
                   duration: float, threads: int, n_rows: int, n_cols: int,
                   imus: Sequence[str] = ("sim",)) -> str:
    """table.md (with the settings), results.json, results.csv; returns the table."""
    md = markdown_table(rows)
    settings = [f"- sequences: coin_lio.sim, Ouster {n_rows}x{n_cols} @ 10 Hz, IMU 100 Hz "
                f"({'/'.join(imus)} noise), "
                f"{duration:g} s each; APE after SE(3) alignment, RPE over 10 m segments (evo "
                "conventions); end error = last pose of the origin-aligned estimate minus GT "
                "(world axes; the tunnel's axis is x)",
                f"- threads per method: {threads or 'library default'}; ms/scan = wall time of the "
                "method's scan call (bag decoding excluded); RTF = sequence time / processing time"]
    settings += [f"- {m}: {json.dumps(opts.get(m, {})) if opts.get(m) else 'library defaults'}"
                 for m in methods]
    (out_dir / "table.md").write_text("\n".join(["# bench-sim", "", *settings, "", md, ""]))
    (out_dir / "results.json").write_text(json.dumps(rows, indent=1, default=str) + "\n")
    cols = ["sequence", "method", "distance_m", "ape_rmse_m", "ape_pct_dist", "rpe_pct",
            "rpe_pairs", "end_error_xyz_m", "median_ms", "p95_ms", "rtf", "n_poses", "n_scans",
            "n_failed_scans", "error"]
    with (out_dir / "results.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({**r, "end_error_xyz_m": " ".join(f"{e:.4f}" for e in r["end_error_xyz_m"])
                        if r.get("end_error_xyz_m") else ""})
    return md


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from coin_lio.eval.bench_runner import _parse_sets

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--scenes", default="all",
                   help="comma-separated SCENE or SCENE_PROFILE (default: all = "
                        + ",".join(DEFAULT_SEQUENCES) + ")")
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S,
                   help="seconds per sequence (63 MB of bag per second at 128x1024)")
    p.add_argument("--methods", default="",
                   help="comma-separated odometry names (default: every registered one that imports)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="sequence cache directory")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    p.add_argument("--threads", type=int, default=1, help="threads per method (0: library default)")
    p.add_argument("--sequential", action="store_true",
                   help="one method after the other (default: every event to every method in turn, "
                        "so the timing ratios are measured in the same seconds)")
    p.add_argument("--rows", type=int, default=128, help="Ouster rows (16/32/64/128)")
    p.add_argument("--cols", type=int, default=1024, help="Ouster columns (512/1024/2048)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--imu", choices=IMU_PRESETS, default=DEFAULT_IMU,
                   help="IMU noise of the sequences (non-default: DATA/<name>_imu-<preset>)")
    p.add_argument("--effects", default="none",
                   help="comma-separated real-sensor effect variants, each run on every scene: "
                        + ", ".join(EFFECTS) + ", or single ones joined by + (knocks+movers; "
                        "coin_lio.eval.sim_sequences.sensor_effects; non-default: DATA/<name>+<variant>)")
    p.add_argument("--set", action="append", default=[], metavar="METHOD.OPTION=VALUE",
                   help="method option over DEFAULT_OPTIONS, value parsed as JSON (repeatable)")
    p.add_argument("--rpe-delta", type=float, default=10.0, help="RPE segment length [m]")
    p.add_argument("--regenerate", action="store_true", help="regenerate cached sequences")
    p.add_argument("--list", action="store_true", help="list sequences and methods, then exit")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        specs = parse_sequences(args.scenes, args.imu, args.effects)
    except ValueError as exc:
        p.error(str(exc))
    ok, bad = available_methods()
    if args.methods:
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        for m in methods:
            good, why = method_available(m)
            if not good:
                p.error(f"method '{m}' is unavailable: {why} (available: {ok})")
    else:
        methods = ok
    if args.list:
        print("sequences:", ", ".join(s.name for s in specs))
        print("methods:  ", ", ".join(methods))
        for m, why in bad.items():
            print(f"unavailable: {m} ({why})")
        return 0
    for m, why in bad.items():
        if not args.methods:
            print(f"[bench-sim] skipping {m}: {why}")
    if not methods:
        p.error("no method available")
    try:
        run_bench(specs, methods, args.data, args.out, args.duration, args.rows, args.cols,
                  args.seed, args.threads, _parse_sets(args.set), args.regenerate, args.rpe_delta,
                  progress=not args.no_progress, interleave=not args.sequential)
    except (OSError, ValueError) as exc:
        print(f"[bench-sim] error: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
