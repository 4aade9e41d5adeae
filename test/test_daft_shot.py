"""SHOT source-free adaptation on the tiny backbone: loss terms, clustering, frozen head, no labels."""
from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from learned_nodes.daft.backbones import TunedClassifier, build_backbone
from learned_nodes.daft.bn_conversion import bn_layers
from learned_nodes.daft.data import ood_halves
from learned_nodes.daft.shot import (ShotConfig, cluster_pseudo_labels, information_maximisation,
                                     shot_adapt, shot_loss)


def test_information_maximisation_terms():
    c = 5
    ent, div = information_maximisation(torch.zeros(8, c))                 # uniform predictions
    assert ent.item() == pytest.approx(math.log(c), abs=1e-4)
    assert div.item() == pytest.approx(math.log(c), abs=1e-4)
    same = torch.full((8, c), -50.0)
    same[:, 2] = 50.0                                                      # confident, all class 2
    ent, div = information_maximisation(same)
    assert ent.item() == pytest.approx(0.0, abs=1e-4) and div.item() == pytest.approx(0.0, abs=1e-4)
    diverse = torch.full((c, c), -50.0)
    diverse[range(c), range(c)] = 50.0                                     # confident and diverse
    ent, div = information_maximisation(diverse)
    assert ent.item() == pytest.approx(0.0, abs=1e-4)
    assert div.item() == pytest.approx(math.log(c), abs=1e-4)


def test_shot_loss_is_entropy_minus_diversity_plus_weighted_pseudo_ce():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 4, generator=g)
    pseudo = torch.randint(0, 4, (16,), generator=g)
    ent, div = information_maximisation(logits)
    expected = ent - div + 0.3 * F.cross_entropy(logits, pseudo)
    assert shot_loss(logits, pseudo, 0.3).item() == pytest.approx(expected.item(), rel=1e-6)
    assert shot_loss(logits, pseudo, 0.0).item() == pytest.approx((ent - div).item(), rel=1e-6)


def test_cluster_pseudo_labels_follow_the_feature_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [0, 0, 5.0]])
    truth = torch.arange(30) % 3
    feats = centres[truth] + 0.3 * torch.randn(30, 3, generator=g)
    probs = F.one_hot(truth, 4).float() * 0.7 + 0.075                     # 4 classes, class 3 unused
    probs[:4] = torch.tensor([0.1, 0.1, 0.1, 0.7])                          # some wrong soft votes
    labels = cluster_pseudo_labels(feats, probs)
    assert torch.equal(labels[4:], truth[4:])
    hard = cluster_pseudo_labels(feats, F.one_hot(truth, 4).float())
    assert torch.equal(hard, truth) and 3 not in hard.tolist()              # empty cluster never wins


def _model_and_target(seed=0):
    model = TunedClassifier(build_backbone("tiny", seed=seed), 4)
    g = torch.Generator().manual_seed(seed + 5)
    with torch.no_grad():
        model.head.weight.normal_(0, 1, generator=g)
    x = torch.randn(48, 3, 16, 16, generator=g) * 1.5 + 0.5                  # the "target domain"
    return model, x


def test_shot_adapts_the_backbone_only_and_never_sees_labels():
    assert list(inspect.signature(shot_adapt).parameters) == ["model", "target_x", "cfg"]
    model, x = _model_and_target()
    head = {k: v.clone() for k, v in model.head.state_dict().items()}
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    modes = []
    hooks = [m.register_forward_pre_hook(lambda m, i: modes.append(m.training))
             for _, m in bn_layers(model)]
    hist = shot_adapt(model, x, ShotConfig(epochs=2, batch_size=16, lr=0.05, progress=False))
    for h in hooks:
        h.remove()
    assert all(torch.equal(head[k], v) for k, v in model.head.state_dict().items())   # head frozen
    after = model.backbone.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
    assert any(modes) and not all(modes)              # BN trains on target batches; clustering in eval
    assert len(hist["loss"]) == 2 * (48 // 16) and len(hist["pseudo_changed"]) == 1
    assert all(np.isfinite(hist["loss"]))
    assert model.head.weight.requires_grad and not model.training


def test_shot_is_seeded():
    outs = []
    for _ in range(2):
        model, x = _model_and_target()
        shot_adapt(model, x, ShotConfig(epochs=1, batch_size=16, lr=0.05, progress=False))
        outs.append(model(x[:4]).detach())
    assert torch.equal(outs[0], outs[1])


def test_shot_config_and_ood_halves():
    with pytest.raises(ValueError):
        ShotConfig(lr=0.0)
    with pytest.raises(ValueError):
        ShotConfig(beta=-1.0)
    a, b = ood_halves(1797)
    assert len(a) == 898 and len(b) == 899 and not set(a) & set(b)
    assert np.array_equal(ood_halves(1797)[0], a)                           # fixed
