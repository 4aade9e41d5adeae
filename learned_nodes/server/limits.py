"""What a model server accepts and how it batches: one config dataclass, mirrored in the YAML."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ServerLimits:
    """Request limits and batching of a model server (the `limits.*` parameters)."""

    max_image_pixels: int = 4096 * 4096    # H * W above this is refused before any copy
    max_aspect_ratio: float = 64.0         # longer / shorter side above this is refused (OS0-32 range
                                           # images are 2048 x 32 = 64); preprocessing stays bounded anyway
    max_class_names: int = 256             # per request
    max_class_name_chars: int = 100        # per class name
    max_top_k: int = 256
    max_batch: int = 8                     # requests served by one model call
    max_wait_ms: float = 5.0               # how long the worker waits to fill a batch
    request_timeout_s: float = 10.0        # queued + inference time before a request fails
    max_queue: int = 64                    # requests waiting; more are refused at once ("queue full")
    request_history: int = 256             # DDS history (requests and responses) of every service and
                                           # action service: a burst waits there until a thread takes it;
                                           # more than this many untaken at once would be overwritten

    def __post_init__(self) -> None:
        for name in ("max_image_pixels", "max_class_names", "max_class_name_chars", "max_top_k",
                     "max_batch", "max_queue", "request_history"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.max_aspect_ratio >= 1.0:
            raise ValueError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.request_timeout_s <= 0:
            raise ValueError(f"request_timeout_s must be > 0, got {self.request_timeout_s}")


def check_device(device: str) -> str:
    """'cpu', 'cuda' or 'cuda:N', else ValueError."""
    if not (device in ("cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"device must be cpu, cuda or cuda:N, got '{device}'")
    return device
