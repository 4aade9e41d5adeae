"""Checks on a request before it reaches a model: every failure is a RequestError with a reason
that goes back to the client as `message` (success=false); nothing here raises anything else."""
from __future__ import annotations

import unicodedata
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


def check_aspect_ratio(height: int, width: int, limits: ServerLimits) -> None:
    """RequestError where longer / shorter side exceeds limits.max_aspect_ratio (checked from the
    header, before any copy; zero sizes are left to the conversion, which names them)."""
    h, w = int(height), int(width)
    if h > 0 and w > 0 and max(h, w) > limits.max_aspect_ratio * min(h, w):
        raise RequestError(f"bad image: {w}x{h} has an aspect ratio of {max(h, w) / min(h, w):.1f}; "
                           f"the limit is {limits.max_aspect_ratio:g}")


def check_image(msg: Any, limits: ServerLimits) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a sensor_msgs/Image, or RequestError."""
    check_aspect_ratio(msg.height, msg.width, limits)
    try:
        return to_rgb8(image_to_numpy(msg, max_pixels=limits.max_image_pixels), str(msg.encoding))
    except ImageFormatError as exc:
        raise RequestError(f"bad image: {exc}") from None


# Unicode categories that draw nothing: controls, format (U+200B..U+200F, U+FEFF, bidi marks),
# unassigned / private use / surrogates, separators (spaces), and combining marks on their own
_INVISIBLE = ("Cc", "Cf", "Cn", "Co", "Cs", "Zs", "Zl", "Zp", "Mn", "Me")


def class_name_key(name: str) -> str:
    """What two class names must differ in: NFKC normalisation + case folding, so "Cat" / "cat" and
    the composed / decomposed spellings of "é" are the same class (a documented choice: the text
    encoders of the shipped models do not tell case apart usefully either)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def check_class_name(name: str, index: int, limits: ServerLimits) -> str:
    """The class name NFC-normalised and stripped, or RequestError (empty, invisible, control
    characters, too long)."""
    name = unicodedata.normalize("NFC", str(name)).strip()
    if not name:
        raise RequestError(f"class name #{index} is empty")
    if len(name) > limits.max_class_name_chars:
        raise RequestError(f"class name #{index} has {len(name)} characters; the limit is "
                           f"{limits.max_class_name_chars}")
    if all(unicodedata.category(c) in _INVISIBLE for c in name):
        raise RequestError(f"class name #{index} has no visible character ({name!r})")
    controls = [c for c in name if unicodedata.category(c) == "Cc"]
    if controls:
        raise RequestError(f"class name #{index} contains control character U+{ord(controls[0]):04X}")
    return name


def check_class_names(names: Sequence[str], configured: Sequence[str],
                      limits: ServerLimits) -> tuple[str, ...]:
    """The class names to score: the request's, else the node's configured ones."""
    names = list(names) if len(names) else list(configured)
    if not names:
        raise RequestError("no class names in the request and none configured on the node")
    if len(names) > limits.max_class_names:
        raise RequestError(f"{len(names)} class names exceed the limit of {limits.max_class_names}")
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        name = check_class_name(raw, i, limits)
        key = class_name_key(name)
        if key in seen:
            raise RequestError(f"class name '{name}' (#{i}) appears twice: it is #{seen[key]} after "
                               f"Unicode normalisation and case folding")
        seen[key] = i
        out.append(name)
    return tuple(out)


def check_classify(image: Any, class_names: Sequence[str], top_k: int, configured: Sequence[str],
                   limits: ServerLimits) -> ClassifyInput:
    """Validate a ClassifyImage request (top_k 0 = all; more than the classes = all)."""
    names = check_class_names(class_names, configured, limits)
    rgb = check_image(image, limits)
    k = len(names) if int(top_k) <= 0 else min(int(top_k), len(names), limits.max_top_k)
    return ClassifyInput(rgb=rgb, class_names=names, top_k=k)
