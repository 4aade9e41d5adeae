"""Moving objects of the simulator: pedestrians and vehicles that walk or drive along the path and
cross it, with intensity texture (clothes, paint, a licence plate).

A `Mover` is a body primitive (built around its own origin) carried along a straight line at a
constant velocity during an active window [t_from, t_to] (trajectory time, s); outside the window
it is parked far away and returns nothing. Scene.cast intersects it ray by ray at each ray's own
time, so a sweep sees the object move within the sweep, as a real spinning LiDAR does.
Placement (`place_movers`) is drawn from the sequence seed, relative to where the robot will be,
and kept inside the free space around the path (clearance to the walls).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from coin_lio.sim.primitives import Box, Cylinder, Primitive
from coin_lio.sim.textures import Constant, Layered, Noise, Rectangles, Stripes

PARKED = np.array([0.0, 0.0, -1.0e4])   # where an inactive mover waits (m): below every scene


@dataclass
class Mover(Primitive):
    """`body` (its own frame, centred at the origin) at start + velocity * (t - t_from), t in the window."""

    body: Primitive = field(default_factory=Box)
    start: tuple = (0.0, 0.0, 0.0)          # world position at t_from, m
    velocity: tuple = (0.0, 0.0, 0.0)       # m/s
    t_from: float = 0.0                     # active window, s (trajectory time)
    t_to: float = 0.0
    kind: str = "pedestrian"                # pedestrian | vehicle (for the record)
    moving = True                           # Scene.cast passes ray times to *_at methods

    def __post_init__(self) -> None:
        self.texture = self.body.texture
        self._p0 = np.asarray(self.start, float)
        self._v = np.asarray(self.velocity, float)
        bound = self.body.bound()
        self.reach = float(bound[1]) if bound is not None else 5.0

    def positions(self, times: np.ndarray) -> np.ndarray:
        """(N, 3) world position of the body's origin at `times` (N,) s."""
        t = np.asarray(times, float)
        active = (t >= self.t_from) & (t <= self.t_to)
        pos = self._p0 + np.outer(t - self.t_from, self._v)
        return np.where(active[:, None], pos, PARKED)

    def active_between(self, t0: float, t1: float) -> bool:
        return self.t_from <= t1 and self.t_to >= t0

    def intersect_at(self, o: np.ndarray, d: np.ndarray, t_max: float, times: np.ndarray) -> np.ndarray:
        """Distances (N,) of rays o, d (3, N) fired at `times` (N,)."""
        return self.body.intersect(o - self.positions(times).T, d, t_max)

    def surface_at(self, p: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.body.surface(p - self.positions(times))

    def intersect(self, o, d, t_max):       # a mover is only ever cast with ray times
        raise TypeError("a Mover is intersected with intersect_at(o, d, t_max, times)")


def pedestrian(rng: np.random.Generator) -> Cylinder:
    """A walking person as a 1.7 m cylinder of 0.25 m radius; clothes: a shirt and trousers of their
    own reflectivity with stripes and fabric noise."""
    shirt, trousers = rng.uniform(0.08, 0.7, 2)
    texture = Layered([Noise(lo=0.9 * trousers, hi=1.1 * trousers, scale=0.05, seed=int(rng.integers(1 << 30))),
                       Rectangles(rects=np.array([[0.0, -1.0, 0.9, 1.0]]), values=np.array([shirt]),
                                  seed=int(rng.integers(1 << 30))),          # u: height, v: arc
                       Stripes(positions=tuple(rng.uniform(0.1, 0.7, 2)), width=0.08,
                               value=float(rng.uniform(0.2, 0.9)), along="v")])
    return Cylinder(texture, point=(0.0, 0.0, 0.0), axis=(0.0, 0.0, 1.0), radius=0.25, half_length=0.85)


def vehicle(rng: np.random.Generator, yaw_deg: float) -> Box:
    """A car as a 4.4 x 1.8 x 1.5 m box: paint of one reflectivity, dark windows, a retroreflective
    plate (high reflectivity) at each end."""
    paint = float(rng.uniform(0.1, 0.8))
    texture = Layered([Constant(paint), Noise(lo=0.0, hi=0.05, scale=0.3, seed=int(rng.integers(1 << 30))),
                       Stripes(positions=(0.45,), width=0.4, value=0.04, along="u"),
                       Rectangles(rects=np.array([[-0.26, -0.2, 0.26, -0.08]]), values=np.array([2.5]),
                                  print_contrast=0.0)])
    return Box(texture, center=(0.0, 0.0, 0.0), half_size=(2.2, 0.9, 0.75), yaw_deg=yaw_deg)


def place_movers(scene, trajectory, effects, seed: int, t_from: float, t_to: float) -> list[Mover]:
    """Pedestrians (`effects.pedestrians_per_min`) and vehicles (`vehicles_per_min`) passing the
    robot between t_from and t_to (s): round(rate x minutes) of each, at least one of a kind whose
    rate is not 0. Each meets the robot at a random time: a pedestrian walks beside the path towards
    or away from it (1.0-1.6 m/s) or crosses it 4-8 m ahead; a vehicle drives the other way beside
    the path (4-8 m/s). Lateral offsets stay inside the free space left and right of the path
    (up to 8 m), and a mover never comes nearer the robot than MIN_GAP_M (redrawn until it does
    not; one that cannot be placed in 50 draws is left out)."""
    rng = np.random.default_rng([int(seed), 0x6D6F76])
    times = np.arange(t_from, t_to, 0.1)
    if len(times) < 2:
        return []
    _, pos = trajectory.pose(times)
    minutes = (t_to - t_from) / 60.0
    counts = {kind: (max(1, round(rate * minutes)) if rate > 0 else 0)
              for kind, rate in (("pedestrian", effects.pedestrians_per_min), ("vehicle", effects.vehicles_per_min))}
    movers = []
    for kind, n in counts.items():
        for _ in range(n):
            for _try in range(50):               # redraw until it keeps its distance from the robot
                m = _draw_mover(kind, scene, times, pos, rng)
                check = np.linspace(max(m.t_from, t_from), min(m.t_to, t_to), 50)
                if len(check) and _keeps_clear(m, trajectory, check):
                    movers.append(m)
                    break
    return movers


MIN_GAP_M = {"pedestrian": 1.0, "vehicle": 1.5}   # mover centre to the robot, horizontally (m)


def _keeps_clear(m: Mover, trajectory, times: np.ndarray) -> bool:
    """The mover never comes nearer the robot than MIN_GAP_M (people do not walk into it)."""
    _, robot = trajectory.pose(times)
    gap = np.linalg.norm(m.positions(times)[:, :2] - robot[:, :2], axis=1)
    return bool(gap.min() >= MIN_GAP_M[m.kind])


def _draw_mover(kind: str, scene, times: np.ndarray, pos: np.ndarray, rng: np.random.Generator) -> Mover:
    k = int(rng.integers(len(times)))
    te, pe = times[k], pos[k]
    ahead = pos[min(k + 5, len(times) - 1)] - pos[max(k - 5, 0)]
    h = ahead[:2] / max(np.linalg.norm(ahead[:2]), 1e-6)
    heading, left = np.array([h[0], h[1], 0.0]), np.array([-h[1], h[0], 0.0])
    down = scene.cast(pe[None], np.array([[0.0, 0.0, -1.0]]), 20.0).t[0]
    ground = pe[2] - (down if np.isfinite(down) else 1.5)
    side = rng.choice([-1.0, 1.0])
    walls = scene.cast(np.stack([pe, pe]), np.stack([left, -left]), 8.0).t   # free space, m
    room = float(min(walls.min(), 8.0))
    if kind == "pedestrian":
        body, half_h = pedestrian(rng), 0.85
        if rng.random() < 0.5:           # along the path, beside it, passing the robot at te
            at_te = pe + left * side * min(rng.uniform(1.0, 2.5), max(room - 0.6, 0.4))
            vel = heading * rng.choice([-1.0, 1.0]) * rng.uniform(1.0, 1.6)
            window = (te - 5.0, te + 5.0)
        else:                            # across the path ahead, wall to wall, done at te
            span, speed = max(room - 0.5, 0.5), rng.uniform(1.0, 1.6)
            at_te = pe + heading * rng.uniform(4.0, 8.0) + left * side * span
            vel = left * side * speed
            window = (te - 2.0 * span / speed, te)
    else:                                # oncoming, beside the path, level with it at te
        body, half_h = vehicle(rng, float(np.degrees(np.arctan2(h[1], h[0])))), 0.75
        at_te = pe + left * side * min(3.0, max(room - 1.0, 0.9))   # its side 0.1 m off the wall
        vel = -heading * rng.uniform(4.0, 8.0)
        window = (te - 4.0, te + 4.0)
    start = at_te + vel * (window[0] - te)
    start[2] = ground + half_h
    return Mover(body=body, start=tuple(start), velocity=tuple(vel),
                 t_from=float(window[0]), t_to=float(window[1]), kind=kind)
