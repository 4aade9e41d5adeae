"""The reference's protocol pieces: logistic-regression probe with a C sweep, drop-connect off while
fine-tuning, the ablations' eval mode and head rates, best epoch on validation."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from learned_nodes.daft import methods
from learned_nodes.daft.backbones import TunedClassifier, build_backbone, set_drop_connect
from learned_nodes.daft.methods import METHODS, TuneConfig, make_optimizer, tune
from learned_nodes.daft.probe import c_grid, fit_probe, set_head


def _features(n=120, d=12, k=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    centres = torch.randn(k, d, generator=g) * 3.0
    return centres[y] + torch.randn(n, d, generator=g) + 5.0, y       # offset: standardising matters


def test_logistic_probe_sweeps_c_on_validation_and_folds_the_standardisation():
    from sklearn.linear_model import LogisticRegression

    f, y = _features()
    fit = fit_probe(f[:80], y[:80], f[80:], y[80:], num_classes=3, num_cs=7)
    assert len(fit.val_scores) == 7 and fit.val_acc == max(fit.val_scores.values())
    assert fit.c == pytest.approx(float(c_grid(7)[list(fit.val_scores.values()).index(fit.val_acc)]))
    # the folded head on RAW features gives what sklearn gives on scalar-standardised ones
    mean, std = f[:80].double().mean().item(), f[:80].double().std(unbiased=False).item()
    clf = LogisticRegression(C=fit.c, max_iter=2000).fit(((f[:80] - mean) / std).numpy(), y[:80].numpy())
    head = torch.nn.Linear(12, 3).double()
    set_head(head, fit)
    ours = torch.softmax(head(f.double()), 1).detach().numpy()
    theirs = clf.predict_proba(((f.double() - mean) / std).numpy())
    assert np.abs(ours - theirs).max() < 2e-2
    assert fit.val_acc > 0.9


def test_probe_pads_classes_missing_from_training_and_handles_two_classes():
    f, y = _features(k=2)
    fit = fit_probe(f[:80], y[:80], f[80:], y[80:], num_classes=4, num_cs=3)
    assert fit.weight.shape == (4, 12) and not fit.weight[2:].any() and not fit.bias[2:].any()
    head = torch.nn.Linear(12, 4).double()
    set_head(head, fit)
    assert (head(f[80:].double()).argmax(1) == y[80:]).float().mean() > 0.9
    with pytest.raises(ValueError):
        set_head(torch.nn.Linear(12, 3), fit)
    with pytest.raises(ValueError):
        fit_probe(f[:80], torch.zeros(80, dtype=torch.long), f[80:], y[80:], 4)


def _tiny_task(n=64, size=16):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    x = torch.randn(n, 3, size, size, generator=g)
    x[:, 0] += y[:, None, None].float()
    return x, y


def _cfg(method, **kw):
    base = dict(method=method, epochs=1, max_steps=1, batch_size=8, lr_backbone=0.01, lr_head=0.5,
                probe_cs=3, progress=False)
    return TuneConfig(**{**base, **kw})


def test_drop_connect_is_off_while_fine_tuning_and_restored_after():
    tower = build_backbone("efficientnet-lite0", pretrained=False)
    assert set_drop_connect(tower, 0.2) == pytest.approx(0.2)          # the checkpoint's rate
    x = torch.randn(4, 3, 32, 32)
    tower.train()
    assert not torch.equal(tower(x), tower(x))                          # drop-connect is random
    set_drop_connect(tower, 0.0)
    assert torch.equal(tower(x), tower(x))                              # off: train mode repeats
    set_drop_connect(tower, 0.2)
    seen = []
    tower.net._blocks[-1].register_forward_pre_hook(
        lambda m, i: seen.append(tower.net._global_params.drop_connect_rate)
        if torch.is_grad_enabled() else None)
    model = TunedClassifier(tower, 4)
    xs, ys = _tiny_task(n=16, size=32)
    hist = tune(model, xs, ys, _cfg("ft"), xs[:8], ys[:8])
    assert seen == [0.0] and hist["drop_connect_was"] == pytest.approx(0.2)
    assert tower.net._global_params.drop_connect_rate == pytest.approx(0.2)
    seen.clear()
    tune(model, xs, ys, _cfg("daft", drop_connect=0.1), xs[:8], ys[:8])
    assert seen == [pytest.approx(0.1)]
    assert set_drop_connect(build_backbone("tiny"), 0.0) is None        # no drop-connect to set


def test_ablations_are_configured_as_the_reference():
    # both ablations: whole network in eval mode, zero head (cifar-daft.yaml: use_val_mode True)
    for name in ("daft_conversion_only", "daft_fast_head_only"):
        assert not METHODS[name].train_mode and METHODS[name].head_init == "zero"
    assert METHODS["daft"].train_mode and METHODS["ft"].train_mode and not METHODS["lpft"].train_mode
    model = TunedClassifier(build_backbone("tiny"), 4)
    lrs = {m: {g["name"]: g["lr"] for g in make_optimizer(model, _cfg(m)).param_groups}
           for m in ("daft_conversion_only", "daft_fast_head_only", "daft")}
    assert lrs["daft_conversion_only"] == {"backbone": 0.01, "head": 0.01}   # head at backbone's rate
    assert lrs["daft_fast_head_only"] == lrs["daft"] == {"backbone": 0.01, "head": 0.5}
    # conversion-only in eval mode keeps the converted running statistics during fine-tuning
    x, y = _tiny_task()
    model = TunedClassifier(build_backbone("tiny"), 4)
    tune(model, x, y, _cfg("daft_conversion_only", max_steps=None, lr_backbone=0.05), x[:16], y[:16])
    converted = TunedClassifier(build_backbone("tiny"), 4)
    from learned_nodes.daft.bn_conversion import bn_layers, convert_bn
    from learned_nodes.daft.data import batches

    convert_bn(converted.backbone, batches(x, 8))
    for (_, a), (_, b) in zip(bn_layers(model), bn_layers(converted)):
        assert torch.allclose(a.running_mean, b.running_mean, atol=1e-6)


def test_the_best_validation_epoch_is_kept(monkeypatch):
    x, y = _tiny_task()
    states, scripted = [], iter([0.5, 0.8, 0.6])                  # epoch 2 is the best
    real_accuracy = methods.accuracy

    def fake_accuracy(model, *args, **kwargs):
        real_accuracy(model, *args, **kwargs)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(methods, "accuracy", fake_accuracy)
    model = TunedClassifier(build_backbone("tiny"), 4)
    hist = tune(model, x, y, _cfg("ft", epochs=3, max_steps=None, lr_backbone=0.05), x[:16], y[:16])
    assert hist["val_per_epoch"] == [0.5, 0.8, 0.6] and hist["best_epoch"] == 2
    final = model.state_dict()
    assert all(torch.equal(final[k], states[1][k]) for k in final)
    assert not all(torch.equal(final[k], states[2][k]) for k in final)  # not the last epoch
    assert len(hist["ft_loss"]) == 3 * (64 // 8)
