"""Configuration of classifier_node (`model.*`, `limits.*`, `class_names`, `autostart`), validated;
no rclpy, so offline tools and tests read config/classifier.yaml with it
(suite_tools.config_params.load_node_params + build)."""
from __future__ import annotations

from dataclasses import dataclass, field

from learned_nodes.cocoop.defaults import DEFAULT_ENCODER, DEFAULT_PROMPT_LEARNER, IMAGE_MEANS
from learned_nodes.server.limits import ServerLimits, check_device


@dataclass
class ClassifierModelConfig:
    """`model.*`: what to load and where to run it."""

    encoder_path: str = DEFAULT_ENCODER        # HF CLIP folder or aligned dual encoder folder
    prompt_learner_path: str = DEFAULT_PROMPT_LEARNER  # trained CoOp/CoCoOp folder; '' = zero-shot
    device: str = "cpu"                        # cpu | cuda | cuda:N
    threads: int = 0                           # torch intra-op threads; 0 = torch's default
    class_cache_size: int = 32                 # class lists whose prompt embeddings stay cached
    image_mean: str = ""                       # aligned encoder's image centre: stored | pretraining | '' (folder's)

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.image_mean and self.image_mean not in IMAGE_MEANS:
            raise ValueError(f"image_mean must be '' or one of {IMAGE_MEANS}, got '{self.image_mean}'")
        if not self.encoder_path:
            raise ValueError("encoder_path must name a model folder")
        if self.threads < 0 or self.class_cache_size < 1:
            raise ValueError("threads must be >= 0 and class_cache_size >= 1")


@dataclass
class ClassifierNodeConfig:
    model: ClassifierModelConfig = field(default_factory=ClassifierModelConfig)
    limits: ServerLimits = field(default_factory=ServerLimits)
    class_names: list[str] = field(default_factory=list)  # used when a request names none
    autostart: bool = True                                # configure + activate at start-up

    def __post_init__(self) -> None:
        if len(self.class_names) > self.limits.max_class_names:
            raise ValueError(f"{len(self.class_names)} class_names exceed limits.max_class_names")
