"""Scenes: primitives plus lighting, and the vectorised nearest-hit ray cast over all of them.

Per primitive the rays are first culled (a view cone for boxes, a bounding sphere otherwise,
nothing for unbounded primitives), then intersected; after the nearest hit is known, normals,
surface coordinates and the texture are evaluated only on the rays that primitive won.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from coin_lio.sim.primitives import Box, Cylinder, HeightField, Plane, Primitive

__all__ = ["Box", "Cylinder", "HeightField", "Hits", "Plane", "Primitive", "Scene"]


@dataclass
class Hits:
    """Result of Scene.cast for N rays."""

    t: np.ndarray            # (N,) distance along the ray, inf when nothing was hit
    normal: np.ndarray       # (N, 3) unit normals (zeros where missed)
    reflectivity: np.ndarray  # (N,) texture value at the hit (0 where missed)
    primitive: np.ndarray    # (N,) index of the primitive hit, -1 where missed

    @property
    def hit(self) -> np.ndarray:
        return np.isfinite(self.t)


@dataclass
class Scene:
    """A named set of primitives plus lighting for the ambient (near-IR) channel."""

    name: str
    primitives: list[Primitive]
    ambient_level: float = 50.0     # counts of near-IR background on a white surface
    sky_ambient: float = 0.0        # counts for rays that hit nothing
    sun_direction: tuple = (0.3, 0.2, 0.93)
    seed: int = 0

    def cast(self, origins: np.ndarray, directions: np.ndarray, t_max: float,
             times: np.ndarray | None = None) -> Hits:
        """Nearest hits of rays (N, 3) with unit directions, up to t_max metres. `times` (N,), s:
        when each ray is fired, for moving primitives (coin_lio.sim.movers; skipped without it)."""
        o = np.ascontiguousarray(origins, dtype=np.float64)
        d = np.ascontiguousarray(directions, dtype=np.float64)
        n = len(o)
        o3, d3 = np.ascontiguousarray(o.T), np.ascontiguousarray(d.T)     # (3, N)
        od, oo = (o3 * d3).sum(axis=0), (o3 * o3).sum(axis=0)
        best = np.full(n, np.inf)
        prim = np.full(n, -1, dtype=np.int32)
        centre = o3.mean(axis=1)
        spread = float(np.sqrt(((o3 - centre[:, None]) ** 2).sum(axis=0).max(initial=0.0)))
        az = el = None
        for k, p in enumerate(self.primitives):
            if getattr(p, "moving", False):
                if times is not None:
                    self._cast_mover(k, p, o3, d3, t_max, np.asarray(times, float), centre, spread, best, prim)
                continue
            b = p.bound()
            if b is None:
                t = p.intersect(o3, d3, t_max)
                closer = t < best
                best[closer], prim[closer] = t[closer], k
                continue
            c, r = b
            if np.linalg.norm(c - centre) - r - spread > t_max:
                continue
            view = p.view_bounds(centre, spread) if hasattr(p, "view_bounds") else None
            if view is not None:
                if az is None:
                    az, el = np.arctan2(d3[1], d3[0]), np.arcsin(np.clip(d3[2], -1.0, 1.0))
                az_c, half, el_lo, el_hi = view
                keep = (el >= el_lo) & (el <= el_hi)
                if half < np.pi:
                    keep &= np.abs(np.mod(az - az_c + np.pi, 2 * np.pi) - np.pi) <= half
                idx = np.flatnonzero(keep)
            else:
                proj = c @ d3 - od                               # (c - o) . d
                dist2 = c @ c - 2.0 * (c @ o3) + oo               # |c - o|^2
                idx = np.flatnonzero((dist2 - proj * proj <= r * r) & (proj + r > 0))
            if idx.size == 0:
                continue
            t = p.intersect(o3[:, idx], d3[:, idx], t_max)
            closer = t < best[idx]
            best[idx[closer]], prim[idx[closer]] = t[closer], k
        normal = np.zeros((n, 3))
        refl = np.zeros(n)
        for k in np.unique(prim[prim >= 0]):
            idx = np.flatnonzero(prim == k)
            pts = o[idx] + d[idx] * best[idx, None]
            p = self.primitives[k]
            nrm, uv = p.surface_at(pts, times[idx]) if getattr(p, "moving", False) else p.surface(pts)
            normal[idx] = nrm
            refl[idx] = p.texture(uv)
        return Hits(best, normal, np.clip(refl, 0.0, None), prim)

    @staticmethod
    def _cast_mover(k, p, o3, d3, t_max, times, centre, spread, best, prim) -> None:
        """Rays that a moving primitive can reach: fired in its active window, its track within
        range of the rays' origins; nearer hits update best / prim in place."""
        lo, hi = float(times.min()), float(times.max())
        if not p.active_between(lo, hi):
            return
        ends = p.positions(np.array([max(lo, p.t_from), min(hi, p.t_to)]))        # (2, 3)
        if np.linalg.norm(ends - centre, axis=1).min() - p.reach - spread > t_max + np.linalg.norm(ends[1] - ends[0]):
            return
        idx = np.flatnonzero((times >= p.t_from) & (times <= p.t_to))
        t = p.intersect_at(o3[:, idx], d3[:, idx], t_max, times[idx])
        closer = t < best[idx]
        best[idx[closer]], prim[idx[closer]] = t[closer], k
