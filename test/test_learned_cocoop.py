"""CoCoOp / CoOp / zero-shot on tiny random checkpoints saved in the real formats and loaded
through the code that loads real ones (Hugging Face CLIP folder; aligned dual encoder folder)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.model_files.checkpoint import CheckpointError, load_tensors  # noqa: E402
from learned_nodes.cocoop.encoders import load_encoder  # noqa: E402
from learned_nodes.cocoop.inference import (PromptClassifier, build_model, default_config,  # noqa: E402
                                            load_prompt_learner, save_prompt_learner)
from learned_nodes.cocoop.model import PromptLearner, PromptLearnerConfig  # noqa: E402
from learned_nodes.cocoop.tiny_models import build_tiny_aligned, build_tiny_clip  # noqa: E402

NAMES = ["t-shirt", "ankle boot", "cat", "robot"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("clip") / "tiny_clip")


@pytest.fixture(scope="module")
def clip(clip_dir):
    return load_encoder(clip_dir)


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    return load_encoder(build_tiny_aligned(tmp_path_factory.mktemp("aligned") / "tiny_aligned"))


def _cocoop(encoder, seed=0):
    torch.manual_seed(seed)
    model = build_model(encoder, default_config(encoder, "cocoop"))
    for p in model.prompt_learner.meta_net.parameters():  # a Meta-Net far from zero
        torch.nn.init.normal_(p, std=0.3)
    return model


def _features(encoder, n=5, seed=0):
    rng = np.random.default_rng(seed)
    imgs = [rng.integers(0, 255, (40 + 3 * i, 50, 3), dtype=np.uint8) for i in range(n)]
    return encoder.encode_images(imgs)


def test_prompt_path_equals_hugging_face_text_features(clip, clip_dir):
    """Zero-shot = context "a photo of a" in the learner slots = HF get_text_features of the sentence."""
    from transformers import AutoTokenizer, CLIPModel

    hf, tok = CLIPModel.from_pretrained(str(clip_dir)), AutoTokenizer.from_pretrained(str(clip_dir))
    ids = tok([f"a photo of a {n}." for n in NAMES], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = hf.get_text_features(**ids)
        ref = torch.nn.functional.normalize(getattr(out, "pooler_output", out), dim=-1)
        ours = build_model(clip, default_config(clip, "zero-shot")).text_features(
            None, clip.text.class_prompts(NAMES, 4))[0]
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("which", ["clip", "aligned"])
def test_batched_equals_per_image_loop(which, clip, aligned):
    enc = {"clip": clip, "aligned": aligned}[which]
    model = _cocoop(enc)
    feats, prompts = _features(enc), enc.text.class_prompts(NAMES, 4)
    with torch.no_grad():
        batched, loop = model(feats, prompts), model.forward_loop(feats, prompts)
    assert batched.shape == (5, len(NAMES))
    torch.testing.assert_close(batched, loop, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1])  # the Meta-Net makes prompts image-specific


def test_meta_net_output_is_added_to_every_context_vector():
    cfg = PromptLearnerConfig(n_ctx=4, ctx_init="", d_ctx=8, d_img=32, meta_net=True)
    learner = PromptLearner(cfg)
    f = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    ctx = learner(f)                                                   # (B, M, d)
    pi = learner.meta_net(f)                                           # (B, d)
    assert ctx.shape == (3, 4, 8)
    torch.testing.assert_close(ctx - learner.ctx.unsqueeze(0), pi.unsqueeze(1).expand(3, 4, 8))
    assert learner.meta_net[0].out_features == 32 // 16


def test_coop_has_no_meta_net_and_one_context_for_all_images(clip):
    model = build_model(clip, default_config(clip, "coop"))
    assert model.prompt_learner.meta_net is None and model.cfg.method == "coop"
    feats = _features(clip, 3)
    with torch.no_grad():
        assert model.prompt_learner(feats).shape == (1, 4, clip.text.d_token)
        text = model.text_features(feats, clip.text.class_prompts(NAMES, 4))
    assert text.shape[0] == 1


def test_context_initialised_from_a_photo_of_a(clip):
    model = build_model(clip, default_config(clip, "cocoop"))
    torch.testing.assert_close(model.prompt_learner.ctx.data, clip.text.context_embeds("a photo of a", 4))


def test_training_lowers_the_loss_and_only_the_prompt_learner_changes(clip):
    from learned_nodes.cocoop.train import TrainConfig, train_prompt_learner

    feats = _features(clip, 8).unsqueeze(1)                            # (N, V=1, D)
    labels = np.arange(8) % 4
    frozen = {k: v.clone() for k, v in clip.state_dict().items()}
    model, hist = train_prompt_learner(clip, feats, labels, NAMES, TrainConfig(
        epochs=6, lr=0.05, warmup_epochs=0, batch_size=4, views=1, seed=0), progress=False)
    losses = [h["loss"] for h in hist if "loss" in h]
    assert losses[-1] < losses[0]
    assert all(torch.equal(frozen[k], v) for k, v in clip.state_dict().items())


def test_checkpoint_round_trip_gives_the_same_logits(clip, tmp_path):
    model = _cocoop(clip, seed=3)
    save_prompt_learner(model, tmp_path / "pl", {"note": "test"})
    loaded, info = load_prompt_learner(clip, tmp_path / "pl")
    feats, prompts = _features(clip), clip.text.class_prompts(NAMES, 4)
    with torch.no_grad():
        torch.testing.assert_close(loaded(feats, prompts), model(feats, prompts))
    assert info == {"note": "test"} and loaded.cfg.method == "cocoop"


def test_checkpoint_refuses_pickle_truncated_and_wrong_shape(clip, tmp_path):
    model = _cocoop(clip)
    folder = save_prompt_learner(model, tmp_path / "pl")
    weights = folder / "model.safetensors"
    good = weights.read_bytes()

    torch.save(model.prompt_learner.state_dict(), weights)             # a pickle under the right name
    with pytest.raises(CheckpointError, match="pickle"):
        load_prompt_learner(clip, folder)

    weights.write_bytes(good[: len(good) - 100])
    with pytest.raises(CheckpointError, match="truncated"):
        load_prompt_learner(clip, folder)

    from safetensors.torch import save_file

    state = {k: v.clone() for k, v in model.prompt_learner.state_dict().items()}
    state["ctx"] = torch.zeros(5, state["ctx"].shape[1])
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match=r"ctx: \(5, 32\) \(expected \(4, 32\)\)"):
        load_prompt_learner(clip, folder)
    state.pop("ctx")
    save_file(state, str(weights))
    with pytest.raises(CheckpointError, match="missing tensors"):
        load_tensors(weights, {k: tuple(v.shape) for k, v in model.prompt_learner.state_dict().items()})


def test_prompt_learner_for_another_encoder_width_is_refused(clip, aligned, tmp_path):
    folder = save_prompt_learner(_cocoop(clip), tmp_path / "pl")
    with pytest.raises(CheckpointError, match="d_ctx"):
        load_prompt_learner(aligned, folder)


def test_classifier_caches_class_lists_and_scores_per_call(clip_dir, tmp_path):
    clf = PromptClassifier.from_paths(clip_dir, cache_size=2)
    img = np.random.default_rng(1).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    top = clf.classify(img, NAMES, top_k=2)
    assert len(top) == 2 and top[0][1] >= top[1][1] and {n for n, _ in top} <= set(NAMES)
    scores, ms = clf.classify_many([img, img], [NAMES, NAMES[:2]])
    assert scores[0].probs.shape == (4,) and scores[1].probs.shape == (2,) and ms > 0
    np.testing.assert_allclose(scores[0].probs.sum(), 1.0, rtol=1e-5)
    clf.classify(img, ["dog", "bag"])
    assert len(clf._prompts) == 2  # bounded LRU


def test_importing_learned_nodes_does_not_import_torch():
    code = ("import sys, learned_nodes, learned_nodes.image_conversions, learned_nodes.server.validation, "
            "learned_nodes.server.batching, learned_nodes.cocoop; "
            "bad = [m for m in ('torch', 'transformers', 'rclpy') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
