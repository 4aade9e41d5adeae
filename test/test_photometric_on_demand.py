"""photometric.on_demand: the photometric part runs where the geometry leaves a direction weak
(and linger_scans after), rests in well-conditioned scenes, and starts again when a weak
direction appears. Offline runner (the node's code path) on 4 s 32x512 sequences."""
import csv
import dataclasses

import numpy as np
import pytest

import coin_lio.pipeline as pipeline_module
from coin_lio.node_config import load_node_config
from coin_lio.offline_runner import resolve_inputs, run
from coin_lio.sim.lidar_model import OusterConfig
from coin_lio.sim.sequence import SequenceConfig, generate_sequence

LINGER = 5


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    root = tmp_path_factory.mktemp("on_demand")
    for scene in ("urban", "tunnel"):
        generate_sequence(SequenceConfig(scene=scene, duration=4.0, seed=0, ouster=OusterConfig(rows=32, cols=512)),
                          root / scene, progress=False)
    return root


def _rows(root, scene: str, out, on_demand: bool = True) -> tuple[list[int], dict]:
    bag, cfg, gt = resolve_inputs(root / scene, load_node_config(None), None)
    cfg.lio.photometric.on_demand, cfg.lio.photometric.linger_scans = on_demand, LINGER
    summary = run(bag, cfg, out, gt, progress=False)
    with open(out / "timing.csv") as f:
        return [int(r["photometric_rows"]) for r in csv.DictReader(f)], summary


def test_rests_where_geometry_is_strong_and_keeps_the_accuracy(sequences, tmp_path):
    rows, s = _rows(sequences, "urban", tmp_path / "on")
    assert any(rows[:LINGER]) and not any(rows[LINGER + 2:]), rows     # on at the start, then resting
    _, always = _rows(sequences, "urban", tmp_path / "always", on_demand=False)
    assert s["metrics"]["ape_m"]["rmse"] <= 1.2 * always["metrics"]["ape_m"]["rmse"] + 0.002


def test_runs_throughout_in_a_tunnel(sequences, tmp_path):
    rows, _ = _rows(sequences, "tunnel", tmp_path / "on")
    assert np.mean(np.array(rows[2:]) > 0) > 0.9, rows


def test_starts_again_when_a_direction_turns_weak(sequences, tmp_path, monkeypatch):
    calls = [0]
    analyse = pipeline_module.analyse

    def weak_from_scan_15(*args):                      # the geometry "degrades" at the 15th scan
        d = analyse(*args)
        calls[0] += 1
        return dataclasses.replace(d, weak=np.full(6, calls[0] >= 15)) if calls[0] >= 15 else d

    monkeypatch.setattr(pipeline_module, "analyse", weak_from_scan_15)
    rows, _ = _rows(sequences, "urban", tmp_path / "restart")
    assert not any(rows[LINGER + 2:14]) and all(r > 0 for r in rows[17:]), rows
