"""Moving objects kept out of the odometry's map (coin_lio.core.static_confirmation): a new voxel
enters only when seen again after confirm_s; a transient expires."""
from __future__ import annotations

import numpy as np
import pytest

from coin_lio.config import MapConfig
from coin_lio.core.local_map import LocalMap, voxel_keys
from coin_lio.core.static_confirmation import StaticConfirmation


def test_a_voxel_waits_until_seen_again_after_confirm_s():
    c = StaticConfirmation(1.0)
    keys = np.array([5, 9], dtype=np.int64)
    assert c.confirm(keys, 0.0).tolist() == [False, False] and len(c) == 2
    assert c.confirm(keys, 0.5).tolist() == [False, False]
    assert c.confirm(keys, 1.0).tolist() == [True, True] and len(c) == 0


def test_a_transient_expires_and_a_gap_starts_over():
    c = StaticConfirmation(1.0)
    c.confirm(np.array([1, 2], dtype=np.int64), 0.0)
    c.confirm(np.array([2], dtype=np.int64), 0.6)      # 1 not seen again
    assert c.confirm(np.array([7], dtype=np.int64), 1.7).tolist() == [False]
    assert c.keys.tolist() == [7] and c.expired_total == 2 and c.new_total == 3   # 1 and 2 expired
    c2 = StaticConfirmation(1.0)
    c2.confirm(np.array([3], dtype=np.int64), 0.0)
    c2.confirm(np.array([4], dtype=np.int64), 0.9)     # keeps the set alive, 3 is not seen
    assert c2.confirm(np.array([3], dtype=np.int64), 1.05).tolist() == [False]   # 3: seen after 1.05 s gap
    assert c2.confirm(np.array([3], dtype=np.int64), 1.5).tolist() == [False]    # restarted at 1.05
    assert c2.confirm(np.array([3], dtype=np.int64), 2.1).tolist() == [True]


def test_the_map_keeps_a_walker_out_and_the_ground_in():
    m = LocalMap(MapConfig(voxel_size=0.5, confirm_s=1.0))
    ground = np.stack(np.meshgrid(np.arange(-5, 5, 0.25), np.arange(-5, 5, 0.25), [0.0]), -1).reshape(-1, 3)
    m.insert(ground)                                   # the first scan: at once
    n0, before = len(m), set(voxel_keys(m.points, 0.5).tolist())
    wall = np.stack(np.meshgrid([3.0], np.arange(-2, 2, 0.25), np.arange(0.25, 2, 0.25)), -1).reshape(-1, 3)
    for k in range(12):                                # 10 Hz: a wall that stays, a person who walks
        t = 0.1 * k
        person = np.stack(np.meshgrid([0.0], np.arange(-0.2, 0.25, 0.1), np.arange(0.25, 1.7, 0.25)),
                          -1).reshape(-1, 3) + [1.3 * t - 2.0, 1.5, 0.0]
        m.insert(np.vstack([wall, person]), t)
    keys = set(voxel_keys(m.points, 0.5).tolist())
    assert set(voxel_keys(wall, 0.5).tolist()) <= keys, "the wall was confirmed"
    assert len(m) - n0 == len(set(voxel_keys(wall, 0.5).tolist()) - before), "no voxel of the walker entered"
    assert m.has_point_near(wall[:3]).all() and not m.has_point_near(np.array([[0.0, 1.5, 1.0]]))[0]


def test_config_checks_confirm_s():
    with pytest.raises(ValueError, match="confirm_s"):
        MapConfig(confirm_s=-1.0)
    assert MapConfig().confirm_s == 1.0
