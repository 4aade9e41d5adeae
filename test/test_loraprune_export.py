"""Masks vs physical slicing (GQA, a KV head fully removed), export / reload round trip (no pickle),
and KV-cached incremental decoding of the pruned model."""
import json
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.loraprune.lora import LoRALinear, inject_lora  # noqa: E402
from learned_nodes.loraprune.masking import MaskHooks  # noqa: E402
from learned_nodes.loraprune.prune_loop import PruneResult  # noqa: E402
from learned_nodes.loraprune.pruned_checkpoint import (export_pruned, load_pruned,  # noqa: E402
                                                       save_pruned)
from learned_nodes.loraprune.pruned_modules import PrunedLlamaAttention  # noqa: E402
from learned_nodes.loraprune.structures import (LlamaGeometry, PruneMasks,  # noqa: E402
                                                count_params)
from learned_nodes.llm.tiny_models import tiny_llama  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _masks(geom):
    """Layer 0 dense; layer 1 keeps query head 0 only (KV head 1 fully removed); layer 2 keeps
    heads 1 and 2 (one head of each group: k/v gathered); layer 3 keeps 3 heads."""
    m = PruneMasks.full(geom)
    m.heads[1] = torch.tensor([True, False, False, False])
    m.heads[2] = torch.tensor([False, True, True, False])
    m.heads[3] = torch.tensor([True, True, False, True])
    g = torch.Generator().manual_seed(0)
    for i in (1, 2, 3):
        m.channels[i] = torch.rand(geom.intermediate, generator=g) > 0.4
    return m


def _masked_lora_model(tie=True):
    model = tiny_llama(tie=tie)
    geom = LlamaGeometry.from_config(model.config)
    inject_lora(model, r=4, alpha=8.0, dropout=0.0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0.0, 0.05)
    masks = _masks(geom)
    hooks = MaskHooks(model, geom, masks)
    return PruneResult(model, masks, hooks, geom, [1, 2, 3]), geom


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, 128, (2, 20), generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("tie", [True, False])
def test_masks_equal_physical_slicing(tokens, tie):
    result, geom = _masked_lora_model(tie)
    with torch.no_grad():
        masked = result.model(input_ids=tokens).logits
    pruned = export_pruned(result)
    with torch.no_grad():
        sliced = pruned(input_ids=tokens).logits
    assert torch.allclose(masked, sliced, atol=1e-5), (masked - sliced).abs().max()
    attn1 = pruned.model.layers[1].self_attn
    assert isinstance(attn1, PrunedLlamaAttention)
    assert attn1.k_proj.weight.shape == (16, 64) and attn1.q_proj.weight.shape == (16, 64)
    assert attn1.kept_kv_heads == [0] and attn1.kv_index.tolist() == [0]
    assert pruned.model.layers[2].self_attn.kv_index.tolist() == [0, 1]
    assert pruned.model.layers[1].mlp.down_proj.weight.shape[1] == int(result.masks.channels[1].sum())
    n = sum(p.numel() for p in {id(p): p for p in pruned.parameters()}.values())
    assert n == count_params(geom, result.masks) < count_params(geom)


def test_masking_really_removes_units(tokens):
    """A masked unit does not matter: changing its weights leaves the output unchanged."""
    result, _ = _masked_lora_model()
    with torch.no_grad():
        before = result.model(input_ids=tokens).logits
        result.model.model.layers[1].self_attn.q_proj.base.weight[16:].normal_()   # heads 1-3
        result.model.model.layers[1].self_attn.k_proj.base.weight[16:].normal_()   # KV head 1
        after = result.model(input_ids=tokens).logits
    assert torch.allclose(before, after, atol=1e-6)


def test_export_reload_round_trip(tmp_path, tokens):
    from learned_nodes.llm.tiny_models import make_tiny_tokenizer

    dense = tiny_llama()
    dense_dir = tmp_path / "dense"
    dense.save_pretrained(dense_dir, safe_serialization=True)
    result, geom = _masked_lora_model()
    pruned = export_pruned(result)
    with torch.no_grad():
        ref = pruned(input_ids=tokens).logits
    out = save_pruned(pruned, make_tiny_tokenizer(), tmp_path / "pruned", extra={"method": "test"})
    names = sorted(p.name for p in out.iterdir())
    assert "model.safetensors" in names and "config.json" in names and "tokenizer.json" in names
    assert not any(n.endswith((".bin", ".pt", ".pth", ".pkl", ".ckpt")) for n in names)
    for p in out.iterdir():                              # no pickle anywhere (protocol-2+ magic)
        assert not p.read_bytes()[:2] == b"\x80\x04" and not p.read_bytes()[:2] == b"\x80\x02"
    doc = json.loads((out / "config.json").read_text())
    layers = doc["pruned_structure"]["layers"]
    kept1 = int(result.masks.channels[1].sum())
    assert layers[1] == {"heads": [0], "kv_heads": [0], "intermediate_size": kept1}
    assert doc["pruned_structure"]["method"] == "test" and doc["num_attention_heads"] == 4
    size = (out / "model.safetensors").stat().st_size
    assert size < (dense_dir / "model.safetensors").stat().st_size
    model, tok = load_pruned(out)
    assert tok is not None and len(tok) > 0
    with torch.no_grad():
        again = model(input_ids=tokens).logits
    assert torch.allclose(ref, again, atol=1e-6)
    assert model.lm_head.weight is model.model.embed_tokens.weight              # tied survives
    assert sum(p.numel() for p in {id(p): p for p in model.parameters()}.values()) == \
        count_params(geom, result.masks)
    from learned_nodes.llm.model_io import load_causal_lm                       # dispatcher

    model2, _ = load_causal_lm(out)
    with torch.no_grad():
        assert torch.allclose(model2(input_ids=tokens).logits, ref, atol=1e-6)


def test_cached_incremental_decoding_equals_full_forward(tmp_path, tokens):
    from transformers import DynamicCache

    result, _ = _masked_lora_model()
    model, _ = load_pruned(save_pruned(export_pruned(result), None, tmp_path / "p"))
    with torch.no_grad():
        full = model(input_ids=tokens).logits                                   # (2, 20, V)
        cache = DynamicCache()
        with warnings.catch_warnings():                 # transformers 5 renames it `cache`
            warnings.simplefilter("ignore", FutureWarning)
            steps = [model(input_ids=tokens[:, :5], past_key_values=cache, use_cache=True).logits]
            for t in range(5, tokens.shape[1]):
                out = model(input_ids=tokens[:, t:t + 1], past_key_values=cache, use_cache=True)
                steps.append(out.logits)
    assert torch.allclose(torch.cat(steps, 1), full, atol=1e-5)
    assert cache.layers[1].keys.shape[1] == 1                                   # kept KV heads only
    with torch.no_grad():                                                       # greedy generate
        gen = model.generate(tokens[:1, :6], max_new_tokens=6, do_sample=False)
        ids = tokens[:1, :6]
        for _ in range(6):
            ids = torch.cat([ids, model(input_ids=ids).logits[:, -1:].argmax(-1)], 1)
    assert torch.equal(gen, ids)


def test_load_rejects_non_pruned_folder(tmp_path):
    dense = tiny_llama()
    dense.save_pretrained(tmp_path, safe_serialization=True)
    with pytest.raises(ValueError, match="pruned_structure"):
        load_pruned(tmp_path)
    with pytest.raises(FileNotFoundError):
        load_pruned(tmp_path / "nothing")
