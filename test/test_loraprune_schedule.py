"""Cubic sparsity ramp, spared layers, per-layer plans, monotone masks, config validation and the
iterative / one-shot runs on a tiny GQA model."""
import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.loraprune.config import METHODS, PruneConfig  # noqa: E402
from learned_nodes.loraprune.schedule import cubic_sparsity, mask_update_steps  # noqa: E402
from learned_nodes.loraprune.structures import (LlamaGeometry, PruneMasks, count_params,  # noqa: E402
                                                channels_to_remove, plan_heads, pruned_layers,
                                                sparsity_report, update_masks)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


SMOL = LlamaGeometry(n_layers=30, hidden=576, n_heads=9, n_kv_heads=3, head_dim=64, intermediate=1536,
                     vocab=49152, tied=True)


def test_cubic_ramp_shape():
    T, target = 100, 0.5
    r = [cubic_sparsity(t, T, target) for t in range(T + 1)]
    assert all(v == 0.0 for v in r[:11])                             # warm-up: 10 % at 0
    assert all(b >= a for a, b in zip(r, r[1:]))                     # monotone
    assert r[90] == pytest.approx(target) and all(v == target for v in r[91:])   # cool-down flat
    assert 0 < r[20] < r[50] < target
    assert r[30] - r[20] > r[80] - r[70]                             # cubic: fast first, then flat
    assert cubic_sparsity(50, 100, 0.2) == pytest.approx(0.2 * (1 - (1 - 40 / 80) ** 3))
    with pytest.raises(ValueError):
        cubic_sparsity(1, 0, 0.5)
    with pytest.raises(ValueError):
        cubic_sparsity(1, 10, 0.5, warmup=0.6, cooldown=0.5)
    assert mask_update_steps(100, 10) == list(range(10, 101, 10))
    assert mask_update_steps(25, 10) == [10, 20, 25]


def test_first_and_last_layers_spared():
    assert pruned_layers(30) == list(range(3, 29))                   # SmolLM2: 0-2 and 29 spared
    assert pruned_layers(10, 0.1, True) == list(range(1, 9))
    assert pruned_layers(10, 0.0, False) == list(range(10))
    assert pruned_layers(4) == [0, 1, 2]


def test_plans_reach_the_ratio():
    for ratio in (0.2, 0.5):
        heads = plan_heads(SMOL, ratio)
        channels = channels_to_remove(SMOL, ratio, heads, 0)
        dense = SMOL.attn_params(9, 3) + SMOL.mlp_params(1536)
        removed = heads * SMOL.head_params + channels * SMOL.channel_params
        assert abs(removed / dense - ratio) < 0.001
    assert plan_heads(SMOL, 0.5) == 5 and plan_heads(SMOL, 0.2) == 2
    assert plan_heads(SMOL, 0.0) == 0 and channels_to_remove(SMOL, 0.0, 0, 0) == 0
    assert plan_heads(SMOL, 0.99) == 8                               # one head always kept
    freed = channels_to_remove(SMOL, 0.5, 5, 1)                      # a freed KV head counts
    assert channels_to_remove(SMOL, 0.5, 5, 0) - freed == round(SMOL.kv_head_params / SMOL.channel_params)
    assert count_params(SMOL) == 134515008                           # SmolLM2-135M


def removed_layer_params(geom: LlamaGeometry, masks: PruneMasks, layer: int) -> int:
    kept = (geom.attn_params(int(masks.heads[layer].sum()), len(masks.kept_kv_heads(layer, geom)))
            + geom.mlp_params(int(masks.channels[layer].sum())))
    return geom.dense_units_params() - kept


def test_update_masks_is_monotone_uniform_and_reports():
    geom = LlamaGeometry(6, 64, 4, 2, 16, 96, 128, True)
    layers = pruned_layers(geom.n_layers)                            # [0..4]
    g = torch.Generator().manual_seed(0)
    masks = PruneMasks.full(geom)
    for ratio in (0.1, 0.3, 0.5):
        imp_h, imp_c = torch.rand(6, 4, generator=g), torch.rand(6, 96, generator=g)
        new = update_masks(masks, imp_h, imp_c, layers, geom, ratio)
        assert not (new.heads & ~masks.heads).any() and not (new.channels & ~masks.channels).any()
        masks = new
    for i in layers:                                                 # same parameter count everywhere
        assert int((~masks.heads[i]).sum()) == plan_heads(geom, 0.5)
        assert abs(removed_layer_params(geom, masks, i) - 0.5 * geom.dense_units_params()) \
            <= geom.channel_params
    assert masks.heads[5].all() and masks.channels[5].all()          # last layer spared
    rep = sparsity_report(geom, masks, layers)
    assert rep["params_after"] == count_params(geom, masks) < rep["params_before"]
    assert abs(rep["ratio_pruned_layers"] - 0.5) < 0.01
    assert rep["ratio_whole_model"] < rep["ratio_pruned_layers"]
    imp_h = torch.tensor([[0.0, 5.0, 0.1, 5.0]] * 6)                  # lowest two: heads 0 and 2
    m = update_masks(PruneMasks.full(geom), imp_h, torch.rand(6, 96), [1], geom, 0.5)
    assert m.heads[1].tolist() == [False, True, False, True] and m.kept_kv_heads(1, geom) == [0, 1]


def test_freed_kv_heads_count_toward_the_target():
    """Two criteria choosing different heads remove the same number of parameters: the one whose
    heads free a whole KV group keeps more MLP channels (the freed k/v rows are not a bonus)."""
    geom = LlamaGeometry(6, 64, 4, 2, 16, 96, 128, True)
    chan = torch.rand(6, 96, generator=torch.Generator().manual_seed(1))
    frees_group = update_masks(PruneMasks.full(geom), torch.tensor([[0.0, 0.1, 5.0, 5.0]] * 6), chan,
                               [2], geom, 0.5)
    spread = update_masks(PruneMasks.full(geom), torch.tensor([[0.0, 5.0, 0.1, 5.0]] * 6), chan,
                          [2], geom, 0.5)
    assert frees_group.kept_kv_heads(2, geom) == [1] and spread.kept_kv_heads(2, geom) == [0, 1]
    assert int(frees_group.channels[2].sum()) > int(spread.channels[2].sum())
    a, b = removed_layer_params(geom, frees_group, 2), removed_layer_params(geom, spread, 2)
    assert abs(a - b) <= geom.channel_params
    assert abs(a - 0.5 * geom.dense_units_params()) <= geom.channel_params / 2 + 1


def test_head_share_moves_the_ratio_between_heads_and_channels():
    """head_share 0 removes no query head and as many channels as the whole ratio needs; 0.5 half
    the heads; the parameter count is the reference share's within a channel, on the ramp too."""
    assert plan_heads(SMOL, 0.2, 0.0) == 0 and plan_heads(SMOL, 0.5, 0.5) == 2
    with pytest.raises(ValueError):
        plan_heads(SMOL, 0.2, 1.5)
    layers = pruned_layers(SMOL.n_layers)
    gen = torch.Generator().manual_seed(3)
    heads, chan = torch.rand(30, 9, generator=gen), torch.rand(30, 1536, generator=gen)
    reference = count_params(SMOL, update_masks(PruneMasks.full(SMOL), heads, chan, layers, SMOL, 0.2))
    for share in (0.0, 0.5):
        masks = update_masks(PruneMasks.full(SMOL), heads, chan, layers, SMOL, 0.2, head_share=share)
        assert all(int((~masks.heads[i]).sum()) == plan_heads(SMOL, 0.2, share) for i in layers)
        assert abs(count_params(SMOL, masks) - reference) <= len(layers) * SMOL.channel_params
        ramp = PruneMasks.full(SMOL)
        for r in (0.05, 0.12, 0.2):
            ramp = update_masks(ramp, heads, chan, layers, SMOL, r, 0.2, head_share=share)
        assert torch.equal(ramp.heads, masks.heads) and torch.equal(ramp.channels, masks.channels)
    assert int((~masks.channels[layers[0]]).sum()) > int((~update_masks(
        PruneMasks.full(SMOL), heads, chan, layers, SMOL, 0.2).channels[layers[0]]).sum())


def test_global_allocation_keeps_the_count_and_follows_the_scores():
    """Global channel allocation removes exactly the uniform plan's channels in all, takes them
    where the scores are lowest across layers, and never more than the cap x a layer's share."""
    layers = pruned_layers(SMOL.n_layers)
    gen = torch.Generator().manual_seed(0)
    heads = torch.rand(30, 9, generator=gen)
    chan = torch.rand(30, 1536, generator=gen)
    chan[layers[:5]] *= 0.01                                         # five layers matter little
    uniform = update_masks(PruneMasks.full(SMOL), heads, chan, layers, SMOL, 0.2)
    for cap in (1.0, 1.5, 3.0):
        glob = update_masks(PruneMasks.full(SMOL), heads, chan, layers, SMOL, 0.2, global_cap=cap)
        assert count_params(SMOL, glob) == count_params(SMOL, uniform)
        assert torch.equal(glob.heads, uniform.heads)                    # heads stay uniform
        share = {i: int((~uniform.channels[i]).sum()) for i in layers}
        lost = {i: int((~glob.channels[i]).sum()) for i in layers}
        assert all(lost[i] <= cap * share[i] for i in layers)
        if cap == 1.0:
            assert lost == share
        else:                                                         # the cheap layers give more
            assert all(lost[i] == int(cap * share[i]) for i in layers[:5])
            assert all(lost[i] < share[i] for i in layers[5:])
        for i in layers:                                              # within a layer: lowest first
            gone, kept = chan[i][~glob.channels[i]], chan[i][glob.channels[i]]
            assert gone.numel() == 0 or gone.max() <= kept.min()
    with pytest.raises(ValueError, match="one-shot"):
        update_masks(uniform, heads, chan, layers, SMOL, 0.2, global_cap=2.0)


@pytest.mark.parametrize("target", [0.2, 0.5])
def test_iterative_ramp_ends_at_the_one_shot_parameter_count(target):
    """SmolLM2's geometry along the cubic ramp with random importances: the final masks remove the
    target's parameters (no overshoot from a head or a freed KV head landing late)."""
    from learned_nodes.loraprune.schedule import cubic_sparsity, mask_update_steps

    heavy = LlamaGeometry(6, 64, 8, 2, 8, 16, 128, True)             # attention-heavy: KV frees matter
    gen = torch.Generator().manual_seed(0)
    for geom, seed in ((SMOL, 0), (heavy, 1), (heavy, 2)):
        layers = pruned_layers(geom.n_layers)
        for cooldown in (0.1, 0.5):
            masks = PruneMasks.full(geom)
            for step in mask_update_steps(80, 10):
                r = cubic_sparsity(step, 80, target, 0.1, cooldown)
                if r > 0:
                    masks = update_masks(masks, torch.rand(geom.n_layers, geom.n_heads, generator=gen),
                                         torch.rand(geom.n_layers, geom.intermediate, generator=gen),
                                         layers, geom, r, target)
            for i in layers:                                         # within half a channel
                assert int((~masks.heads[i]).sum()) == plan_heads(geom, target)
                err = removed_layer_params(geom, masks, i) - target * geom.dense_units_params()
                assert abs(err) <= geom.channel_params / 2 + 1, (geom, cooldown, i, err)


@pytest.mark.parametrize("bad", [
    dict(method="nope"), dict(ratio=0.0), dict(ratio=1.0), dict(ratio=-0.1), dict(steps=0),
    dict(seq_len=1), dict(batch_size=0), dict(lr=0.0), dict(lr=float("nan")), dict(lora_r=0),
    dict(lora_alpha=0), dict(lora_dropout=1.0), dict(warmup=0.5, cooldown=0.5), dict(ema=1.0),
    dict(skip_first_frac=1.0), dict(prune_every=0), dict(calib_batches=0), dict(weight_decay=-1),
    dict(recovery="web"), dict(lr_schedule="cosine"), dict(kd_ce_weight=-1.0),
    dict(steps=4, cooldown=0.01), dict(steps=4, cooldown=0.0),
    dict(method="llm_pruner", global_cap=0.5), dict(global_cap=2.0), dict(method="random", global_cap=2.0),
    dict(method="llm_pruner", global_cap=float("inf")), dict(head_share=-0.1), dict(head_share=1.5)])
def test_config_validation(bad):
    with pytest.raises(ValueError):
        PruneConfig(**bad)


def test_config_defaults_follow_the_paper():
    c = PruneConfig()
    assert (c.lora_r, c.lora_alpha, c.lora_dropout, c.lr) == (8, 16.0, 0.05, 3e-4)
    assert (c.prune_every, c.ema) == (10, 0.9)
    assert (c.warmup, c.skip_first_frac, c.skip_last) == (0.1, 0.1, True)
    assert (c.lr_schedule, c.recovery, c.cooldown) == ("linear", "corpus", 0.5)   # fair schedule
    assert c.lr_at(1) == c.lr and c.lr_at(c.steps) == pytest.approx(c.lr / c.steps)   # HF linear
    assert c.iterative and not PruneConfig(method="taylor").iterative


@pytest.mark.parametrize("method", METHODS)
def test_runs_reach_the_target_with_lora_only(method):
    from learned_nodes.loraprune.prune_loop import run_pruning
    from learned_nodes.loraprune.pruned_checkpoint import export_pruned
    from learned_nodes.llm.tiny_models import tiny_llama

    model = tiny_llama()
    g = torch.Generator().manual_seed(0)
    batches = (torch.randint(0, 128, (2, 16), generator=g) for _ in itertools.count())
    cfg = PruneConfig(method=method, ratio=0.5, steps=9, seq_len=16, batch_size=2, prune_every=3,
                      calib_batches=2, progress=False)
    res = run_pruning(model, batches, cfg)
    if method == "lora_only":                                        # the same training, no pruning
        assert res.masks.heads.all() and res.masks.channels.all() and not res.history["mask_updates"]
    else:
        for i in res.layers:
            assert int((~res.masks.heads[i]).sum()) == plan_heads(res.geom, 0.5)
        assert abs(res.report()["ratio_pruned_layers"] - 0.5) < 0.03
    assert res.layers == [0, 1, 2] and res.masks.heads[3].all()
    h = res.history
    assert len(h["loss"]) == 9 and h["trainable_params"] > 0
    assert h["lr"] == sorted(h["lr"], reverse=True) and h["lr"][-1] == pytest.approx(cfg.lr / 9)
    if method != "lora_only":                                        # the fair schedule: the same
        final = [r == pytest.approx(0.5) for r in h["ratio"]]        # steps at the final structure
        assert sum(final) == cfg.final_steps and all(final[cfg.structure_step:])
        assert all(u["step"] <= cfg.structure_step for u in h["mask_updates"])
    assert h["grad_bytes"] > 0 and h["grad_bytes"] <= 4 * h["trainable_params"]   # LoRA grads only
    assert h["optimizer_state_bytes"] >= 2 * h["grad_bytes"]
    if method == "loraprune":
        ups = [u["ratio"] for u in h["mask_updates"]]
        assert ups == sorted(ups) and ups[-1] == pytest.approx(0.5) and len(ups) >= 2
    if method in ("taylor", "llm_pruner"):
        assert h["calib_grad_bytes"] == 4 * count_params(res.geom)    # a gradient for every weight
    pruned = export_pruned(res)
    with torch.no_grad():
        assert torch.isfinite(pruned(input_ids=torch.randint(0, 128, (1, 8))).logits).all()


def test_heads_follow_the_ramp():
    """Query heads go as the ramp goes (floor, as the reference's int(ratio * heads)), not ahead."""
    from learned_nodes.loraprune.schedule import cubic_sparsity

    layers = pruned_layers(SMOL.n_layers)
    masks, removed = PruneMasks.full(SMOL), []
    for step in (10, 20, 30, 40):                                   # 80 steps, 40 at the target
        r = cubic_sparsity(step, 80, 0.5, 0.1, 0.5)
        masks = update_masks(masks, torch.rand(30, 9), torch.rand(30, 1536), layers, SMOL, r, 0.5)
        removed.append(int((~masks.heads[layers[0]]).sum()))
    assert removed == [0, 3, 4, 5]                                  # ramp 0.09, 0.38, 0.49, 0.5: 5 x r / 0.5, floored
