"""Where the shipped models live, and `package://` paths in configs.

`package://NAME/rest` resolves to the folder of the Python package NAME (e.g. the models shipped
inside learned_nodes) or, failing that, to the ament share directory of the ROS package NAME.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
DEFAULT_ENCODER = "package://learned_nodes/models/aligned_effl0_minilm"
DEFAULT_PROMPT_LEARNER = "package://learned_nodes/models/cocoop_fmnist_base"


def resolve_path(spec: str) -> Path:
    """An absolute path for a config value: package://, ~, or a path relative to the working dir."""
    if spec.startswith("package://"):
        name, _, rest = spec[len("package://"):].partition("/")
        found = importlib.util.find_spec(name) if name.isidentifier() else None
        if found is not None and found.submodule_search_locations:
            return Path(list(found.submodule_search_locations)[0]) / rest
        for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
            share = Path(prefix) / "share" / name
            if prefix and share.is_dir():
                return share / rest
        raise FileNotFoundError(f"{spec}: no Python package or ROS package named '{name}'")
    return Path(spec).expanduser().resolve()


def default_encoder_path() -> Path:
    return resolve_path(DEFAULT_ENCODER)


def default_prompt_learner_path() -> Path:
    return resolve_path(DEFAULT_PROMPT_LEARNER)
