"""coin_lio.core.plane_kernel.plane_rows_kernel: the point-to-plane rows of the matched points in
one compiled pass equal the numpy formula they replaced (to rounding: numpy's matrix products
may fuse multiply-adds), for a rotated extrinsic and a tilted, yawed IMU; GeometricResiduals
with the extrinsic's columns keeps the same first six."""
import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.config import LioConfig
from coin_lio.core.geometric_residuals import GeometricResiduals
from coin_lio.core.plane_kernel import plane_rows_kernel
from coin_lio.core.plane_residuals import Planes
from coin_lio.core.state import NavState


def _case(seed: int):
    rng = np.random.default_rng(seed)
    body = rng.normal(size=(500, 3)) * 10
    idx = np.sort(rng.choice(500, 300, replace=False))
    n = rng.normal(size=(300, 3))
    n /= np.linalg.norm(n, axis=1)[:, None]
    x = NavState()
    x.rot = Rotation.from_rotvec(rng.normal(size=3)).as_matrix()
    x.pos = rng.normal(size=3) * 5
    x.rot_il = Rotation.from_rotvec([0.0, 0.0, np.pi]).as_matrix()
    x.pos_il = np.array([-0.006, 0.012, 0.029])
    return body, idx, n, rng.normal(size=300), x


def test_rows_equal_the_numpy_formula():
    for seed in range(3):
        body, idx, n, d, x = _case(seed)
        T = x.lidar_pose()
        world = body @ T[:3, :3].T + T[:3, 3]
        p_i = body[idx] @ x.rot_il.T + x.pos_il
        h_ref = np.einsum("mj,mj->m", world[idx], n) + d
        H_ref = np.hstack([n, np.cross(p_i, n @ x.rot)])
        h, H = plane_rows_kernel(body, idx, n, d, T[:3, :3], T[:3, 3], x.rot_il, x.pos_il, x.rot)
        np.testing.assert_allclose(h, h_ref, rtol=0, atol=1e-12)
        np.testing.assert_allclose(H, H_ref, rtol=0, atol=1e-12)


def test_extrinsic_columns_come_after_the_same_pose_columns():
    body, idx, n, d, x = _case(7)
    out = {}
    for est in (False, True):
        cfg = LioConfig()
        cfg.update.estimate_extrinsic = est
        geo = GeometricResiduals(body, None, cfg)
        geo.planes, geo.search_pose = Planes(idx, n, d), x.lidar_pose()     # no neighbour search
        out[est] = geo(x, 0)
    assert out[True].H.shape == (300, 12) and out[False].H.shape == (300, 6)
    np.testing.assert_array_equal(out[True].H[:, :6], out[False].H)
    np.testing.assert_array_equal(out[True].h, out[False].h)
    Rt_n = n @ x.rot
    np.testing.assert_allclose(out[True].H[:, 9:12], Rt_n, atol=1e-15)
    np.testing.assert_allclose(out[True].H[:, 6:9], np.cross(body[idx], Rt_n @ x.rot_il), atol=1e-12)
