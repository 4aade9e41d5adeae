"""bench_sim on a tiny sequence (2 s, 32x512): generation into the cache and its reuse, method
discovery from ODOMETRY_FACTORIES, the table and the files it writes."""
from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from coin_lio.eval import bench_sim
from coin_lio.eval.odometry_api import ODOMETRY_FACTORIES

SMALL = ["--duration", "2", "--rows", "32", "--cols", "512", "--no-progress"]


class StillOdometry:
    """Never moves: a registered method bench_sim must pick up without being told."""

    name = "still"

    def __init__(self, setup, **options):
        self.options = options

    def add_imu(self, t_s, gyro, acc):
        return None

    def add_scan(self, t_s, points, point_times):
        return np.eye(4)


@pytest.fixture
def methods(monkeypatch):
    monkeypatch.setitem(ODOMETRY_FACTORIES, "still", StillOdometry)
    monkeypatch.setitem(ODOMETRY_FACTORIES, "broken", "no_such_module_here:Factory")
    monkeypatch.setitem(bench_sim.DEFAULT_OPTIONS, "still", {"answer": 42})


def test_sequence_names():
    names = [s.name for s in bench_sim.parse_sequences("all")]
    assert names == list(bench_sim.DEFAULT_SEQUENCES)
    assert [s.name for s in bench_sim.parse_sequences("tunnel, field_dynamic,urban:smooth,tunnel")] \
        == ["tunnel_smooth", "field_dynamic", "urban_smooth"]
    with pytest.raises(ValueError, match="unknown scene"):
        bench_sim.parse_sequences("moon")


def test_effect_variants_name_and_configure_their_sequences():
    specs = bench_sim.parse_sequences("tunnel,urban", effects="none,window,realistic")
    assert [s.name for s in specs] == ["tunnel_smooth", "tunnel_smooth+window", "tunnel_smooth+realistic",
                                       "urban_smooth", "urban_smooth+window", "urban_smooth+realistic"]
    cfg = bench_sim.make_config(specs[1], 2.0, 32, 512)
    assert cfg.effects.column_window == (128, 383) and cfg.effects.enabled() == ["column_window"]
    assert bench_sim.make_config(specs[0], 2.0, 32, 512).effects.enabled() == []
    assert len(bench_sim.make_config(specs[2], 2.0, 32, 512).effects.enabled()) == 7
    with pytest.raises(ValueError, match="unknown effects variant"):
        bench_sim.parse_sequences("tunnel", effects="rain")
    # combinations of single effects: realistic less one, to find which ones interact
    combo = bench_sim.parse_sequences("field", effects="knocks+offset")[0]
    assert combo.name == "field_smooth+knocks+offset"
    effects = bench_sim.make_config(combo, 2.0, 32, 512).effects
    assert sorted(effects.enabled()) == sorted(["imu_time_offset", "imu_saturation", "knocks"])
    for bad in ("knocks+rain", "realistic+movers", "knocks+"):
        with pytest.raises(ValueError, match="unknown effects variant"):
            bench_sim.parse_sequences("field", effects=bad)


def test_method_discovery(methods):
    ok, bad = bench_sim.available_methods()
    assert "still" in ok and "broken" in bad and "no_such_module_here" in bad["broken"]
    for peer in ("kiss_icp", "rko_lio"):
        assert (peer in ok) == (importlib.util.find_spec(peer) is not None)
    with pytest.raises(SystemExit):
        bench_sim.main(["--methods", "broken", "--list"])


def test_bench_on_a_tiny_sequence_and_the_cache(methods, tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "out"
    use = ["still"] + (["kiss_icp"] if importlib.util.find_spec("kiss_icp") else [])
    args = ["--scenes", "tunnel", "--data", str(data), "--out", str(out), *SMALL]
    assert bench_sim.main(args + ["--methods", ",".join(use)]) == 0
    first = capsys.readouterr().out
    name = "tunnel_smooth_2s_32x512"     # non-default settings name the cache directory
    assert f"{name}: generating 2 s" in first
    seq = data / name
    desc = json.loads((seq / "sequence.json").read_text())
    assert desc["n_scans"] == 20 and desc["config"]["ouster"]["rows"] == 32
    assert json.loads((seq / "bench_sim_cache.json").read_text())["sim_source_hash"] \
        == bench_sim.sim_source_hash()

    table = (out / "table.md").read_text()
    assert "| sequence | method | dist [m] | APE RMSE [m] | APE [% dist] |" in table
    assert '- still: {"answer": 42}' in table
    rows = json.loads((out / "results.json").read_text())
    assert [(r["sequence"], r["method"]) for r in rows] == [(name, m) for m in use]
    assert all(r["n_poses"] == r["n_scans"] == 20 for r in rows)
    assert rows[0]["options"] == {"answer": 42}
    assert (out / name / "trajectories.png").stat().st_size > 0
    assert (out / "results.csv").read_text().count("\n") == 1 + len(use)
    if "kiss_icp" in use:
        kiss = rows[1]
        assert np.isfinite(kiss["ape_rmse_m"]) and len(kiss["end_error_xyz_m"]) == 3
        assert kiss["median_ms"] > 0 and kiss["rtf"] > 0

    # reused while the config matches; regenerated when it does not
    bag_mtime = (seq / "bag").stat().st_mtime_ns
    assert bench_sim.main(args + ["--methods", "still"]) == 0
    assert f"{name}: cached" in capsys.readouterr().out
    assert (seq / "bag").stat().st_mtime_ns == bag_mtime
    # another length or seed is another directory: neither regenerates the other's sequence
    spec = bench_sim.SeqSpec("tunnel", "smooth")
    for dur, seed, want in [(2.5, 0, "tunnel_smooth_2.5s_32x512"), (2.0, 3, "tunnel_smooth_2s_seed3_32x512")]:
        assert bench_sim.cache_name(spec, bench_sim.make_config(spec, dur, 32, 512, seed)) == want
    assert bench_sim.cache_name(spec, bench_sim.make_config(spec, 20.0)) == "tunnel_smooth"
    cfg = bench_sim.make_config(bench_sim.SeqSpec("tunnel", "smooth"), 2.5, 32, 512)
    assert bench_sim.cache_status(seq, cfg) == (False, "config differs")
    stamp = seq / "bench_sim_cache.json"
    stamp.write_text(json.dumps({"sim_source_hash": "stale"}))
    cfg = bench_sim.make_config(bench_sim.SeqSpec("tunnel", "smooth"), 2.0, 32, 512)
    assert bench_sim.cache_status(seq, cfg) == (False, "simulator sources changed")
