"""Procedural reflectivity textures on surface coordinates (u, v) in metres.

Every texture is a pure function of the surface coordinates and its seed (lattice hashing, no
random state), so a wall looks the same from every pose and every scan: photometric tracking
has something stable to track. Values are diffuse reflectivities (1.0 = white lambertian).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

_MASK32 = np.uint64(0xFFFFFFFF)


def hash01(ix: np.ndarray, iy: np.ndarray, seed: int) -> np.ndarray:
    """Deterministic pseudo-random values in [0, 1) for integer lattice points."""
    h = (ix.astype(np.int64).astype(np.uint64) * np.uint64(0x8DA6B343)
         + iy.astype(np.int64).astype(np.uint64) * np.uint64(0xD8163841)
         + np.uint64((seed * 0x9E3779B1 + 0x632BE5AB) & 0xFFFFFFFF)) & _MASK32
    h ^= h >> np.uint64(15)
    h = (h * np.uint64(0x2C1B3C6D)) & _MASK32
    h ^= h >> np.uint64(12)
    h = (h * np.uint64(0x297A2D39)) & _MASK32
    h ^= h >> np.uint64(15)
    return h.astype(np.float64) / 4294967296.0


def value_noise(u: np.ndarray, v: np.ndarray, scale: float, seed: int,
                octaves: int = 1) -> np.ndarray:
    """Smooth lattice noise in [0, 1]; `scale` is the cell size of the first octave in metres."""
    total = np.zeros(np.shape(u))
    norm = 0.0
    for k in range(octaves):
        x, y = u / (scale / 2 ** k), v / (scale / 2 ** k)
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = x - x0, y - y0
        fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
        s = seed + 7919 * k
        n00, n10 = hash01(x0, y0, s), hash01(x0 + 1, y0, s)
        n01, n11 = hash01(x0, y0 + 1, s), hash01(x0 + 1, y0 + 1, s)
        amp = 0.5 ** k
        total += amp * ((n00 * (1 - fx) + n10 * fx) * (1 - fy) + (n01 * (1 - fx) + n11 * fx) * fy)
        norm += amp
    return total / norm


class Texture:
    """Base: sample(u, v) -> (value, alpha); alpha 1 = opaque layer."""

    def sample(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def __call__(self, uv: np.ndarray) -> np.ndarray:
        value, _ = self.sample(uv[:, 0], uv[:, 1])
        return value


@dataclass
class Constant(Texture):
    value: float = 0.5

    def sample(self, u, v):
        return np.full(np.shape(u), self.value), np.ones(np.shape(u))


@dataclass
class Noise(Texture):
    """Grainy base reflectivity: lo..hi by multi-octave value noise (concrete, asphalt, grass)."""

    lo: float = 0.2
    hi: float = 0.5
    scale: float = 1.0
    octaves: int = 3
    seed: int = 0

    def sample(self, u, v):
        n = value_noise(u, v, self.scale, self.seed, self.octaves)
        return self.lo + (self.hi - self.lo) * n, np.ones(np.shape(u))


@dataclass
class Blobs(Texture):
    """Stains / patches: where the noise exceeds `threshold`, paint `value` with soft edges."""

    value: float = 0.08
    scale: float = 2.0
    threshold: float = 0.68
    softness: float = 0.04
    seed: int = 1

    def sample(self, u, v):
        n = value_noise(u, v, self.scale, self.seed, 2)
        alpha = np.clip((n - self.threshold) / self.softness, 0.0, 1.0)
        return np.full(np.shape(u), self.value), alpha


@dataclass
class Stripes(Texture):
    """Painted lines along u at fixed v (along='v': along v at fixed u); dashed if dash_period."""

    positions: Sequence[float] = (0.0,)
    width: float = 0.12
    value: float = 0.9
    dash_period: float = 0.0
    dash_duty: float = 0.5
    dash_phase: float = 0.0
    along: str = "u"

    def sample(self, u, v):
        if self.along == "v":
            u, v = v, u
        alpha = np.zeros(np.shape(u))
        for pos in self.positions:
            alpha = np.maximum(alpha, (np.abs(v - pos) <= self.width / 2).astype(np.float64))
        if self.dash_period > 0:
            phase = np.mod(u - self.dash_phase, self.dash_period) / self.dash_period
            alpha *= phase < self.dash_duty
        return np.full(np.shape(u), self.value), alpha


@dataclass
class Rectangles(Texture):
    """Posters / signs / tiles: axis-aligned rectangles [u0, v0, u1, v1] with their own values
    and a fine inner pattern (print), so every poster has gradients inside."""

    rects: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))  # (M, 4)
    values: np.ndarray = field(default_factory=lambda: np.zeros(0))      # (M,)
    print_contrast: float = 0.35
    seed: int = 2

    def sample(self, u, v):
        value = np.zeros(np.shape(u))
        alpha = np.zeros(np.shape(u))
        rects = np.asarray(self.rects)
        if np.size(u) == 0 or rects.size == 0:
            return value, alpha
        near = (rects[:, 2] >= u.min()) & (rects[:, 0] <= u.max()) & (rects[:, 3] >= v.min()) & (
            rects[:, 1] <= v.max())
        for k in np.flatnonzero(near):
            u0, v0, u1, v1 = rects[k]
            inside = (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)
            if not inside.any():
                continue
            pat = value_noise(u[inside] - u0, v[inside] - v0, 0.25, self.seed + k, 2)
            value[inside] = self.values[k] * (1 - self.print_contrast * pat)
            alpha[inside] = 1.0
        return value, alpha

    @classmethod
    def random(cls, rng: np.random.Generator, u_range: tuple[float, float],
               v_range: tuple[float, float], count: int, size: tuple[float, float] = (0.6, 1.6),
               values: tuple[float, float] = (0.05, 0.95), seed: int = 2) -> "Rectangles":
        w = rng.uniform(*size, count)
        h = rng.uniform(size[0], size[1], count) * 0.8
        u0 = rng.uniform(u_range[0], u_range[1] - w.max(initial=0), count)
        v0 = rng.uniform(v_range[0], max(v_range[1] - h.max(initial=0), v_range[0] + 1e-3), count)
        rects = np.stack([u0, v0, u0 + w, v0 + h], axis=1)
        return cls(rects=rects, values=rng.uniform(*values, count), seed=seed)


@dataclass
class Grid(Texture):
    """Periodic rectangles (windows, tiles, lamps): cell period (pu, pv), rectangle size (wu, wv);
    `fill` of the cells are painted, each with its own value in lo..hi."""

    period: tuple[float, float] = (3.0, 3.2)
    size: tuple[float, float] = (1.4, 1.6)
    offset: tuple[float, float] = (0.0, 0.0)
    lo: float = 0.05
    hi: float = 0.3
    fill: float = 1.0
    seed: int = 4

    def sample(self, u, v):
        (pu, pv), (wu, wv) = self.period, self.size
        uu, vv = u - self.offset[0], v - self.offset[1]
        iu, iv = np.floor(uu / pu), np.floor(vv / pv)
        inside = (uu - iu * pu < wu) & (vv - iv * pv < wv)
        pick = hash01(iu, iv, self.seed)
        alpha = (inside & (pick < self.fill)).astype(np.float64)
        return self.lo + (self.hi - self.lo) * hash01(iu, iv, self.seed + 1), alpha


@dataclass
class Bricks(Texture):
    """Running-bond brickwork: per-brick reflectivity variation, dark mortar joints."""

    brick: tuple[float, float] = (0.25, 0.075)
    mortar: float = 0.012
    lo: float = 0.25
    hi: float = 0.45
    mortar_value: float = 0.6
    seed: int = 3

    def sample(self, u, v):
        bw, bh = self.brick
        row = np.floor(v / bh)
        uu = u + 0.5 * bw * np.mod(row, 2)
        col = np.floor(uu / bw)
        value = self.lo + (self.hi - self.lo) * hash01(col, row, self.seed)
        du, dv = uu - col * bw, v - row * bh
        joint = (du < self.mortar) | (dv < self.mortar)
        return np.where(joint, self.mortar_value, value), np.ones(np.shape(u))


@dataclass
class Layered(Texture):
    """A base texture with overlays painted over it in order (alpha blending)."""

    layers: list[Texture] = field(default_factory=list)

    def sample(self, u, v):
        value, alpha = self.layers[0].sample(u, v)
        for layer in self.layers[1:]:
            val, a = layer.sample(u, v)
            value = value * (1 - a) + val * a
            alpha = np.maximum(alpha, a)
        return value, alpha
