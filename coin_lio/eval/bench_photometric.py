"""COIN-LIO's photometric part measured: where geometry is degenerate (tunnel, field; smooth and
dynamic motion) coin_lio against its own geometric-only mode and the peers, and the ablations
(patch selection mode, line removal, brightness normalisation, number of patches), in one run.

  python -m coin_lio.eval.bench_photometric [--scenes tunnel_smooth,...] [--ablations] [--duration 20]

Sequences come from (and are cached in) the same place as `make bench-sim` (data/sim/).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from coin_lio.eval.odometry_api import register_odometry  # noqa: E402

# name -> dotted LioConfig overrides of coin_lio (defaults: the reference's)
ABLATIONS: dict[str, dict] = {
    "coin_lio": {},
    "coin_lio[select=gradient]": {"photometric.features.selection_mode": "gradient"},
    "coin_lio[select=random]": {"photometric.features.selection_mode": "random"},
    "coin_lio[no line removal]": {"photometric.filter.line_removal": False},
    "coin_lio[no brightness norm.]": {"photometric.filter.brightness_filter": False},
    "coin_lio[30 patches]": {"photometric.features.num_features": 30},
    "coin_lio[100 patches]": {"photometric.features.num_features": 100},
}
DEGENERATE = "tunnel_smooth,tunnel_dynamic,field_smooth,field_dynamic"


def main(argv: list[str] | None = None) -> int:
    from coin_lio.eval.bench_runner import run_sequence
    from coin_lio.eval.bench_sim import (available_methods, markdown_table, method_options,
                                         rows_from_summaries)
    from coin_lio.eval.sim_sequences import DEFAULT_DURATION_S, ensure_sequence, make_config, parse_sequences

    p = argparse.ArgumentParser(prog="bench_photometric", description=__doc__.split("\n\n")[0])
    p.add_argument("--scenes", default=DEGENERATE)
    p.add_argument("--duration", type=float, default=DEFAULT_DURATION_S)   # bench-sim's: shared sequences
    p.add_argument("--ablations", action="store_true", help="also every variant of ABLATIONS")
    p.add_argument("--peers", default="kiss_icp,rko_lio")
    p.add_argument("--data", type=Path, default=Path("data/sim"))
    p.add_argument("--out", type=Path, default=Path("out/bench_photometric"))
    args = p.parse_args(argv)
    variants = ABLATIONS if args.ablations else {"coin_lio": {}}
    for name in variants:
        if name != "coin_lio":
            register_odometry(name, "coin_lio.pipeline:make_odometry")
    usable, _ = available_methods()
    peers = [m for m in args.peers.split(",") if m and m in usable]
    methods = list(variants) + ["coin_lio_geometric"] + peers
    options = method_options(methods)
    for name, over in variants.items():
        options[name] = {**options.get(name, {}), **over}
    rows, t0 = [], time.perf_counter()
    for spec in parse_sequences(args.scenes):
        seq_dir, _ = ensure_sequence(spec, args.data, make_config(spec, args.duration))
        summaries = run_sequence(seq_dir, methods, args.out, options, threads=1, progress=False)
        rows += rows_from_summaries(summaries, args.out / seq_dir.name, seq_dir / "ground_truth.tum", 0.01)
    table = markdown_table(rows)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(table + "\n")
    (args.out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    print(table)
    print(f"[bench-photometric] {len(rows)} runs in {time.perf_counter() - t0:.0f} s; "
          f"table: {args.out / 'table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
