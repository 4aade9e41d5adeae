"""Self-describing checkpoints: a folder with config.json (kind + config) and model.safetensors.

Never unpickles: a torch.save/pickle file is refused with a message saying what to do, and a
truncated file, a missing/unexpected tensor or a wrong shape are named in a CheckpointError.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any, Mapping

FORMAT = "coin_lio_suite.checkpoint/1"
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint that is missing, of the wrong kind, a pickle, truncated or of the wrong shape."""


def save_checkpoint(folder: str | Path, tensors: Mapping[str, Any], kind: str,
                    config: Mapping[str, Any], info: Mapping[str, Any] | None = None) -> Path:
    """Write `folder/config.json` and `folder/model.safetensors`; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"format": FORMAT, "kind": kind, "config": dict(config), "info": dict(info or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
    save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()},
              str(folder / WEIGHTS_FILE), metadata={"format": FORMAT, "kind": kind})
    (folder / WEIGHTS_FILE).chmod(0o644)  # safetensors writes 0600; checkpoints are meant to be shared
    return folder


def read_json(path: Path, missing: str) -> Any:
    """A JSON file's content; CheckpointError(`missing`) when absent, or naming the parse error."""
    if not path.is_file():
        raise CheckpointError(missing)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: not valid JSON ({exc})") from None


def read_config(folder: str | Path, kind: str | None = None) -> dict[str, Any]:
    """The checkpoint document {format, kind, config, info}; checks the kind when given."""
    path = Path(folder) / CONFIG_FILE
    doc = read_json(path, f"{folder}: no {CONFIG_FILE} (not a checkpoint folder)")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("config"), dict):
        raise CheckpointError(f"{path}: not a {FORMAT} document")
    if kind is not None and doc.get("kind") != kind:
        raise CheckpointError(f"{folder}: holds a '{doc.get('kind')}', expected a '{kind}'")
    return doc


def check_safetensors_file(path: str | Path) -> dict[str, Any]:
    """The safetensors header of `path`, after refusing pickles and truncated files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(9)
        n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else -1
        if len(head) < 9 or head[8:9] != b"{" or n > size - 8 or n > 100_000_000:
            if head[:2] == b"PK" or head[:1] == b"\x80":
                raise CheckpointError(f"{path}: is a pickle (torch.save) file; refusing to unpickle "
                                      "it. Convert it to safetensors where you trust it.")
            raise CheckpointError(f"{path}: truncated or not a safetensors file ({size} bytes)")
        f.seek(8)
        try:
            header = json.loads(f.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise CheckpointError(f"{path}: corrupt or truncated safetensors header") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end > size:
        raise CheckpointError(f"{path}: truncated: tensors need {8 + n + end} bytes, file has {size}")
    return header


def load_tensors(path: str | Path, expected: Mapping[str, tuple[int, ...]] | None = None,
                 device: str = "cpu") -> dict[str, Any]:
    """Tensors of a safetensors file (or a checkpoint folder), checked against `expected` shapes."""
    from safetensors.torch import load_file

    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_FILE
    check_safetensors_file(path)
    try:
        tensors = load_file(str(path), device=device)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types
        raise CheckpointError(f"{path}: unreadable safetensors file ({exc})") from None
    if expected is not None:
        check_shapes(tensors, expected, str(path))
    return tensors


def check_shapes(tensors: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], where: str) -> None:
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: {tuple(tensors[k].shape)} (expected {tuple(expected[k])})"
             for k in sorted(set(expected) & set(tensors)) if tuple(tensors[k].shape) != tuple(expected[k])]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if wrong:
        problems.append("wrong shapes: " + "; ".join(wrong))
    if problems:
        raise CheckpointError(f"{where}: " + ", ".join(problems))
