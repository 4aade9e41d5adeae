"""DAFT benchmark plumbing: rate selection on validation only, resumable runs, report + plot, and a
whole tiny benchmark (tiny backbone, 2 seeds, SHOT) end to end; export with the fp16 check."""
from __future__ import annotations

import json

import pytest

from learned_nodes.daft import bench, export, tune
from learned_nodes.daft.sweep import LR_BACKBONE, PROBE_LR, select_rates

from daft_fixtures import FAST, make_image_folder


def test_select_rates_uses_the_validation_score_and_coordinate_search():
    calls = []

    def fake(method, lrb, lrh):                 # best: ft at 3e-3, lp at 1e-2, daft at (1e-3, 1.0)
        calls.append((method, lrb, lrh))
        if method == "daft":
            return 0.5 + (lrb == 1e-3) * 0.2 + (lrh == 1.0) * 0.1
        return 0.5 + (lrb == 3e-3) * 0.1 + (method == "lp" and lrh == 1e-2) * 0.2

    sel = select_rates(fake)
    assert sel["ft"]["lr_backbone"] == 3e-3 and sel["lp"]["lr_head"] == 1e-2
    assert (sel["lpft"]["lr_backbone"], sel["lpft"]["lr_head"]) == (3e-3, 1e-2)   # lp's probe lr
    assert (sel["daft"]["lr_backbone"], sel["daft"]["lr_head"]) == (1e-3, 1.0)
    assert sel["daft_conversion_only"]["lr_backbone"] == 3e-3 and sel["daft_conversion_only"]["from"] == "ft"
    assert (sel["daft_fast_head_only"]["lr_backbone"], sel["daft_fast_head_only"]["lr_head"]) == (1e-3, 1.0)
    daft_calls = [c for c in calls if c[0] == "daft"]
    # 3 backbone rates, 3e-4 beyond the winning edge 1e-3, 2 more head rates, 3.0 beyond 1.0
    assert sorted(daft_calls) == sorted([("daft", b, 0.3) for b in LR_BACKBONE] + [
        ("daft", 3e-4, 0.3), ("daft", 1e-3, 1.0), ("daft", 1e-3, 0.1), ("daft", 1e-3, 3.0)])
    assert len(calls) == len(set(calls))                                          # nothing twice
    assert {c[0] for c in calls} == {"lp", "ft", "lpft", "daft"}                 # no ablation sweeps
    assert [c[2] for c in calls if c[0] == "lp"] == list(PROBE_LR)               # middle wins: no extra


def test_tiny_benchmark_end_to_end_and_resume(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    args = ["--backbone", "tiny", "--n-train", "64", "--epochs", "1", "--batch-size", "16",
            "--probe-epochs", "1", "--image-size", "16", "--seeds", "0", "1", "--shot-epochs", "1",
            "--no-progress", "--threads", "1", "--out", str(tmp_path)]
    bench.main(args)
    runs = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    stages = [r["stage"] for r in runs]
    assert stages.count("compare") == 12 and stages.count("shot") == 4 and stages.count("sweep") >= 12
    assert all("ood_digits" not in r["metrics"] for r in runs if r["stage"] == "sweep")  # val only
    md = (tmp_path / "results.md").read_text()
    assert "| daft (n=2) |" in md and "SHOT" in md and (tmp_path / "results.png").stat().st_size > 5000
    res = json.loads((tmp_path / "results.json").read_text())
    assert set(res["summary"]) == set(bench.METHODS) and set(res["shot"]) == {"daft", "ft"}
    capsys.readouterr()
    bench.main(args + ["--stage", "report"])                                   # nothing reruns
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == len(runs)
    assert "[compare]" not in capsys.readouterr().out


def test_export_fp16_checks_the_accuracy(tmp_path):
    (tmp_path / "images").mkdir()
    folder = make_image_folder(tmp_path / "images")
    tune.main(["--backbone", "tiny", "--train", str(folder), "--method", "ft", "--out",
               str(tmp_path / "run"), *FAST])
    res = export.main(["--checkpoint", str(tmp_path / "run" / "checkpoint"), "--out",
                       str(tmp_path / "ship"), "--data", str(folder)])
    assert all(abs(d) <= 0.005 for d in res["deltas"].values())
    doc = json.loads((tmp_path / "ship" / "config.json").read_text())
    assert doc["config"]["dtype"] == "float16" and doc["info"]["exported"]["id"] == res["after"]["id"]
    with pytest.raises(ValueError, match="round trip"):
        export.export(tmp_path / "run" / "checkpoint", tmp_path / "never", max_drop=-1.0, data=folder)
    assert not (tmp_path / "never").exists()
