"""Text pooling of the aligned encoder's MiniLM tower, the logit-scale options, the reference
schedules and the benchmark's validation split (tiny random checkpoints in the real formats)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.cocoop.bench import validation_indices  # noqa: E402
from learned_nodes.cocoop.bert_text import pool_mask  # noqa: E402
from learned_nodes.cocoop.encoders import load_encoder  # noqa: E402
from learned_nodes.cocoop.evaluate import shared_shift  # noqa: E402
from learned_nodes.cocoop.inference import (build_model, default_config, load_prompt_learner,  # noqa: E402
                                            save_prompt_learner)
from learned_nodes.cocoop.model import PromptLearnerConfig  # noqa: E402
from learned_nodes.cocoop.tiny_models import build_tiny_aligned  # noqa: E402
from learned_nodes.cocoop.train import (TrainConfig, reference_schedule, steps_per_epoch,  # noqa: E402
                                        train_prompt_learner)

NAMES = ["shirt", "boot", "bag", "dress"]


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("pooling")
    return {p: load_encoder(build_tiny_aligned(root / p, pooling=p)) for p in ("mean", "name", "eos", "causal")}


def test_pool_masks_select_the_right_tokens():
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1]])
    mean = pool_mask(mask, "mean", None)
    assert torch.allclose(mean[0, :6], torch.full((6,), 1 / 6)) and mean[0, 6:].abs().sum() == 0
    name = pool_mask(mask, "name", 3)
    assert name[:, :3].abs().sum() == 0 and torch.allclose(name[0, 3:6], torch.full((3,), 1 / 3))
    assert name[0, 6:].abs().sum() == 0 and torch.allclose(name[1, 3:], torch.full((5,), 1 / 5))
    for pooling in ("eos", "causal"):
        w = pool_mask(mask, pooling, None)
        assert w[0, 5] == 1 and w[1, 7] == 1 and w.sum() == 2
    with pytest.raises(ValueError):
        pool_mask(mask, "name", None)
    with pytest.raises(ValueError):
        pool_mask(mask, "max", None)


def test_mean_pooling_is_the_masked_mean_of_the_tower(encoders):
    text = encoders["mean"].text
    ids, mask = text._tokenize(["x x x x shirt.", "a photo of a bag."])
    emb = text.token_embedding()(ids)
    with torch.no_grad():
        h = text.bert(inputs_embeds=emb, attention_mask=mask).last_hidden_state
        m = mask.unsqueeze(-1).float()
        ref = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
        assert torch.allclose(text.sentence_embedding(emb, mask), ref, atol=1e-6)


def test_causal_mask_hides_later_tokens_only_in_causal_pooling(encoders):
    for pooling, causal in (("causal", True), ("eos", False)):
        text = encoders[pooling].text
        ids, mask = text._tokenize(["a photo of a shirt."])
        emb = text.token_embedding()(ids)
        later = emb.clone()
        later[:, -2] += torch.randn(emb.shape[-1], generator=torch.Generator().manual_seed(0))  # the "."
        with torch.no_grad():
            h, h2 = text.hidden_states(emb, mask), text.hidden_states(later, mask)
        unchanged = torch.allclose(h[:, :-2], h2[:, :-2], atol=1e-6)
        assert unchanged == causal, pooling
        assert not torch.allclose(h[:, -1], h2[:, -1], atol=1e-6)   # the pooled token sees it


@pytest.mark.parametrize("pooling", ["mean", "name", "eos", "causal"])
def test_every_pooling_gives_each_class_name_its_own_feature(encoders, pooling):
    enc = encoders[pooling]
    assert enc.text.pooling == pooling
    model = build_model(enc, default_config(enc, "cocoop"))
    with torch.no_grad():
        t = model.text_features(None, enc.text.class_prompts(NAMES, 4))[0]          # (C, D)
    assert t.shape == (len(NAMES), enc.embed_dim)
    assert torch.allclose(t.norm(dim=-1), torch.ones(len(NAMES)), atol=1e-5)
    dist = torch.cdist(t, t)[~torch.eye(len(NAMES), dtype=torch.bool)]   # random towers: EOS differs little
    assert dist.min() > 1e-3


def test_name_pooling_depends_on_where_the_name_starts(encoders):
    text = encoders["name"].text
    ids, mask = text._tokenize(["a photo of a shirt."])
    emb = text.token_embedding()(ids)
    with torch.no_grad():
        a, b = text(emb, mask, 5), text(emb, mask, 1)
    assert not torch.allclose(a, b, atol=1e-5)
    assert text.name_starts(["a photo of a ", ""]).tolist() == [5, 1]


def test_shared_shift_is_a_ratio_between_one_over_c_and_one(encoders):
    enc = encoders["name"]
    torch.manual_seed(0)
    model = build_model(enc, default_config(enc, "cocoop"))
    for p in model.prompt_learner.meta_net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    feats = torch.nn.functional.normalize(torch.randn(6, enc.embed_dim), dim=-1)
    r = shared_shift(model, enc, feats, NAMES)
    assert 1 / len(NAMES) - 1e-6 <= r <= 1 + 1e-6
    with pytest.raises(ValueError):
        shared_shift(build_model(enc, default_config(enc, "coop")), enc, feats, NAMES)


def test_logit_scale_fixed_and_learned(encoders, tmp_path):
    enc = encoders["mean"]
    assert build_model(enc, default_config(enc, "coop")).logit_scale == pytest.approx(enc.logit_scale)
    fixed = build_model(enc, default_config(enc, "coop", logit_scale=100.0))
    feats = torch.nn.functional.normalize(torch.randn(3, enc.embed_dim), dim=-1)
    prompts = enc.text.class_prompts(NAMES, 4)
    with torch.no_grad():
        cos = feats @ fixed.text_features(None, prompts)[0].t()
        assert torch.allclose(fixed(feats, prompts), 100.0 * cos, atol=1e-4)
    with pytest.raises(ValueError):
        PromptLearnerConfig(learn_logit_scale=True, logit_scale=0.0)
    with pytest.raises(ValueError):
        PromptLearnerConfig(logit_scale=150.0)
    rng = np.random.default_rng(0)
    x = torch.nn.functional.normalize(torch.randn(8, 2, enc.embed_dim), dim=-1)
    cfg = TrainConfig(method="coop", epochs=3, batch_size=4, lr=0.5, learn_logit_scale=True, views=2)
    model, hist = train_prompt_learner(enc, x, rng.integers(0, 4, 8), NAMES, cfg, progress=False)
    assert hist[0]["logit_scale"] != pytest.approx(enc.logit_scale, abs=1e-6) or \
        hist[-2]["logit_scale"] != pytest.approx(enc.logit_scale, abs=1e-6)
    save_prompt_learner(model, tmp_path / "pl")
    loaded, _ = load_prompt_learner(enc, tmp_path / "pl")
    with torch.no_grad():
        assert float(loaded.logit_scale) == pytest.approx(float(model.logit_scale))


def test_reference_schedules_and_their_scaling():
    cocoop, coop = reference_schedule("cocoop"), reference_schedule("coop")
    assert (cocoop.batch_size, cocoop.epochs, coop.batch_size, coop.epochs) == (1, 10, 32, 200)
    assert cocoop.lr == coop.lr == 0.002 and cocoop.n_ctx == coop.n_ctx == 4
    half = [reference_schedule(m, 0.5).epochs for m in ("cocoop", "coop")]
    assert half == [5, 100]
    assert reference_schedule("cocoop", 0.01).epochs == 2                   # warm-up + 1 at least
    for bad in (0.0, 1.5):
        with pytest.raises(ValueError):
            reference_schedule("coop", bad)
    with pytest.raises(ValueError):
        reference_schedule("clip")
    with pytest.raises(ValueError):
        TrainConfig(epochs=1, warmup_epochs=1)
    assert steps_per_epoch(coop, 80) == 2 and steps_per_epoch(TrainConfig(batch_size=32, drop_last=False), 80) == 3
    assert steps_per_epoch(coop, 20) == 1 and steps_per_epoch(cocoop, 80) == 80


def test_validation_split_avoids_every_training_shot():
    labels = np.repeat(np.arange(4), 30)
    shots = np.concatenate([np.flatnonzero(labels == c)[:10] for c in range(2)])
    val = validation_indices(labels, [0, 1], shots, per_class=15)
    assert len(val) == 30 and not set(val) & set(shots)
    assert set(labels[val]) == {0, 1}
