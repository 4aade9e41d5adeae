"""bench_seeds: the seed sweep's summary on hand-built rows (means, worst, the 2x count against
each seed's own clean run), its seed parsing, and one tiny sweep of COIN-LIO (2 s, 32x512, two
seeds) with the sequences of seed 1 removed afterwards."""
from __future__ import annotations

import json
import math

import pytest

from coin_lio.eval import bench_seeds


def _row(seed, effect, ape, method="m", end=(0.3, 0.4, 0.0)):
    return {"seed": seed, "scene": "field_smooth", "effect": effect, "method": method, "ape_rmse_m": ape,
            "end_error_xyz_m": list(end)}


def test_summary_counts_seeds_within_twice_their_own_clean_run():
    rows = [_row(0, "none", 0.01), _row(1, "none", 0.04), _row(2, "none", 0.02),
            _row(0, "movers", 0.03), _row(1, "movers", 0.05), _row(2, "movers", 0.04)]
    by = {s["effect"]: s for s in bench_seeds.summarise(rows)}
    mov = by["movers"]
    assert mov["seeds"] == 3 and mov["n_ratios"] == 3
    assert mov["within_2x"] == 2                      # 3.0x, 1.25x, 2.0x (2x counts as within)
    assert math.isclose(mov["ratio_median"], 2.0) and math.isclose(mov["ape_worst"], 0.05)
    assert math.isclose(mov["ape_mean"], 0.04) and math.isclose(mov["end_error_mean"], 0.5)
    assert by["none"]["within_2x"] == 3 and math.isclose(by["none"]["ratio_median"], 1.0)
    md = bench_seeds.summary_markdown(bench_seeds.summarise(rows))
    assert "| field_smooth | movers | m | 3 | 0.040 / 0.040 / 0.050 | 0.50 | 2 of 3 | 2.00x |" in md


def test_seed_lists_and_ranges():
    assert bench_seeds.parse_seeds("0-3") == [0, 1, 2, 3]
    assert bench_seeds.parse_seeds("5, 1,1-2") == [1, 2, 5]
    for bad in ("", "3-1", "-1"):
        with pytest.raises(ValueError):
            bench_seeds.parse_seeds(bad)


def test_sweep_without_a_clean_run_is_refused():
    with pytest.raises(SystemExit):
        bench_seeds.main(["--effects", "movers", "--seeds", "0"])


def test_tiny_sweep_of_coin_lio_over_two_seeds(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    summary = bench_seeds.run_seeds("tunnel", "none,movers", [0, 1], ["coin_lio"], data, out, 2.0, 32, 512)
    assert [(s["effect"], s["seeds"], s["n_ratios"]) for s in summary] == [("none", 2, 2), ("movers", 2, 2)]
    assert all(math.isfinite(s["ape_mean"]) and s["ape_worst"] < 1.0 for s in summary)
    rows = json.loads((out / "seeds.json").read_text())
    assert sorted((r["seed"], r["effect"]) for r in rows) == [(0, "movers"), (0, "none"), (1, "movers"), (1, "none")]
    assert all(r["n_failed_scans"] == 0 for r in rows)
    kept = sorted(p.name for p in data.iterdir())
    assert kept == ["tunnel_smooth+movers_2s_32x512", "tunnel_smooth_2s_32x512"]   # seed 1's removed
    assert "| tunnel_smooth | movers | coin_lio | 2 |" in (out / "summary.md").read_text()
