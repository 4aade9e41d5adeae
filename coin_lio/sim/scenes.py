"""Named, seeded scenes with a path through their free space (world frame: z up, metres).

tunnel    infinite straight tunnel along x, uniform cross-section: geometry cannot see motion
          along x (LiDAR-only odometry degenerates there); walls and floor are textured.
field     flat textured ground and nothing else: x, y and yaw are unobservable by geometry.
corridor  rectangular loop corridor with pilasters and doorframes: well-conditioned.
urban     street loop around a block: buildings (some rotated), poles, parked cars.
stairs    a wide flight of stairs between two plazas, walked up and down in a loop.
terrain   rolling height-field hills with a few trees.
Each scene has at most a few dozen primitives; the same (name, seed) gives the same scene.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from coin_lio.sim import textures as tx
from coin_lio.sim.primitives import Box, Cylinder, HeightField, Plane
from coin_lio.sim.scene import Scene

SCENES: dict[str, Callable[[int, float], "SceneSpec"]] = {}


@dataclass
class SceneSpec:
    scene: Scene
    waypoints: np.ndarray    # (K, 3) path of the body through free space
    closed: bool             # loop (repeatable) or open polyline


def register(name: str):
    def deco(fn):
        SCENES[name] = fn
        return fn
    return deco


def make_scene(name: str, seed: int = 0, path_length: float = 300.0) -> SceneSpec:
    """Build a named scene; `path_length` is the least length of open paths (tunnel)."""
    if name not in SCENES:
        raise ValueError(f"unknown scene '{name}'; choose from {sorted(SCENES)}")
    return SCENES[name](int(seed), float(path_length))


def _rounded_rect(hx: float, hy: float, r: float, step: float = 1.0) -> np.ndarray:
    """(K, 2) points around the rectangle |x| <= hx, |y| <= hy, corner radius r, anticlockwise."""
    pts = []
    corners = [(hx - r, hy - r, 0.0), (-hx + r, hy - r, 0.5 * np.pi),
               (-hx + r, -hy + r, np.pi), (hx - r, -hy + r, 1.5 * np.pi)]
    for k, (cx, cy, a0) in enumerate(corners):
        for a in np.linspace(a0, a0 + 0.5 * np.pi, 5):
            pts.append((cx + r * np.cos(a), cy + r * np.sin(a)))
        nx, ny, _ = corners[(k + 1) % 4]
        end = np.array([nx + r * np.cos(a0 + 0.5 * np.pi), ny + r * np.sin(a0 + 0.5 * np.pi)])
        start = np.array(pts[-1])
        n = int(np.linalg.norm(end - start) // step)
        for f in np.arange(1, n) / n:
            pts.append(tuple(start + f * (end - start)))
    return np.asarray(pts)


@register("tunnel")
def tunnel(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 1])
    radius, axis_z, half_len = 3.0, 1.2, path_length / 2 + 150.0
    posters = tx.Rectangles.random(rng, (-half_len, half_len), (3.6, 5.2), int(half_len / 5),
                                   size=(0.5, 1.4), seed=seed + 20)
    posters_r = tx.Rectangles.random(rng, (-half_len, half_len), (-5.2, -3.6), int(half_len / 5),
                                     size=(0.5, 1.4), seed=seed + 21)
    markers = tx.Stripes(positions=(4.2, -4.2), width=0.15, value=1.4, dash_period=25.0,
                         dash_duty=0.04)
    wall = tx.Layered([tx.Noise(0.22, 0.45, 1.5, 3, seed + 1),
                       tx.Blobs(0.07, 2.5, 0.7, 0.05, seed + 2),
                       tx.Blobs(0.6, 1.2, 0.8, 0.03, seed + 3), posters, posters_r, markers,
                       tx.Stripes(positions=(2.8, -2.8), width=0.1, value=0.85)])
    floor = tx.Layered([tx.Noise(0.08, 0.22, 0.8, 3, seed + 4),
                        tx.Blobs(0.03, 1.8, 0.72, 0.05, seed + 5),
                        tx.Stripes(positions=(0.0,), width=0.12, value=0.9, dash_period=6.0,
                                   dash_duty=0.5),
                        tx.Stripes(positions=(-2.2, 2.2), width=0.1, value=0.8)])
    prims = [Cylinder(point=(0.0, 0.0, axis_z), axis=(1.0, 0.0, 0.0), radius=radius,
                      ref_dir=(0.0, 0.0, 1.0), texture=wall),
             Plane(point=(0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0), u_axis=(1.0, 0.0, 0.0),
                   texture=floor)]
    x = np.arange(-path_length / 2, path_length / 2 + 1e-9, 5.0)
    ph = rng.uniform(0, 2 * np.pi, 2)
    y = 0.5 * np.sin(2 * np.pi * x / 37.0 + ph[0]) + 0.2 * np.sin(2 * np.pi * x / 13.0 + ph[1])
    z = 1.4 + 0.1 * np.sin(2 * np.pi * x / 23.0 + ph[0])
    scene = Scene("tunnel", prims, ambient_level=15.0, sky_ambient=0.0, seed=seed)
    return SceneSpec(scene, np.stack([x, y, z], axis=1), closed=False)


@register("field")
def field(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 2])
    ground = tx.Layered([tx.Noise(0.18, 0.42, 3.0, 4, seed + 1),
                         tx.Noise(0.15, 0.5, 0.35, 2, seed + 2),
                         tx.Blobs(0.55, 7.0, 0.66, 0.05, seed + 3),
                         tx.Blobs(0.08, 4.0, 0.75, 0.05, seed + 4),
                         tx.Stripes(positions=(-30.0, 30.0), width=0.12, value=0.95),
                         tx.Stripes(positions=(-45.0, 0.0, 45.0), width=0.12, value=0.95,
                                    along="v")])
    prims = [Plane(point=(0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0), texture=ground)]
    ang = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    k = rng.uniform(0, 2 * np.pi, 3)
    rad = 26.0 + 4.0 * np.sin(2 * ang + k[0]) + 2.0 * np.sin(3 * ang + k[1])
    pts = np.stack([1.3 * rad * np.cos(ang), rad * np.sin(ang), 1.5 + 0.2 * np.sin(ang + k[2])], 1)
    scene = Scene("field", prims, ambient_level=500.0, sky_ambient=180.0, seed=seed)
    return SceneSpec(scene, pts, closed=True)


@register("corridor")
def corridor(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 3])
    hx, hy, width, height = 22.0, 14.0, 3.0, 3.0
    posters = tx.Grid(period=(5.3, 10.0), size=(0.8, 1.1), offset=(0.4, 1.0), lo=0.05, hi=0.9,
                      fill=0.6, seed=seed + 1)
    wall = tx.Layered([tx.Noise(0.45, 0.7, 1.0, 3, seed + 2),
                       tx.Blobs(0.2, 1.5, 0.75, 0.05, seed + 3),
                       posters, tx.Stripes(positions=(0.1,), width=0.2, value=0.15)])
    floor = tx.Layered([tx.Bricks((0.6, 0.6), 0.01, 0.25, 0.45, 0.1, seed + 4),
                        tx.Blobs(0.08, 1.0, 0.78, 0.05, seed + 5)])
    ceiling = tx.Layered([tx.Noise(0.5, 0.7, 0.5, 2, seed + 6),
                          tx.Grid(period=(4.0, 4.0), size=(1.2, 0.3), lo=1.2, hi=1.4,
                                  seed=seed + 7)])
    prims = [Plane(point=(0, 0, 0), normal=(0, 0, 1), texture=floor),
             Plane(point=(0, 0, height), normal=(0, 0, -1), texture=ceiling),
             Box(center=(0, 0, height / 2), half_size=(hx - width, hy - width, height / 2 + 0.5),
                 texture=wall)]
    for sx in (-1, 1):
        prims.append(Box(center=(sx * (hx + 0.2), 0, height / 2), half_size=(0.2, hy + 0.4, 2.0),
                         texture=wall))
    for sy in (-1, 1):
        prims.append(Box(center=(0, sy * (hy + 0.2), height / 2), half_size=(hx + 0.4, 0.2, 2.0),
                         texture=wall))
    # pilasters and cabinets along both walls, alternating sides, irregular spacing
    trim = tx.Noise(0.55, 0.85, 0.3, 2, seed + 8)
    centre = _rounded_rect(hx - width / 2, hy - width / 2, 1.2, step=0.25)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(centre, axis=0), axis=1))])
    s = 3.0
    side = 1
    while s < arc[-1] - 3.0 and len(prims) < 34:
        i = int(np.searchsorted(arc, s))
        p, q = centre[i], centre[min(i + 1, len(centre) - 1)]
        t = (q - p) / max(np.linalg.norm(q - p), 1e-9)
        n = np.array([-t[1], t[0]]) * side
        depth = rng.uniform(0.2, 0.45)
        c = p + n * (width / 2 - depth / 2 + 0.05)
        tall = rng.random() < 0.6
        prims.append(Box(center=(c[0], c[1], height / 2 if tall else 0.6),
                         half_size=(rng.uniform(0.2, 0.6), depth / 2, height / 2 if tall else 0.6),
                         yaw_deg=float(np.degrees(np.arctan2(t[1], t[0]))), texture=trim))
        s += rng.uniform(3.5, 6.5)
        side = -side
    path = np.column_stack([_rounded_rect(hx - width / 2, hy - width / 2, 1.2, step=1.5), np.full(
        len(_rounded_rect(hx - width / 2, hy - width / 2, 1.2, step=1.5)), 1.4)])
    scene = Scene("corridor", prims, ambient_level=40.0, sky_ambient=0.0, seed=seed)
    return SceneSpec(scene, path, closed=True)


@register("urban")
def urban(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 4])
    hx, hy = 35.0, 25.0
    asphalt = tx.Layered([tx.Noise(0.06, 0.18, 1.0, 3, seed + 1),
                          tx.Blobs(0.03, 2.0, 0.75, 0.05, seed + 2),
                          tx.Stripes(positions=(-hy, hy), width=0.12, value=0.9, dash_period=5.0),
                          tx.Stripes(positions=(-hx, hx), width=0.12, value=0.9, dash_period=5.0,
                                     along="v"),
                          tx.Grid(period=(12.0, 12.0), size=(3.0, 3.0), lo=0.3, hi=0.5, fill=0.15,
                                  seed=seed + 3)])
    prims = [Plane(point=(0, 0, 0), normal=(0, 0, 1), texture=asphalt)]

    def facade(k: int) -> tx.Texture:
        base = (tx.Bricks((0.25, 0.075), 0.012, 0.2, 0.4, 0.55, seed + 10 + k) if k % 2 else
                tx.Noise(0.35, 0.65, 1.0, 3, seed + 10 + k))
        return tx.Layered([base, tx.Grid(period=(3.0, 3.2), size=(1.4, 1.7), offset=(0.8, 0.9),
                                         lo=0.03, hi=0.2, fill=0.85, seed=seed + 30 + k)])

    k = 0
    for cx in (-18.0, 0.0, 18.0):   # the central block: three buildings with gaps between them
        h = rng.uniform(8, 20)
        prims.append(Box(center=(cx, rng.uniform(-2, 2), h / 2), half_size=(7.5, 16.0, h / 2),
                         texture=facade(k)))
        k += 1
    for sx, sy in ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (1, 1), (-1, 1), (1, -1)):
        h = rng.uniform(6, 25)
        cx = sx * (hx + 14.0) + rng.uniform(-4, 4) * (sx == 0)
        cy = sy * (hy + 12.0) + rng.uniform(-4, 4) * (sy == 0)
        half = (8.0 if sx else rng.uniform(12, 20), 6.0 if sy else rng.uniform(8, 14), h / 2)
        prims.append(Box(center=(cx, cy, h / 2), half_size=half, yaw_deg=rng.uniform(-12, 12),
                         texture=facade(k)))
        k += 1
    pole_tex = tx.Noise(0.3, 0.5, 0.4, 2, seed + 50)
    poles = [(x, sy * (hy + 5.5)) for x in np.arange(-hx + 3, hx, 14.0) for sy in (-1, 1)]
    poles += [(sx * (hx + 5.5), y) for y in np.arange(-hy + 5, hy, 14.0) for sx in (-1, 1)]
    for px, py in poles:
        prims.append(Cylinder(point=(px, py, 3.0), axis=(0, 0, 1), radius=0.12, half_length=3.0,
                              texture=pole_tex))
    car_tex = tx.Layered([tx.Noise(0.2, 0.8, 2.0, 1, seed + 60),
                          tx.Stripes(positions=(0.0,), width=0.5, value=0.04)])
    for _ in range(6):
        side = rng.integers(4)
        along = rng.uniform(-0.7, 0.7)
        x, y, yaw = [(along * hx, hy + 3.8, 0.0), (along * hx, -hy - 3.8, 0.0),
                     (hx + 3.8, along * hy, 90.0), (-hx - 3.8, along * hy, 90.0)][side]
        prims.append(Box(center=(x, y, 0.75), half_size=(2.1, 0.9, 0.75),
                         yaw_deg=yaw + rng.uniform(-6, 6), texture=car_tex))
    loop = _rounded_rect(hx - 1.5, hy - 1.5, 6.0, step=3.0)
    path = np.column_stack([loop, np.full(len(loop), 1.6)])
    scene = Scene("urban", prims, ambient_level=500.0, sky_ambient=200.0, seed=seed)
    return SceneSpec(scene, path, closed=True)


@register("stairs")
def stairs(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 5])
    n_steps, rise, run, width = 15, 0.17, 0.3, 8.0
    x0 = 0.0
    x_top, top = x0 + n_steps * run, n_steps * rise
    stone = tx.Layered([tx.Noise(0.3, 0.55, 0.6, 3, seed + 1),
                        tx.Blobs(0.12, 1.0, 0.75, 0.05, seed + 2)])
    nosing = tx.Layered([tx.Noise(0.3, 0.55, 0.6, 3, seed + 3),
                         tx.Grid(period=(run, 100.0), size=(0.05, 100.0), lo=0.9, hi=0.9)])
    paving = tx.Layered([tx.Bricks((0.5, 0.5), 0.015, 0.25, 0.5, 0.1, seed + 4),
                         tx.Blobs(0.08, 2.0, 0.72, 0.05, seed + 5)])
    prims = [Plane(point=(0, 0, 0), normal=(0, 0, 1), texture=paving),
             Box(center=(x_top + 12.0, 0, top / 2 - 0.5), half_size=(12.0, 14.0, top / 2 + 0.5),
                 texture=paving)]
    for i in range(n_steps - 1):
        x_front = x0 + i * run
        h = (i + 1) * rise
        prims.append(Box(center=((x_front + x_top) / 2, 0, h / 2),
                         half_size=((x_top - x_front) / 2, width / 2, h / 2), texture=nosing))
    for sy in (-1, 1):   # balustrade walls along the flight
        prims.append(Box(center=(x_top / 2, sy * (width / 2 + 0.15), (top + 1.0) / 2),
                         half_size=(x_top / 2 + 1.0, 0.15, (top + 1.0) / 2), texture=stone))
    facade = tx.Layered([tx.Noise(0.35, 0.6, 1.0, 3, seed + 6),
                         tx.Grid(period=(3.0, 3.5), size=(1.5, 2.0), offset=(0.5, 1.2), lo=0.05,
                                 hi=0.25, fill=0.8, seed=seed + 7)])
    prims.append(Box(center=(x_top + 26.0, 0, 8.0), half_size=(2.0, 16.0, 8.0), texture=facade))
    prims.append(Box(center=(-16.0, 0, 5.0), half_size=(2.0, 16.0, 5.0), texture=facade))
    for sy in (-1, 1):
        prims.append(Box(center=(6.0, sy * 16.0, 4.0), half_size=(24.0, 1.0, 4.0), yaw_deg=0.0,
                         texture=facade))
    for px in rng.uniform(-10, -3, 3):
        py = rng.choice([-1, 1]) * rng.uniform(6, 9)
        prims.append(Cylinder(point=(px, py, 2.0), axis=(0, 0, 1), radius=0.25, half_length=2.0,
                              texture=stone))
    # loop: up the flight on y = -2, turn on the upper plaza, down on y = +2, turn below
    xs_up = np.arange(-8.0, x_top + 8.0, 0.5)
    turn = np.linspace(-0.5 * np.pi, 0.5 * np.pi, 9)
    xy = np.vstack([np.column_stack([xs_up, np.full(xs_up.size, -2.0)]),
                    np.column_stack([x_top + 8.0 + 2.0 * np.cos(turn[1:-1]),
                                     2.0 * np.sin(turn[1:-1])]),
                    np.column_stack([xs_up[::-1], np.full(xs_up.size, 2.0)]),
                    np.column_stack([-8.0 - 2.0 * np.cos(turn[1:-1]), -2.0 * np.sin(turn[1:-1])])])
    f = np.clip((xy[:, 0] - (x0 - 0.8)) / (x_top - x0 + 1.6), 0, 1)
    z = 1.5 + top * f * f * (3 - 2 * f)
    scene = Scene("stairs", prims, ambient_level=400.0, sky_ambient=150.0, seed=seed)
    return SceneSpec(scene, np.column_stack([xy, z]), closed=True)


@register("terrain")
def terrain(seed: int, path_length: float) -> SceneSpec:
    rng = np.random.default_rng([seed, 6])
    cell, n = 2.0, 81
    gx, gy = np.meshgrid(np.arange(n) * cell - 80.0, np.arange(n) * cell - 80.0)
    z = 1.5 * (tx.value_noise(gx, gy, 40.0, seed + 1, 3) - 0.5) * 2
    hf = HeightField(origin=(-80.0, -80.0), cell=cell, heights=z,
                     texture=tx.Layered([tx.Noise(0.15, 0.4, 2.5, 4, seed + 2),
                                         tx.Blobs(0.5, 6.0, 0.68, 0.05, seed + 3)]))
    prims = [hf]
    bark = tx.Noise(0.15, 0.3, 0.3, 2, seed + 4)
    for _ in range(10):    # trees off the elliptic path x = 33.6 cos, y = 28 sin
        r, a = rng.uniform(8, 45), rng.uniform(0, 2 * np.pi)
        if abs(r - 28) < 5:
            r += 10 * np.sign(r - 28 + 1e-9)
        x, y = 1.2 * r * np.cos(a), r * np.sin(a)
        h0 = float(hf.height(np.array([x]), np.array([y]))[0][0])
        prims.append(Cylinder(point=(x, y, h0 + 2.5), axis=(0, 0, 1),
                              radius=rng.uniform(0.15, 0.4), half_length=3.0, texture=bark))
    ang = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    xy = np.column_stack([28 * np.cos(ang) * 1.2, 28 * np.sin(ang)])
    ground = hf.height(xy[:, 0], xy[:, 1])[0]
    scene = Scene("terrain", prims, ambient_level=500.0, sky_ambient=180.0, seed=seed)
    return SceneSpec(scene, np.column_stack([xy, ground + 1.6]), closed=True)


def clearance(scene: Scene, points: np.ndarray, reach: float = 5.0) -> np.ndarray:
    """(N,) distance from each point to the nearest surface along 26 directions (<= reach)."""
    dirs = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)
                     if (i, j, k) != (0, 0, 0)], dtype=np.float64)
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    pts = np.asarray(points, dtype=np.float64)
    o = np.repeat(pts, len(dirs), axis=0)
    d = np.tile(dirs, (len(pts), 1))
    t = scene.cast(o, d, reach).t.reshape(len(pts), len(dirs))
    return np.minimum(t.min(axis=1), reach)
