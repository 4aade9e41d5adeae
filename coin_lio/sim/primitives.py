"""Analytic primitives for ray casting: planes, boxes, cylinders, height fields.

Rays come as origins O (N, 3) and unit directions D (N, 3) in the world frame (primitives get
them transposed, (3, N), so every per-axis operation runs on contiguous rows). Each primitive
returns the distance t (N,) to its first hit in (EPS, t_max], inf where it is missed; after the
nearest primitive is known, it gives the normal and its surface coordinates (u, v) in metres,
on which its texture (coin_lio.sim.textures) is evaluated.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coin_lio.sim.textures import Constant, Texture

EPS = 1e-6


def _unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v)


def _basis(normal: np.ndarray, hint=(1.0, 0.0, 0.0)) -> tuple[np.ndarray, np.ndarray]:
    """Two unit axes spanning the plane orthogonal to `normal`, the first near `hint`."""
    e1 = np.asarray(hint, dtype=np.float64) - np.dot(hint, normal) * normal
    if np.linalg.norm(e1) < 1e-6:
        e1 = np.array([0.0, 1.0, 0.0]) - normal[1] * normal
    e1 = _unit(e1)
    return e1, np.cross(normal, e1)


@dataclass
class Primitive:
    texture: Texture = field(default_factory=Constant)

    def bound(self) -> tuple[np.ndarray, float] | None:
        """(centre, radius) of a bounding sphere, None for unbounded primitives."""
        return None

    def intersect(self, o: np.ndarray, d: np.ndarray, t_max: float) -> np.ndarray:
        """Distances (N,) along rays with origins o (3, N) and unit directions d (3, N)."""
        raise NotImplementedError

    def surface(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(normals (M, 3), uv (M, 2)) at points p (M, 3) on the surface."""
        raise NotImplementedError


@dataclass
class Plane(Primitive):
    """Plane through `point` with `normal`; finite when half_extent = (hu, hv) along (e_u, e_v)."""

    point: tuple = (0.0, 0.0, 0.0)
    normal: tuple = (0.0, 0.0, 1.0)
    u_axis: tuple = (1.0, 0.0, 0.0)
    half_extent: tuple | None = None

    def __post_init__(self) -> None:
        self._c = np.asarray(self.point, dtype=np.float64)
        self._n = _unit(self.normal)
        self._eu, self._ev = _basis(self._n, self.u_axis)

    def bound(self):
        if self.half_extent is None:
            return None
        return self._c, float(np.hypot(*self.half_extent))

    def intersect(self, o, d, t_max):
        denom = self._n @ d
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self._n @ self._c - self._n @ o) / denom
        ok = (np.abs(denom) > 1e-12) & (t > EPS) & (t <= t_max)
        if self.half_extent is not None:
            tt = np.where(ok, t, 0.0)
            rel_u = self._eu @ o + tt * (self._eu @ d) - self._eu @ self._c
            rel_v = self._ev @ o + tt * (self._ev @ d) - self._ev @ self._c
            ok &= (np.abs(rel_u) <= self.half_extent[0]) & (np.abs(rel_v) <= self.half_extent[1])
        return np.where(ok, t, np.inf)

    def surface(self, p):
        rel = p - self._c
        uv = np.stack([rel @ self._eu, rel @ self._ev], axis=1)
        return np.broadcast_to(self._n, p.shape).copy(), uv


@dataclass
class Box(Primitive):
    """Oriented box: centre, half sizes along its axes, yaw (deg) about z; hit from either side."""

    center: tuple = (0.0, 0.0, 0.0)
    half_size: tuple = (0.5, 0.5, 0.5)
    yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        self._c = np.asarray(self.center, dtype=np.float64)
        self._h = np.asarray(self.half_size, dtype=np.float64)
        c, s = np.cos(np.radians(self.yaw_deg)), np.sin(np.radians(self.yaw_deg))
        self._r = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])  # world <- box

    def bound(self):
        return self._c, float(np.linalg.norm(self._h))

    def intersect(self, o, d, t_max):
        rt = self._r.T
        h = self._h[:, None]
        ol = rt @ o - (rt @ self._c)[:, None]                  # (3, N) box frame
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / (rt @ d)
            t1, t2 = (-h - ol) * inv, (h - ol) * inv
        lo, hi = np.fmin(t1, t2), np.fmax(t1, t2)
        t_near = np.fmax(np.fmax(lo[0], lo[1]), lo[2])
        t_far = np.fmin(np.fmin(hi[0], hi[1]), hi[2])
        t = np.where(t_near > EPS, t_near, t_far)
        ok = (t_far >= np.maximum(t_near, EPS)) & (t <= t_max)
        return np.where(ok, t, np.inf)

    def view_bounds(self, eye: np.ndarray,
                    margin: float) -> tuple[float, float, float, float] | None:
        """(azimuth centre, azimuth half width, elevation low, elevation high) in rad covering the
        box seen from `eye` (rays starting within `margin` m of it); None when it surrounds eye."""
        q = self._r.T @ (eye - self._c)
        dist = float(np.linalg.norm(np.maximum(np.abs(q) - self._h, 0.0)))
        if dist < 2.0 * margin + 0.05:
            return None
        delta = float(np.arcsin(min(1.0, margin / dist))) + 1e-3   # rays start within margin
        signs = np.array([[i, j, k] for i in (-1, 1) for j in (-1, 1) for k in (-1, 1)], float)
        corners = (signs * self._h) @ self._r.T + self._c - eye            # (8, 3)
        qxy = np.maximum(np.abs(q[:2]) - self._h[:2], 0.0)
        rho_min = float(np.hypot(*qxy))      # horizontal distance to the footprint
        az_c = float(np.arctan2(*(self._c - eye)[1::-1]))
        if rho_min > 2.0 * margin + 0.05:    # azimuth extremes lie on corners
            rel = np.angle(np.exp(1j * (np.arctan2(corners[:, 1], corners[:, 0]) - az_c)))
            half = float(np.abs(rel).max()) + float(np.arcsin(min(1.0, margin / rho_min))) + 1e-3
        else:                                # eye above / below the footprint: all azimuths
            half = np.pi
        rho_min = max(rho_min - margin, 0.0)
        rho_max = float(np.hypot(corners[:, 0], corners[:, 1]).max())
        zmin, zmax = float(corners[:, 2].min()), float(corners[:, 2].max())
        el_hi = np.arctan2(zmax, rho_min if zmax > 0 else rho_max)
        el_lo = np.arctan2(zmin, rho_min if zmin < 0 else rho_max)
        return az_c, half, float(el_lo) - delta, float(el_hi) + delta

    def surface(self, p):
        pl = (p - self._c) @ self._r
        ratio = np.abs(pl) / self._h
        axis = np.argmax(ratio, axis=1)
        sign = np.sign(pl[np.arange(len(pl)), axis])
        nl = np.zeros_like(pl)
        nl[np.arange(len(pl)), axis] = sign
        others = np.array([[1, 2], [0, 2], [0, 1]])[axis]
        uv = np.take_along_axis(pl, others, axis=1)
        uv[:, 0] += 1000.0 * (2 * axis + (sign > 0))   # each face its own texture region
        return nl @ self._r.T, uv


@dataclass
class Cylinder(Primitive):
    """Cylinder around the axis through `point` along `axis`; finite (no caps) with half_length."""

    point: tuple = (0.0, 0.0, 0.0)
    axis: tuple = (0.0, 0.0, 1.0)
    radius: float = 1.0
    half_length: float | None = None
    ref_dir: tuple = (0.0, 0.0, 1.0)   # angle 0 of the arc coordinate (projected off the axis)

    def __post_init__(self) -> None:
        self._c = np.asarray(self.point, dtype=np.float64)
        self._a = _unit(self.axis)
        hint = np.asarray(self.ref_dir, dtype=np.float64)
        if abs(np.dot(_unit(hint), self._a)) > 0.99:
            hint = np.array([1.0, 0.0, 0.0] if abs(self._a[0]) < 0.9 else [0.0, 1.0, 0.0])
        self._e1, self._e2 = _basis(self._a, hint)

    def bound(self):
        if self.half_length is None:
            return None
        return self._c, float(np.hypot(self.radius, self.half_length))

    def intersect(self, o, d, t_max):
        w = o - self._c[:, None]
        da, wa = self._a @ d, self._a @ w
        dp, wp = d - self._a[:, None] * da, w - self._a[:, None] * wa
        a = (dp * dp).sum(axis=0)
        b = 2.0 * (dp * wp).sum(axis=0)
        c = (wp * wp).sum(axis=0) - self.radius ** 2
        disc = b * b - 4 * a * c
        ok = (disc >= 0) & (a > 1e-14)
        sq = np.sqrt(np.where(ok, disc, 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            roots = np.stack([(-b - sq) / (2 * a), (-b + sq) / (2 * a)])
        t = np.full(o.shape[1], np.inf)
        for r in roots[::-1]:   # nearer root last, so it wins when both are valid
            good = ok & (r > EPS) & (r <= t_max)
            if self.half_length is not None:
                good &= np.abs(wa + r * da) <= self.half_length
            t = np.where(good, r, t)
        return t

    def surface(self, p):
        rel = p - self._c
        ax = rel @ self._a
        radial = rel - ax[:, None] * self._a
        n = radial / np.maximum(np.linalg.norm(radial, axis=1, keepdims=True), 1e-12)
        ang = np.arctan2(n @ self._e2, n @ self._e1)
        return n, np.stack([ax, self.radius * ang], axis=1)


@dataclass
class HeightField(Primitive):
    """Terrain z = h(x, y) on a regular grid (bilinear); ray marching plus bisection."""

    origin: tuple = (0.0, 0.0)          # (x, y) of heights[0, 0]
    cell: float = 1.0
    heights: np.ndarray = field(default_factory=lambda: np.zeros((2, 2)))  # (ny, nx)
    steps: int = 48
    refine: int = 12

    def __post_init__(self) -> None:
        self._z = np.asarray(self.heights, dtype=np.float64)
        ny, nx = self._z.shape
        self._x0, self._y0 = map(float, self.origin)
        self._x1 = self._x0 + (nx - 1) * self.cell
        self._y1 = self._y0 + (ny - 1) * self.cell
        self._zmin, self._zmax = float(self._z.min()) - 1e-3, float(self._z.max()) + 1e-3

    def height(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(h, dh/dx, dh/dy) by bilinear interpolation (clamped at the border)."""
        ny, nx = self._z.shape
        gx = np.clip((x - self._x0) / self.cell, 0, nx - 1 - 1e-9)
        gy = np.clip((y - self._y0) / self.cell, 0, ny - 1 - 1e-9)
        ix, iy = np.floor(gx).astype(np.int64), np.floor(gy).astype(np.int64)
        fx, fy = gx - ix, gy - iy
        z00, z10 = self._z[iy, ix], self._z[iy, ix + 1]
        z01, z11 = self._z[iy + 1, ix], self._z[iy + 1, ix + 1]
        h = (z00 * (1 - fx) + z10 * fx) * (1 - fy) + (z01 * (1 - fx) + z11 * fx) * fy
        dhx = ((z10 - z00) * (1 - fy) + (z11 - z01) * fy) / self.cell
        dhy = ((z01 - z00) * (1 - fx) + (z11 - z10) * fx) / self.cell
        return h, dhx, dhy

    def _above(self, o, d, t):
        x, y, z = o[0] + d[0] * t, o[1] + d[1] * t, o[2] + d[2] * t
        inside = (x >= self._x0) & (x <= self._x1) & (y >= self._y0) & (y <= self._y1)
        return z - self.height(x, y)[0], inside

    def intersect(self, o, d, t_max):
        t = np.full(o.shape[1], np.inf)
        with np.errstate(divide="ignore", invalid="ignore"):
            ta = np.where(np.abs(d[2]) > 1e-12, (self._zmax - o[2]) / d[2], -np.inf)
            tb = np.where(np.abs(d[2]) > 1e-12, (self._zmin - o[2]) / d[2], np.inf)
        flat = np.abs(d[2]) <= 1e-12
        t_lo = np.where(flat, 0.0, np.minimum(ta, tb))
        t_hi = np.where(flat, t_max, np.maximum(ta, tb))
        t_lo, t_hi = np.maximum(t_lo, EPS), np.minimum(t_hi, t_max)
        idx = np.flatnonzero(t_hi > t_lo)
        if idx.size == 0:
            return t
        oo, dd, lo, hi = o[:, idx], d[:, idx], t_lo[idx], t_hi[idx]
        prev_t = lo
        prev_f, _ = self._above(oo, dd, lo)
        found = np.zeros(idx.size, bool)
        a, b = np.zeros(idx.size), np.zeros(idx.size)
        for k in range(1, self.steps + 1):
            tk = lo + (hi - lo) * (k / self.steps)
            fk, _ = self._above(oo, dd, tk)
            cross = ~found & (prev_f > 0) & (fk <= 0)
            a[cross], b[cross] = prev_t[cross], tk[cross]
            found |= cross
            prev_t, prev_f = tk, fk
        for _ in range(self.refine):
            mid = 0.5 * (a + b)
            fm, _ = self._above(oo, dd, mid)
            a, b = np.where(fm > 0, mid, a), np.where(fm > 0, b, mid)
        _, inside = self._above(oo, dd, b)
        hit = found & inside
        t[idx[hit]] = b[hit]
        return t

    def surface(self, p):
        _, dhx, dhy = self.height(p[:, 0], p[:, 1])
        n = np.stack([-dhx, -dhy, np.ones_like(dhx)], axis=1)
        return n / np.linalg.norm(n, axis=1, keepdims=True), p[:, :2].copy()
