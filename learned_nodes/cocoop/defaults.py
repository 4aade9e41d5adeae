"""The CoCoOp models shipped inside learned_nodes: the default encoder and prompt learner."""
from __future__ import annotations

from pathlib import Path

from learned_nodes.model_files.paths import resolve_path

DEFAULT_ENCODER = "package://learned_nodes/models/aligned_effl0_minilm"
DEFAULT_PROMPT_LEARNER = "package://learned_nodes/models/cocoop_fmnist_base"
# Centre of the aligned encoder's image features: "stored" = the folder's mean of the unlabelled
# target-domain images it was fitted with (Fashion-MNIST for the shipped one); "pretraining" = the
# image tower's data-free estimate of the mean over its pretraining images (ImageNet: natural
# photos), from its last BatchNorm layer.
IMAGE_MEANS = ("stored", "pretraining")


def default_encoder_path() -> Path:
    return resolve_path(DEFAULT_ENCODER)


def default_prompt_learner_path() -> Path:
    return resolve_path(DEFAULT_PROMPT_LEARNER)
