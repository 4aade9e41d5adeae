"""Every real photograph with a clear label that installed packages ship (no download): the classifier
demo's pictures and its open-vocabulary check (learned_nodes/cocoop/photo_check.py).

19 photos: 16 from scikit-image's wheel (`skimage.data`; each function's docstring states its source
and licence: CC0, public domain, or free use with attribution), 2 from scikit-learn's wheel
(`sklearn.datasets.load_sample_images`), 1 from matplotlib's sample data (Grace Hopper, US Navy, public
domain). Left out on purpose: skimage's synthetic or binary images (horse silhouette, logo, chessboards,
phantom, color wheel), the 25x25 face crops (lfw_subset), textures without one name (`text` duplicates
`page`), and stereo_motorcycle's right view (the left one is in).
Labels are what a person would say at once; grey photos are marked, they are not colour photographs.
No torch here: suite_apps reads these too.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class RealPhoto:
    name: str                       # short id
    label: str                      # what a person would call it
    source: str                     # package and function / file
    colour: bool                    # a colour photograph (False: grey-level)
    load: Callable[[], np.ndarray]  # -> (H, W, 3) uint8 RGB


def as_rgb(image: np.ndarray) -> np.ndarray:
    """Grey, RGB or RGBA, uint8 or float in 0..1 -> (H, W, 3) uint8 RGB."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        a = np.clip(a * 255.0 if a.max() <= 1.0 else a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    return np.ascontiguousarray(a[..., :3])


def _skimage(function: str, pick: Callable[[object], np.ndarray] = lambda x: x) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        return as_rgb(pick(getattr(skimage.data, function)()))
    return load


def _sklearn(file: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return as_rgb(load_sample_image(file))
    return load


def _matplotlib(file: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from pathlib import Path

        import cv2
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / file
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise FileNotFoundError(path)
        return np.ascontiguousarray(bgr[..., ::-1])
    return load


def real_photos() -> list[RealPhoto]:
    """The set, in a fixed order (loaders run on demand)."""
    sk = [("astronaut", "astronaut", True), ("chelsea", "cat", True), ("coffee", "cup of coffee", True),
          ("rocket", "rocket", True), ("hubble_deep_field", "galaxies", True), ("retina", "retina", True),
          ("immunohistochemistry", "tissue under a microscope", True), ("camera", "man with a camera", False),
          ("coins", "coins", False), ("moon", "moon surface", False), ("clock", "clock", False),
          ("brick", "brick wall", False), ("grass", "grass", False), ("gravel", "gravel", False),
          ("page", "page of text", False)]
    photos = [RealPhoto(f, label, f"scikit-image skimage.data.{f}()", colour, _skimage(f))
              for f, label, colour in sk]
    photos.append(RealPhoto("motorcycle", "motorcycle", "scikit-image skimage.data.stereo_motorcycle()[0]",
                            True, _skimage("stereo_motorcycle", lambda x: x[0])))
    photos += [RealPhoto("china", "temple", "scikit-learn load_sample_image('china.jpg')", True,
                         _sklearn("china.jpg")),
               RealPhoto("flower", "flower", "scikit-learn load_sample_image('flower.jpg')", True,
                         _sklearn("flower.jpg")),
               RealPhoto("grace_hopper", "woman in uniform", "matplotlib sample_data/grace_hopper.jpg", True,
                         _matplotlib("grace_hopper.jpg"))]
    return photos


def photo(name: str) -> RealPhoto:
    """One photo of the set by name (KeyError names the choices)."""
    by_name = {p.name: p for p in real_photos()}
    if name not in by_name:
        raise KeyError(f"no real photo '{name}'; choose from {sorted(by_name)}")
    return by_name[name]


# The demos' calls: colour photos of everyday things, one class list chosen at call time that holds
# each photo's answer among plausible others (a person sees the right answer at once).
DEMO_PHOTOS = ("chelsea", "coffee", "rocket", "motorcycle", "flower")
DEMO_CLASS_NAMES = ("cat", "dog", "cup of coffee", "rocket", "airplane", "motorcycle", "bicycle", "flower",
                    "tree", "car")
