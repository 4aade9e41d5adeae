"""Checks on a request before it reaches a model: every failure is a RequestError with a reason
that goes back to the client as `message` (success=false); nothing here raises anything else."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from learned_nodes.image_conversions import ImageFormatError, image_to_numpy, to_rgb8
from learned_nodes.server.limits import ServerLimits


class RequestError(ValueError):
    """A malformed or out-of-limits request; str(error) is the reason sent to the client."""


@dataclass(frozen=True)
class ClassifyInput:
    """A validated ClassifyImage request."""

    rgb: np.ndarray                  # (H, W, 3) uint8
    class_names: tuple[str, ...]     # (C,)
    top_k: int                       # 1..C


def check_image(msg: Any, limits: ServerLimits) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a sensor_msgs/Image, or RequestError."""
    try:
        return to_rgb8(image_to_numpy(msg, max_pixels=limits.max_image_pixels), str(msg.encoding))
    except ImageFormatError as exc:
        raise RequestError(f"bad image: {exc}") from None


def check_class_names(names: Sequence[str], configured: Sequence[str],
                      limits: ServerLimits) -> tuple[str, ...]:
    """The class names to score: the request's, else the node's configured ones."""
    names = [str(n).strip() for n in names] if len(names) else list(configured)
    if not names:
        raise RequestError("no class names in the request and none configured on the node")
    if len(names) > limits.max_class_names:
        raise RequestError(f"{len(names)} class names exceed the limit of {limits.max_class_names}")
    seen: set[str] = set()
    for i, name in enumerate(names):
        if not name:
            raise RequestError(f"class name #{i} is empty")
        if len(name) > limits.max_class_name_chars:
            raise RequestError(f"class name #{i} has {len(name)} characters; the limit is "
                               f"{limits.max_class_name_chars}")
        if name in seen:
            raise RequestError(f"class name '{name}' appears twice")
        seen.add(name)
    return tuple(names)


def check_classify(image: Any, class_names: Sequence[str], top_k: int, configured: Sequence[str],
                   limits: ServerLimits) -> ClassifyInput:
    """Validate a ClassifyImage request (top_k 0 = all; more than the classes = all)."""
    names = check_class_names(class_names, configured, limits)
    rgb = check_image(image, limits)
    k = len(names) if int(top_k) <= 0 else min(int(top_k), len(names), limits.max_top_k)
    return ClassifyInput(rgb=rgb, class_names=names, top_k=k)
