"""LoRAPrune importance against autograd: the LoRA-guided estimate, Taylor |W dW|, the grouping into
query heads (GQA) and MLP channels, and the moving average."""
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.loraprune.importance import (ImportanceEMA, element_scores,  # noqa: E402
                                                layer_unit_scores, lora_weight_gradient,
                                                model_unit_scores)
from learned_nodes.loraprune.lora import LoRALinear, inject_lora, merge_lora  # noqa: E402
from learned_nodes.loraprune.structures import LlamaGeometry  # noqa: E402
from learned_nodes.llm.tiny_models import tiny_llama  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _loss(model, seed=1):
    x = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(seed))
    return model(input_ids=x, labels=x).loss


def _lora_model():
    model = tiny_llama()
    inject_lora(model, r=4, alpha=8.0, dropout=0.0, seed=0)
    with torch.no_grad():                                   # non-zero B: every term of G matters
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(3))
    return model


def _manual_units(mods, score, geom, normalise=True):
    """Reference grouping written with explicit per-head / per-channel loops (normalise=False:
    LLM-Pruner's raw group sums)."""
    H, KV, hd, g = geom.n_heads, geom.n_kv_heads, geom.head_dim, geom.group_size
    s = {k: score(m) for k, m in mods.items()}
    norm = (lambda v: v / (torch.linalg.vector_norm(v) + 1e-8)) if normalise else (lambda v: v)  # noqa: E731
    q = norm(torch.stack([s["q_proj"][h * hd:(h + 1) * hd].sum() for h in range(H)]))
    o = norm(torch.stack([s["o_proj"][:, h * hd:(h + 1) * hd].sum() for h in range(H)]))
    k = norm(torch.stack([s["k_proj"][j * hd:(j + 1) * hd].sum() for j in range(KV)]))
    v = norm(torch.stack([s["v_proj"][j * hd:(j + 1) * hd].sum() for j in range(KV)]))
    heads = torch.stack([q[h] + o[h] + (k[h // g] + v[h // g]) / g for h in range(H)])
    ch = norm(s["gate_proj"].sum(1)) + norm(s["up_proj"].sum(1)) + norm(s["down_proj"].sum(0))
    return heads, ch


def test_lora_importance_matches_autograd():
    model = _lora_model()
    geom = LlamaGeometry.from_config(model.config)
    layer = model.model.layers[1]
    names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    mods = {n: getattr(layer.self_attn if n[0] in "qkvo" else layer.mlp, n) for n in names}
    loss = _loss(model)
    auto = torch.autograd.grad(loss, [p for n in names for p in (mods[n].lora_A, mods[n].lora_B)],
                               retain_graph=True)
    loss.backward()
    for i, n in enumerate(names):
        m = mods[n]
        ga, gb = auto[2 * i], auto[2 * i + 1]
        a, b = m.lora_A.detach(), m.lora_B.detach()
        g_expected = gb @ a + b @ ga - gb @ ga                # the reference's estimate
        assert torch.allclose(lora_weight_gradient(m), g_expected, atol=1e-7, rtol=1e-5)
        w = m.base.weight + m.scaling * b @ a
        assert torch.allclose(element_scores(m, "lora"), (g_expected * w).abs(), atol=1e-8, rtol=1e-5)
    heads, ch = layer_unit_scores(layer, geom, "lora")
    ref_h, ref_c = _manual_units(
        mods, lambda m: (lora_weight_gradient(m) * m.effective_weight()).abs().detach(), geom)
    assert heads.shape == (4,) and ch.shape == (96,)
    assert torch.allclose(heads, ref_h, atol=1e-6) and torch.allclose(ch, ref_c, atol=1e-6)


def test_lora_grads_are_projections_of_the_weight_gradient():
    """Sanity of the LoRA parametrisation: dA = s B^T dW and dB = s dW A^T for W = W0 + s B A."""
    model = _lora_model()
    m = model.model.layers[0].self_attn.q_proj
    w_eff = m.effective_weight().detach().requires_grad_(True)
    x = torch.randn(5, 64)
    out = x @ w_eff.t()
    (out ** 2).sum().backward()
    dw = w_eff.grad
    y = m(x)                                                  # dropout 0: same output
    (y ** 2).sum().backward()
    assert torch.allclose(m.lora_A.grad, m.scaling * m.lora_B.detach().t() @ dw, atol=1e-5, rtol=1e-4)
    assert torch.allclose(m.lora_B.grad, m.scaling * dw @ m.lora_A.detach().t(), atol=1e-5, rtol=1e-4)


def test_taylor_importance_matches_autograd():
    model = tiny_llama()
    model.requires_grad_(True)
    geom = LlamaGeometry.from_config(model.config)
    layer = model.model.layers[2]
    names = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    mods = {n: getattr(layer.self_attn if n[0] in "qkvo" else layer.mlp, n) for n in names}
    loss = _loss(model)
    grads = torch.autograd.grad(loss, [mods[n].weight for n in names], retain_graph=True)
    loss.backward()
    auto = {n: (mods[n].weight.detach() * g).abs() for n, g in zip(names, grads)}
    for n in names:
        assert torch.allclose(element_scores(mods[n], "taylor"), auto[n], atol=1e-9, rtol=1e-5)
    heads, ch = layer_unit_scores(layer, geom, "taylor")
    ref_h, ref_c = _manual_units(mods, lambda m: auto[[k for k in names if mods[k] is m][0]], geom)
    assert torch.allclose(heads, ref_h, atol=1e-6) and torch.allclose(ch, ref_c, atol=1e-6)
    raw_h, raw_c = layer_unit_scores(layer, geom, "taylor_raw")     # LLM-Pruner: raw group sums
    ref_h, ref_c = _manual_units(mods, lambda m: auto[[k for k in names if mods[k] is m][0]], geom, False)
    assert torch.allclose(raw_h, ref_h, rtol=1e-5) and torch.allclose(raw_c, ref_c, rtol=1e-5)
    with torch.no_grad():                                 # one module 100x louder: raw sums follow it,
        mods["down_proj"].weight.mul_(100.0)              # the per-module normalised ones do not
    assert torch.allclose(layer_unit_scores(layer, geom, "taylor")[1], ch, atol=1e-6)
    assert torch.allclose(layer_unit_scores(layer, geom, "taylor_raw")[1],
                          (auto["gate_proj"].sum(1) + auto["up_proj"].sum(1) + 100 * auto["down_proj"].sum(0)),
                          rtol=1e-5)


def test_streamed_taylor_equals_full_gradient_taylor_without_storing_it():
    """streamed_taylor (LoRA model, W0 frozen) gives the unit scores of full-gradient Taylor on the
    merged model (same W, same batch) and leaves no weight gradient behind."""
    from learned_nodes.loraprune.lora import track_taylor

    model = _lora_model()
    model.train()
    geom = LlamaGeometry.from_config(model.config)
    track_taylor(model)
    _loss(model).backward()
    streamed = model_unit_scores(model, geom, [0, 1, 2, 3], "streamed_taylor")
    assert all(m.base.weight.grad is None for m in model.modules() if isinstance(m, LoRALinear))
    merge_lora(model)
    model.requires_grad_(True)
    _loss(model).backward()
    full = model_unit_scores(model, geom, [0, 1, 2, 3], "taylor")
    for a, b in zip(streamed, full):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-4)
    with pytest.raises(RuntimeError, match="track_taylor"):
        model_unit_scores(_lora_model(), geom, [1], "streamed_taylor")    # never tracked


def test_streamed_taylor_with_dropout_masks_and_chosen_layers():
    """With LoRA dropout on and mask hooks installed, every tracked module's sums are those of
    |W * gy^T x| from the input and output gradient captured by hooks; untracked layers keep none."""
    from learned_nodes.loraprune.lora import track_taylor
    from learned_nodes.loraprune.masking import MaskHooks
    from learned_nodes.loraprune.structures import PruneMasks

    model = tiny_llama()
    inject_lora(model, r=4, alpha=8.0, dropout=0.3, seed=0)
    geom = LlamaGeometry.from_config(model.config)
    masks = PruneMasks.full(geom)
    masks.heads[1, 0] = masks.heads[2, 3] = False
    masks.channels[1, :10] = False
    MaskHooks(model, geom, masks)
    track_taylor(model, True, layers=[1, 2])
    seen = {}

    def capture(mod, inputs, out):
        x = inputs[0].detach().reshape(-1, inputs[0].shape[-1])                  # (N, in)
        out.register_hook(lambda gy: seen.__setitem__(mod, (x, gy.reshape(-1, gy.shape[-1]))))

    mods = [m for m in model.modules() if isinstance(m, LoRALinear)]
    for m in mods:
        m.register_forward_hook(capture)
    model.train()
    _loss(model).backward()
    for i, layer in enumerate(model.model.layers):
        for m in (layer.self_attn.q_proj, layer.self_attn.o_proj, layer.mlp.down_proj):
            if i not in (1, 2):
                assert m.taylor_sums is None
                continue
            x, gy = seen[m]
            e = ((gy.t() @ x) * m.effective_weight().detach()).abs()
            assert torch.allclose(m.taylor_sums[0], e.sum(1), atol=1e-6, rtol=1e-4)
            assert torch.allclose(m.taylor_sums[1], e.sum(0), atol=1e-6, rtol=1e-4)
    o = model.model.layers[1].self_attn.o_proj.taylor_sums[1].view(4, 16).sum(1)
    assert o[0] == 0 and (o[1:] > 0).all()                            # a masked head scores 0


def test_magnitude_random_and_unpruned_layers():
    model = tiny_llama()
    geom = LlamaGeometry.from_config(model.config)
    h, c = model_unit_scores(model, geom, [1, 2], "magnitude")
    assert h.shape == (4, 4) and c.shape == (4, 96)
    assert (h[0] == 0).all() and (h[3] == 0).all() and (h[1] > 0).all()
    g = torch.Generator().manual_seed(0)
    r1, _ = model_unit_scores(model, geom, [1], "random", g)
    r2, _ = model_unit_scores(model, geom, [1], "random", torch.Generator().manual_seed(0))
    assert torch.equal(r1, r2)
    with pytest.raises(RuntimeError):
        element_scores(model.model.layers[0].self_attn.q_proj, "taylor")   # no full gradient
    with pytest.raises(TypeError):
        element_scores(model.model.layers[0].self_attn.q_proj, "lora")     # no adapters
    with pytest.raises(ValueError):
        element_scores(model.model.layers[0].self_attn.q_proj, "nope")


def test_w0_has_no_gradient_and_merge_preserves_function():
    model = _lora_model()
    x = torch.randint(0, 128, (1, 10))
    _loss(model).backward()
    for m in model.modules():
        if isinstance(m, LoRALinear):
            assert m.base.weight.grad is None and not m.base.weight.requires_grad
            assert m.lora_A.grad is not None
    assert model.model.embed_tokens.weight.grad is None
    with torch.no_grad():
        before = model(input_ids=x).logits
        merge_lora(model)
        after = model(input_ids=x).logits
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert torch.allclose(before, after, atol=1e-5)


def test_importance_moving_average():
    geom = LlamaGeometry.from_config(tiny_llama().config)
    ema = ImportanceEMA(geom, beta=0.9)
    ones_h, ones_c = torch.ones(4, 4), torch.ones(4, 96)
    assert ema.update(ones_h, ones_c)
    assert torch.allclose(ema.heads, torch.full((4, 4), 0.1))
    assert ema.update(2 * ones_h, 2 * ones_c)
    assert torch.allclose(ema.heads, torch.full((4, 4), 0.9 * 0.1 + 0.1 * 2))
    assert not ema.update(torch.full((4, 4), float("nan")), ones_c)        # skipped, unchanged
    assert torch.allclose(ema.heads, torch.full((4, 4), 0.29)) and ema.skipped == 1


def test_lora_function_gradients_with_dropout():
    """The memory-lean LoRA autograd Function (bool dropout mask, no copies) against gradcheck and
    against the plain expression without dropout."""
    from learned_nodes.loraprune.lora import _LoRAFunction

    base = torch.nn.Linear(6, 5).double()
    m = LoRALinear(base, r=3, alpha=6.0, dropout=0.3).double()
    with torch.no_grad():
        m.lora_B.normal_()
    x = torch.randn(2, 3, 6, dtype=torch.double, requires_grad=True)
    a = m.lora_A.detach().clone().requires_grad_(True)
    b = m.lora_B.detach().clone().requires_grad_(True)

    def fn(x, a, b):
        torch.manual_seed(7)                                  # the same dropout mask every call
        return _LoRAFunction.apply(x, base.weight, base.bias, a, b, m.scaling, 0.3, True)

    assert torch.autograd.gradcheck(fn, (x, a, b))
    m.eval()                                                  # no dropout in eval mode
    plain = base(x) + (x @ m.lora_A.t() @ m.lora_B.t()) * m.scaling
    assert torch.allclose(m(x), plain)
    m.train()
    torch.manual_seed(0)
    dropped = m(x)
    assert not torch.allclose(dropped, plain)                 # dropout acts in train mode only


def test_agreement_measure():
    from learned_nodes.loraprune.agreement import agreement

    a = torch.rand(3, 10, generator=torch.Generator().manual_seed(0))
    same = agreement(a, a.clone() * 2.0, [0, 2])
    assert same["spearman"] == pytest.approx(1.0) and same["overlap"] == pytest.approx(1.0)
    rev = agreement(a, -a, [1])
    assert rev["spearman"] == pytest.approx(-1.0) and rev["overlap"] == pytest.approx(0.0)
