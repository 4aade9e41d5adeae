"""DAFT core: BN conversion, methods on one path, distortion, checkpoint round trip (tiny CPU models)."""
from __future__ import annotations

import json
import time

import pytest
import torch

from learned_nodes.daft.backbones import TinyCNN, TunedClassifier, build_backbone
from learned_nodes.daft.bn_conversion import bn_layers, collect_bn_stats, convert_bn, set_bn_momentum
from learned_nodes.daft.distortion import linear_cka, mean_cosine_distance
from learned_nodes.daft.methods import METHODS, TuneConfig, make_optimizer, tune


def _shifted_batches(n=4, b=16, size=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, size, size, generator=g) * 2.0 + 0.7 for _ in range(n)]


def _perturbed_tiny(seed=0):
    """A tiny CNN whose BN layers hold non-trivial statistics and affine parameters."""
    net = build_backbone("tiny", seed=seed)
    g = torch.Generator().manual_seed(seed + 10)
    with torch.no_grad():
        for _, m in bn_layers(net):
            m.running_mean.normal_(0, 0.5, generator=g)
            m.running_var.uniform_(0.5, 2.0, generator=g)
            m.weight.uniform_(0.5, 1.5, generator=g)
            m.bias.normal_(0, 0.3, generator=g)
    return net


def _check_conversion(net, batches, probe):
    net.eval()
    before = net(probe).detach()
    stats = convert_bn(net, batches)
    after = net(probe).detach()
    assert torch.allclose(before, after, atol=1e-5, rtol=1e-5), (before - after).abs().max()
    for name, m in bn_layers(net):                         # running stats are the target statistics
        assert torch.allclose(m.running_mean, stats[name][0].float(), atol=1e-6)
        assert torch.allclose(m.running_var, stats[name][1].float(), atol=1e-6)


def test_bn_conversion_preserves_eval_outputs_tiny():
    net = _perturbed_tiny()
    _check_conversion(net, _shifted_batches(), torch.randn(8, 3, 16, 16) * 3)
    assert not net.training


def test_bn_conversion_preserves_eval_outputs_efficientnet():
    t0 = time.time()
    net = build_backbone("efficientnet-lite0")
    if time.time() - t0 > 20:
        pytest.skip("EfficientNet-Lite0 took > 20 s to load")
    _check_conversion(net, _shifted_batches(n=2, b=8, size=32), torch.randn(4, 3, 32, 32))


def test_bn_stats_gathered_in_eval_mode_and_match_direct_computation():
    net = _perturbed_tiny()
    net.train()
    x = _shifted_batches(n=1)[0]
    stats = collect_bn_stats(net, [x])
    assert net.training                                    # mode restored
    first = net.net[0](x)                                  # input of the first BN layer
    assert torch.allclose(stats["net.1"][0].float(), first.mean((0, 2, 3)), atol=1e-5)
    assert torch.allclose(stats["net.1"][1].float(), first.var((0, 2, 3), unbiased=False), atol=1e-5)


def test_set_bn_momentum():
    net = TinyCNN()
    assert set_bn_momentum(net, 0.1) == 3
    assert all(m.momentum == 0.1 for _, m in bn_layers(net))
    with pytest.raises(ValueError):
        set_bn_momentum(net, 0.0)


def _tiny_task(n=64, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.arange(n) % 4
    x[:, 0] += y[:, None, None].float()                    # learnable signal
    return x, y


def _tune(model, x, y, cfg):
    """tune() with the first 16 images doubling as the validation split (tiny tests)."""
    return tune(model, x, y, cfg, x[:16], y[:16])


def _cfg(method, **kw):
    base = dict(method=method, epochs=1, max_steps=2, batch_size=16, lr_backbone=0.05, lr_head=0.5,
                probe_cs=3, progress=False, seed=0)
    base.update(kw)
    return TuneConfig(**base)


def test_config_validation():
    with pytest.raises(ValueError):
        TuneConfig(method="nope")
    with pytest.raises(ValueError):
        TuneConfig(lr_head=0.0)
    with pytest.raises(ValueError):
        TuneConfig(epochs=0)
    with pytest.raises(ValueError):
        TuneConfig(bn_momentum=1.5)


def test_integrated_lpft_head_has_its_own_lr_and_zero_init():
    model = TunedClassifier(_perturbed_tiny(), 4)
    cfg = _cfg("daft", lr_backbone=1e-3, lr_head=3.0)
    opt = make_optimizer(model, cfg)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"backbone": 1e-3, "head": 3.0}
    head_ids = {id(p) for p in model.head.parameters()}
    assert {id(p) for g in opt.param_groups if g["name"] == "head" for p in g["params"]} == head_ids
    assert all(g["momentum"] == 0.9 for g in opt.param_groups)
    # the head is zero when the first training batch reaches it
    x, y = _tiny_task()
    model = TunedClassifier(_perturbed_tiny(), 4)
    seen = {}

    def grab(m, inp):
        seen.setdefault("w", m.weight.detach().clone())

    model.head.register_forward_pre_hook(grab)
    hist = _tune(model, x, y, _cfg("daft", max_steps=1))
    assert torch.count_nonzero(seen["w"]) == 0
    assert hist["bn_converted"] and hist["lr_groups"] == {"backbone": 0.05, "head": 0.5}
    # ft: one learning rate for all, random head
    ft_opt = make_optimizer(model, _cfg("ft", lr_backbone=1e-3, lr_head=3.0))
    assert {g["lr"] for g in ft_opt.param_groups} == {1e-3}


def _bn_modes_during_training(model):
    modes = []                                  # only training forwards (evaluation runs no_grad)
    handles = [m.register_forward_pre_hook(
        lambda m, i: modes.append(m.training) if torch.is_grad_enabled() else None)
        for _, m in bn_layers(model)]
    return modes, handles


@pytest.mark.parametrize("method", sorted(METHODS))
def test_each_method_runs_and_changes_what_it_should(method):
    x, y = _tiny_task()
    model = TunedClassifier(_perturbed_tiny(), 4)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    head_before = model.head.weight.detach().clone()
    spec = METHODS[method]
    modes, handles = _bn_modes_during_training(model)
    hist = _tune(model, x, y, _cfg(method))
    for h in handles:
        h.remove()
    after = model.backbone.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not torch.equal(head_before, model.head.weight)                # the head always learns
    if method == "lp":
        assert changed == []                                              # backbone frozen
        assert all(not p.requires_grad for p in model.backbone.parameters())
        assert "ft_loss" not in hist and hist["probe_c"] > 0 and hist["best_epoch"] == 0
        return
    assert len(hist["ft_loss"]) == 2 and hist["best_epoch"] == 1 and len(hist["val_per_epoch"]) == 1
    weights_changed = [k for k in changed if k.endswith("weight") and "net.0" in k]
    assert weights_changed                                                # conv weights trained
    assert len(modes) == len(bn_layers(model)) * 2                        # the 2 fine-tuning steps
    assert all(modes) if spec.train_mode else not any(modes)
    stats_moved = any(k.endswith(("running_mean", "running_var")) for k in changed)
    # BN eval: statistics untouched unless the conversion rewrote them; BN train: they move
    assert stats_moved == (spec.train_mode or spec.convert_bn)
    assert not model.training


def test_seeded_runs_repeat():
    x, y = _tiny_task()
    outs = []
    for _ in range(2):
        model = TunedClassifier(_perturbed_tiny(), 4)
        _tune(model, x, y, _cfg("ft"))
        outs.append(model(x[:4]).detach())
    assert torch.equal(outs[0], outs[1])


def test_cka_and_cosine():
    a = torch.randn(50, 8)
    assert linear_cka(a, a) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(a, 3 * a + 1) == pytest.approx(1.0, abs=1e-9)      # scale / shift invariant
    q, _ = torch.linalg.qr(torch.randn(8, 8))
    assert linear_cka(a, a @ q) == pytest.approx(1.0, abs=1e-9)          # rotation invariant
    assert linear_cka(a, torch.randn(50, 8)) < 0.6
    assert mean_cosine_distance(a, a) == pytest.approx(0.0, abs=1e-9)
    assert mean_cosine_distance(a, -a) == pytest.approx(2.0, abs=1e-9)


def test_checkpoint_round_trip(tmp_path):
    from learned_nodes.model_files.checkpoint import CheckpointError
    from learned_nodes.daft.checkpoint import load_tuned, save_tuned

    x, y = _tiny_task()
    model = TunedClassifier(_perturbed_tiny(), 4)
    _tune(model, x, y, _cfg("daft"))
    save_tuned(tmp_path / "ck", model, "tiny", 16, _cfg("daft").to_dict(), {"id": 0.5})
    loaded, doc = load_tuned(tmp_path / "ck")
    assert doc["config"]["tune"]["method"] == "daft" and doc["info"] == {"id": 0.5}
    assert torch.equal(model(x).detach(), loaded(x).detach())
    doc_json = json.loads((tmp_path / "ck" / "config.json").read_text())
    assert doc_json["kind"] == "daft_tuned_classifier"
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError):
        load_tuned(tmp_path / "ck")
