"""DAFT benchmark plumbing: rate selection on validation only, resumable runs, report + plot, and a
whole tiny benchmark (tiny backbone, 2 seeds, SHOT) end to end; export with the fp16 check."""
from __future__ import annotations

import json

import pytest

from learned_nodes.daft import bench, export, tune
from learned_nodes.daft.sweep import DAFT_HEAD_LR, DAFT_LR, FT_LR, LPFT_LR, select_rates

from daft_fixtures import FAST, make_image_folder


def test_select_rates_follows_the_reference_plan_on_validation_scores():
    calls = []
    peaks = {"ft": 3e-3, "lpft": 1e-5, "daft_fast_head_only": 1e-4, "daft_conversion_only": 3e-5}

    def fake(method, lrb, lrh):                  # val score peaks at one rate per method
        calls.append((method, lrb, lrh))
        if method == "daft":
            return 0.6 + 0.1 * (lrh == 0.3)
        return 0.5 + 0.2 * (lrb == peaks[method])

    sel = select_rates(fake)
    assert sel["ft"]["lr_backbone"] == sel["ft"]["lr_head"] == 3e-3 and not sel["ft"]["at_edge"]
    assert sel["lpft"]["lr_backbone"] == 1e-5
    # DAFT's backbone rate is the first stage's (= the fast-head-only ablation's) winner, an edge here
    assert (sel["daft_fast_head_only"]["lr_backbone"], sel["daft_fast_head_only"]["lr_head"]) == (1e-4, 1.0)
    assert sel["daft_fast_head_only"]["at_edge"] and sel["daft"]["backbone_at_edge"]
    assert (sel["daft"]["lr_backbone"], sel["daft"]["lr_head"]) == (1e-4, 0.3) and not sel["daft"]["at_edge"]
    assert sel["daft_conversion_only"]["lr_backbone"] == sel["daft_conversion_only"]["lr_head"] == 3e-5
    assert sel["lp"]["lr_backbone"] is None                          # the probe sweeps C itself
    by = {m: [(b, h) for mm, b, h in calls if mm == m] for m in peaks | {"daft": 0}}
    # grids from the top down, cut after 2 rates below the best so far
    assert by["ft"] == [(lr, lr) for lr in FT_LR[:7]] and by["lpft"] == [(lr, lr) for lr in LPFT_LR[:5]]
    assert by["daft_fast_head_only"] == [(lr, 1.0) for lr in DAFT_LR[:3]]
    assert by["daft"] == [(1e-4, h) for h in DAFT_HEAD_LR]
    assert by["daft_conversion_only"] == [(lr, lr) for lr in DAFT_LR]
    assert len(calls) == len(set(calls)) == 23 and "lp" not in {c[0] for c in calls}
    every = []
    select_rates(lambda m, b, h: every.append(m) or 0.5, patience=0)             # no cut: all 26
    assert len(every) == 26


def test_tiny_benchmark_end_to_end_and_resume(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    args = ["--backbone", "tiny", "--n-train", "64", "--epochs", "1", "--batch-size", "16",
            "--probe-cs", "3", "--image-size", "16", "--seeds", "0", "1", "--shot-epochs", "1",
            "--no-progress", "--threads", "1", "--out", str(tmp_path)]
    bench.main(args)
    runs = [json.loads(x) for x in (tmp_path / "runs.jsonl").read_text().splitlines()]
    stages = [r["stage"] for r in runs]
    assert stages.count("compare") == 12 and stages.count("shot") == 4 and stages.count("sweep") <= 26
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
