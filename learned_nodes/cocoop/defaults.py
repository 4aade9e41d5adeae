"""The CoCoOp models shipped inside learned_nodes: the default encoder and prompt learner."""
from __future__ import annotations

from pathlib import Path

from learned_nodes.model_files.paths import resolve_path

DEFAULT_ENCODER = "package://learned_nodes/models/aligned_effl0_minilm"
DEFAULT_PROMPT_LEARNER = "package://learned_nodes/models/cocoop_fmnist_base"


def default_encoder_path() -> Path:
    return resolve_path(DEFAULT_ENCODER)


def default_prompt_learner_path() -> Path:
    return resolve_path(DEFAULT_PROMPT_LEARNER)
