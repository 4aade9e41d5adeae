"""Moving objects in the simulator (coin_lio.sim.movers): a mover is hit ray by ray at each ray's
firing time, placement stays in the free space beside the path, and both sensor models see the
people and cars with texture."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.sim.lidar_model import OusterConfig, VelodyneConfig
from coin_lio.sim.movers import MIN_GAP_M, Mover, pedestrian, place_movers, vehicle
from coin_lio.sim.primitives import Cylinder, Plane
from coin_lio.sim.scene import Scene
from coin_lio.sim.sensor_effects import SensorEffects
from coin_lio.sim.sequence import SequenceConfig, build


def _walker(t_from=0.0, t_to=10.0) -> Mover:
    body = Cylinder(point=(0.0, 0.0, 0.0), axis=(0.0, 0.0, 1.0), radius=0.25, half_length=0.85)
    return Mover(body.texture, body=body, start=(5.0, -2.0, 0.85), velocity=(0.0, 1.0, 0.0),
                 t_from=t_from, t_to=t_to)


def test_a_mover_moves_in_its_window_and_is_parked_outside():
    m = _walker(1.0, 5.0)
    pos = m.positions(np.array([0.5, 1.0, 3.0, 5.0, 6.0]))
    assert np.allclose(pos[1], (5.0, -2.0, 0.85)) and np.allclose(pos[2], (5.0, 0.0, 0.85))
    assert np.allclose(pos[3], (5.0, 2.0, 0.85))
    assert pos[0][2] < -1000 and pos[4][2] < -1000
    assert m.active_between(4.0, 9.0) and not m.active_between(5.5, 9.0)
    with pytest.raises(TypeError, match="intersect_at"):
        m.intersect(np.zeros((3, 1)), np.ones((3, 1)), 10.0)


def test_scene_cast_hits_the_mover_where_it_is_when_the_ray_fires():
    m = _walker()
    scene = Scene("flat", [Plane(point=(0.0, 0.0, 0.0), normal=(0.0, 0.0, 1.0)), m])
    o = np.tile([[0.0, 0.0, 0.85]], (3, 1))
    d = np.tile([[1.0, 0.0, 0.0]], (3, 1))
    hits = scene.cast(o, d, 50.0, times=np.array([2.0, 0.0, 4.0]))   # at x=5: y = -2+t, so t=2 only
    assert hits.primitive.tolist() == [1, -1, -1]
    assert hits.t[0] == pytest.approx(4.75, abs=1e-6) and np.allclose(hits.normal[0], (-1.0, 0.0, 0.0))
    assert scene.cast(o, d, 50.0).primitive.tolist() == [-1, -1, -1]     # no times: movers skipped


def test_placement_counts_and_free_space_and_the_seed():
    cfg = SequenceConfig(scene="tunnel", duration=10.0, seed=3,
                         effects=SensorEffects(pedestrians_per_min=12.0, vehicles_per_min=4.0),
                         ouster=OusterConfig(rows=32, cols=512))
    spec, traj, _, frames = build(cfg)
    movers = frames["movers"]
    kinds = [m.kind for m in movers]
    assert kinds.count("pedestrian") == 2 and kinds.count("vehicle") == 1   # 12/min, 4/min x 8.5 s
    assert [m.start for m in build(cfg)[3]["movers"]] == [m.start for m in movers]
    static = Scene("walls", spec.scene.primitives[: len(spec.scene.primitives) - len(movers)])
    for m in movers:
        mid = m.positions(np.array([(m.t_from + m.t_to) / 2]))[0]
        dirs = np.array([[np.cos(a), np.sin(a), 0.0] for a in np.linspace(0, 2 * np.pi, 16, endpoint=False)])
        free = static.cast(np.tile(mid, (16, 1)), dirs, 10.0).t.min()
        assert free > 0.2, f"{m.kind} at {mid} is inside a wall ({free:.2f} m free)"
        t = np.linspace(max(m.t_from, 1.5), min(m.t_to, 10.0), 40)
        gap = np.linalg.norm(m.positions(t)[:, :2] - traj.pose(t)[1][:, :2], axis=1).min()
        assert gap >= MIN_GAP_M[m.kind], f"{m.kind} comes {gap:.2f} m near the robot"
        speed = np.linalg.norm(m.velocity)
        assert (1.0 <= speed <= 1.6) if m.kind == "pedestrian" else (4.0 <= speed <= 8.0)
    assert SensorEffects().enabled() == [] and "moving_objects" in SensorEffects.realistic().enabled()
    with pytest.raises(ValueError, match="pedestrians_per_min"):
        SensorEffects(pedestrians_per_min=-1.0)


@pytest.mark.parametrize("sensor", ["ouster", "velodyne"])
def test_both_sensor_models_see_textured_movers(sensor):
    kw = ({"ouster": OusterConfig(rows=64, cols=512)} if sensor == "ouster"
          else {"velodyne": VelodyneConfig(rings=32, cols=1024)})
    cfg = SequenceConfig(scene="urban", duration=10.0, seed=0, sensor=sensor,
                         effects=SensorEffects(pedestrians_per_min=30.0, vehicles_per_min=12.0), **kw)
    spec, traj, sim, frames = build(cfg)
    n_static = len(spec.scene.primitives) - len(frames["movers"])
    on_movers, values = 0, []
    for t in np.arange(2.0, 10.0, 1.0):
        o, d = sim.rays(traj, t)
        fired = t + np.broadcast_to(sim.point_offsets_s, sim.shape).reshape(-1)
        hits = spec.scene.cast(o.reshape(-1, 3), d.reshape(-1, 3), 80.0, fired)
        on = hits.primitive >= n_static
        on_movers += int(on.sum())
        values.append(hits.reflectivity[on])
    values = np.concatenate(values)
    assert on_movers > 200, f"{sensor}: {on_movers} returns on movers over 8 sweeps"
    assert values.std() > 0.05, "movers carry texture (clothes, paint, plates)"


def test_bodies_have_their_real_sizes():
    rng = np.random.default_rng(0)
    person, car = pedestrian(rng), vehicle(rng, 30.0)
    assert person.radius == 0.25 and 2 * person.half_length == pytest.approx(1.7)
    assert tuple(2 * np.asarray(car.half_size)) == pytest.approx((4.4, 1.8, 1.5))
    assert place_movers(Scene("empty", []), None, SensorEffects(), 0, 0.0, 0.0) == []
