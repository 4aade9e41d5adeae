"""Configuration of text_generation_node (model, device, `generation.*`, `limits.*`, `autostart`),
validated; no rclpy, so offline tools and tests read config/text_generation.yaml with it
(suite_tools.config_params.load_node_params + build)."""
from __future__ import annotations

from dataclasses import dataclass, field

from learned_nodes.llm.model_io import DEFAULT_MODEL
from learned_nodes.llm.requests import GeneratorConfig
from learned_nodes.server.limits import ServerLimits, check_device


@dataclass
class TextGenerationNodeConfig:
    model_path: str = DEFAULT_MODEL   # HF folder | .gguf | folder with one .gguf | pruned folder
    device: str = "cpu"               # cpu | cuda | cuda:N
    dtype: str = "float32"            # float32 | bfloat16 | float16
    threads: int = 0                  # torch intra-op threads; 0 = torch's default
    result_retention_s: int = 300     # a finished goal's result stays available this long (s);
                                      # asked later, a client gets STATUS_UNKNOWN (rclpy default: 10)
    generation: GeneratorConfig = field(default_factory=GeneratorConfig)
    limits: ServerLimits = field(default_factory=ServerLimits)   # max_batch + 2 executor threads
    autostart: bool = True            # configure + activate at start-up

    def __post_init__(self) -> None:
        check_device(self.device)
        if self.dtype not in ("float32", "bfloat16", "float16"):
            raise ValueError(f"dtype must be float32, bfloat16 or float16, got '{self.dtype}'")
        if self.threads < 0:
            raise ValueError("threads must be >= 0")
        if self.result_retention_s < 1:
            raise ValueError(f"result_retention_s must be >= 1, got {self.result_retention_s}")
        g = self.generation
        if self.limits.max_batch < g.max_concurrent + g.max_waiting:
            raise ValueError(f"limits.max_batch ({self.limits.max_batch}) sizes the executor and must be "
                             f">= generation.max_concurrent + generation.max_waiting "
                             f"({g.max_concurrent} + {g.max_waiting})")
