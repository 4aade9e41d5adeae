"""The map's hash grid (coin_lio/core/voxel_grid.py) answers k-NN exactly as scipy's k-d tree does,
on surfaces, in clutter, far from the map, across growth and with a distance bound."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from coin_lio.core.local_map import voxel_downsample
from coin_lio.core.voxel_grid import VoxelGrid


def _one_per_voxel(points: np.ndarray, voxel: float) -> np.ndarray:
    return points[voxel_downsample(points, voxel)]


def _scene(rng: np.random.Generator) -> np.ndarray:
    """Floor, two walls and clutter, negative coordinates included: (N, 3) m."""
    floor = np.c_[rng.uniform(-20, 20, (6000, 2)), rng.normal(0, 0.02, 6000)]
    wall = np.c_[rng.uniform(-20, 20, 3000), np.full(3000, -4.0), rng.uniform(0, 5, 3000)]
    wall2 = np.c_[np.full(3000, 7.3), rng.uniform(-20, 20, 3000), rng.uniform(0, 5, 3000)]
    clutter = rng.uniform(-20, 20, (800, 3))
    return np.vstack([floor, wall, wall2, clutter])


def _check_same(grid_ans, tree: cKDTree, queries: np.ndarray, k: int, max_dist: float) -> None:
    d_t, i_t = tree.query(queries, k=k, distance_upper_bound=max_dist)
    d_t, i_t = d_t.reshape(len(queries), k), i_t.reshape(len(queries), k)
    d_g, i_g = grid_ans
    np.testing.assert_allclose(d_g, d_t**2, rtol=1e-12)
    np.testing.assert_array_equal(i_g, i_t)


@pytest.mark.parametrize("voxel, ratio", [(0.5, 2), (0.3, 3), (0.45, 1)])
@pytest.mark.parametrize("max_dist", [0.4, 2.24, np.inf])
def test_grid_knn_equals_kd_tree(voxel, ratio, max_dist):
    rng = np.random.default_rng(0)
    pts = _one_per_voxel(_scene(rng), voxel)
    grid = VoxelGrid(voxel, ratio)
    grid.rebuild(pts)
    near = pts[rng.choice(len(pts), 1500)] + rng.normal(0, 0.2, (1500, 3))
    far = rng.uniform(-60, 60, (40, 3))              # outside the map: the widest search
    queries = np.vstack([near, far])
    _check_same(grid.knn(pts, queries, 5, max_dist), cKDTree(pts), queries, 5, max_dist)


def test_grid_grows_in_place_and_matches_after_every_insert():
    rng = np.random.default_rng(1)
    scene = _one_per_voxel(_scene(rng), 0.5)
    order = rng.permutation(len(scene))
    grid, pts = VoxelGrid(0.5, 2), np.zeros((0, 3))
    for chunk in np.array_split(order, 9):           # 9 inserts: the table doubles on the way
        new = scene[chunk]
        pts = np.vstack([pts, new])
        grid.add(pts)
        assert len(grid) == len(pts)
        q = new[:200] + rng.normal(0, 0.3, (min(200, len(new)), 3))
        _check_same(grid.knn(pts, q, 5, 2.24), cKDTree(pts), q, 5, 2.24)
    q = rng.uniform(-20, 20, (300, 3))
    _check_same(grid.knn(pts, q, 1, 0.5), cKDTree(pts), q, 1, 0.5)


def test_fewer_points_than_k_and_empty_grid():
    grid = VoxelGrid(0.5)
    pts = np.array([[0.1, 0.1, 0.1], [2.2, 0.1, 0.1]])
    grid.add(np.zeros((0, 3)))
    d, i = grid.knn(np.zeros((0, 3)), np.ones((2, 3)), 3)
    assert np.all(np.isinf(d)) and np.all(i == 0)
    grid.add(pts)
    d, i = grid.knn(pts, np.zeros((1, 3)), 3)
    np.testing.assert_allclose(d[0, :2], [0.03, 2.2**2 + 0.02])
    assert np.isinf(d[0, 2]) and i[0, 2] == 2 and list(i[0, :2]) == [0, 1]


def test_grid_refuses_two_points_in_one_voxel_and_points_it_does_not_index():
    grid = VoxelGrid(0.5, 1)
    with pytest.raises(ValueError, match="one point per voxel"):
        grid.add(np.array([[0.1, 0.1, 0.1], [0.2, 0.2, 0.2]]))
    grid = VoxelGrid(0.5, 2)
    grid.add(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="does not index"):
        grid.knn(np.zeros((2, 3)), np.zeros((1, 3)), 1)
    with pytest.raises(ValueError, match="rebuild"):
        grid.add(np.zeros((0, 3)))
