"""Data-free recovery: the distillation loss and the teacher's own text on a tiny chat model."""
import itertools

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.loraprune.distill import distill_loss, lm_loss, make_loss  # noqa: E402
from learned_nodes.llm.tiny_models import tiny_llama  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_distill_loss_is_kl_plus_the_next_token_loss():
    student, teacher = tiny_llama(seed=0), tiny_llama(seed=0)
    x = torch.randint(0, 128, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():                                  # the student is the teacher: KL = 0
        assert distill_loss(student, teacher, x, 0.0).abs() < 1e-6
        assert torch.allclose(distill_loss(student, teacher, x, 1.0), lm_loss(student, x), atol=1e-5)
        other = tiny_llama(seed=5)
        kl = distill_loss(other, teacher, x, 0.0)
        t = teacher(input_ids=x).logits[:, :-1].log_softmax(-1)
        s = other(input_ids=x).logits[:, :-1].log_softmax(-1)
        manual = (t.exp() * (t - s)).sum(-1).mean()        # KL(teacher || student) per token
        assert kl > 0 and torch.allclose(kl, manual, atol=1e-5)
    assert make_loss(None) is lm_loss


def test_data_free_run_needs_a_teacher_and_trains_towards_it():
    from learned_nodes.loraprune.config import PruneConfig
    from learned_nodes.loraprune.prune_loop import run_pruning

    g = torch.Generator().manual_seed(0)
    batches = (torch.randint(0, 128, (2, 16), generator=g) for _ in itertools.count())
    cfg = PruneConfig(method="taylor", ratio=0.5, steps=6, seq_len=16, batch_size=2, calib_batches=1,
                      recovery="distill", progress=False)
    with pytest.raises(ValueError, match="teacher"):
        run_pruning(tiny_llama(), batches, cfg)
    with pytest.raises(ValueError, match="teacher"):
        run_pruning(tiny_llama(), batches, PruneConfig(method="taylor", steps=6, progress=False), tiny_llama())
    res = run_pruning(tiny_llama(), batches, cfg, teacher=tiny_llama())
    assert res.history["recovery"] == "distill" and len(res.history["loss"]) == 6
    assert all(torch.isfinite(torch.tensor(res.history["loss"])))


def test_corpus_kd_recovery_needs_a_teacher_and_is_listed_by_the_bench():
    import argparse

    from learned_nodes.loraprune.bench_measure import label_of, run_configs
    from learned_nodes.loraprune.config import PruneConfig
    from learned_nodes.loraprune.prune_loop import run_pruning

    cfg = PruneConfig(method="loraprune", ratio=0.5, steps=6, seq_len=16, batch_size=2, prune_every=2,
                      recovery="corpus_kd", kd_ce_weight=0.0, progress=False)
    assert cfg.uses_teacher and not PruneConfig(progress=False).uses_teacher
    g = torch.Generator().manual_seed(0)
    batches = (torch.randint(0, 128, (2, 16), generator=g) for _ in itertools.count())
    with pytest.raises(ValueError, match="teacher"):
        run_pruning(tiny_llama(), batches, cfg)
    res = run_pruning(tiny_llama(seed=0), batches, cfg, teacher=tiny_llama(seed=0))
    loss = torch.tensor(res.history["loss"])
    assert torch.isfinite(loss).all() and (loss >= -1e-6).all()     # the KL alone: never negative
    assert loss[0] < 1e-5 < loss.max()                    # dense start = teacher, then masks bite
    args = argparse.Namespace(steps=4, seq_len=16, batch_size=2, cooldown=0.5, prune_every=1, device="cpu",
                              seed=0, quiet=True, kd_ce_weight=0.1, methods=["taylor"], distill_methods=[],
                              kd_methods=["llm_pruner"], lora_only=True, ratios=[0.2])
    cfgs = run_configs(args)
    assert [label_of(c) for c in cfgs] == ["lora_only", "lora_only (corpus KD)", "taylor",
                                           "llm_pruner (corpus KD)"]
    assert all(c.kd_ce_weight == 0.1 for c in cfgs)
    with pytest.raises(ValueError, match="recovery"):
        PruneConfig(recovery="kd", progress=False)
