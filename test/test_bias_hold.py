"""Keeping the IMU biases out of what a scan's geometry leaves weak (coin_lio.core.degeneracy,
coin_lio.core.iekf.consider_covariance): on a flat field (ground plane only: x, y and yaw weak)
the update's accelerometer-bias change along the weak translations (in the IMU frame of a yawed,
tilted body) and its gyro-bias change about the weak rotation are undone, the rest kept; a scan
constrained in every direction keeps all of it; the covariance is Schmidt's consider update,
checked against the explicit-gain formula."""
import numpy as np
from scipy.spatial.transform import Rotation

from coin_lio.config import DegeneracyConfig
from coin_lio.core.degeneracy import analyse, hold_biases, weak_bias_subspace
from coin_lio.core.iekf import Measurements, consider_covariance
from coin_lio.core.state import BA, BG, DIM, NavState


def _states(R: np.ndarray) -> tuple[NavState, NavState]:
    prior = NavState()
    prior.rot, prior.ba, prior.bg = R, np.array([0.01, -0.02, 0.03]), np.array([1e-3, 2e-3, -1e-3])
    post = prior.copy()
    post.ba = prior.ba + np.array([0.2, -0.1, 0.05])       # the update's change, IMU frame
    post.bg = prior.bg + np.array([0.004, -0.002, 0.01])
    return prior, post


def _info(normals: np.ndarray, R: np.ndarray) -> np.ndarray:
    """[rot, pos] information of point-to-plane rows (world normals, points at random in the IMU
    frame) as geometric_residuals builds them: position columns n, rotation p_imu x R^T n."""
    pts = np.random.default_rng(0).uniform(-10, 10, (len(normals), 3))
    J = np.hstack([np.cross(pts, normals @ R), normals])
    return J.T @ J


def test_flat_field_holds_the_bias_change_along_the_weak_directions():
    R = Rotation.from_euler("zyx", [40, 5, -3], degrees=True).as_matrix()
    prior, post = _states(R)
    ground = np.tile([0.0, 0.0, 1.0], (500, 1))
    degen = analyse(_info(ground, R) + 1e-9 * np.eye(6), ground, DegeneracyConfig())
    assert len(degen.weak_translation) == 2                 # x and y (world)
    hold = weak_bias_subspace(degen, R)
    assert np.isclose(np.trace(hold[BA, BA]), 2) and np.isclose(np.trace(hold[BG, BG]), 1)
    assert np.allclose(hold @ hold, hold) and np.allclose(hold, hold.T)
    hold_biases(post, prior, hold)
    dba_world = R @ (post.ba - prior.ba)
    assert np.allclose(dba_world[:2], 0, atol=1e-12)        # nothing along the field
    assert np.isclose(dba_world[2], (R @ np.array([0.2, -0.1, 0.05]))[2])   # vertical kept
    yaw_axis = R.T @ np.array([0.0, 0.0, 1.0])              # about the normal, in the IMU frame
    assert abs(yaw_axis @ (post.bg - prior.bg)) < 1e-6
    assert np.linalg.norm(post.bg - prior.bg) > 0.003       # roll and pitch rates kept


def test_well_constrained_scan_keeps_the_whole_update():
    R = Rotation.from_euler("zyx", [10, 0, 0], degrees=True).as_matrix()
    prior, post = _states(R)
    box = np.repeat(np.eye(3), 200, axis=0)
    degen = analyse(_info(box, R), box, DegeneracyConfig())
    hold = weak_bias_subspace(degen, R)
    assert not degen.weak.any() and not hold.any()


def test_consider_covariance_is_schmidts_update():
    rng = np.random.default_rng(2)
    L = rng.normal(size=(DIM, DIM))
    P_prior = L @ L.T / DIM + 0.1 * np.eye(DIM)
    H = rng.normal(size=(40, 6))
    var = rng.uniform(0.5, 2.0, 40)
    meas = Measurements(np.zeros(40), H, var)
    H_full = np.hstack([H, np.zeros((40, DIM - 6))])
    R = np.diag(var)
    K = P_prior @ H_full.T @ np.linalg.inv(H_full @ P_prior @ H_full.T + R)   # explicit gain
    P_post = (np.eye(DIM) - K @ H_full) @ P_prior
    assert np.allclose(consider_covariance(P_prior, P_post, meas, np.zeros((DIM, DIM))), P_post, atol=1e-10)
    hold = np.zeros((DIM, DIM))
    u = np.array([0.6, 0.8, 0.0])
    hold[BA, BA] = np.outer(u, u)
    Ks = (np.eye(DIM) - hold) @ K
    A = np.eye(DIM) - Ks @ H_full
    expected = A @ P_prior @ A.T + Ks @ R @ Ks.T
    P = consider_covariance(P_prior, P_post, meas, hold)
    assert np.allclose(P, expected, atol=1e-10)
    assert np.isclose(u @ P[BA, BA] @ u, u @ P_prior[BA, BA] @ u)          # held: its prior variance
    assert u @ P_post[BA, BA] @ u < u @ P_prior[BA, BA] @ u                  # which the full update shrank
    assert np.all(np.linalg.eigvalsh(P) > 0)


def _corridor(rng: np.random.Generator) -> np.ndarray:
    """Floor, ceiling and side walls along x, and 12 points on an end wall: x weakly seen."""
    x = rng.uniform(-20, 20, 1500)
    side = rng.uniform(-3, 3, 1500)
    up = rng.uniform(-1.5, 2.0, 1500)
    end = np.c_[np.full(12, 20.0), rng.uniform(-3, 3, 12), rng.uniform(-1.5, 2.0, 12)]
    return np.vstack([np.c_[x, side, np.full(1500, -1.5)], np.c_[x, side, np.full(1500, 2.0)],
                      np.c_[x, np.full(1500, 3.0), up], np.c_[x, np.full(1500, -3.0), up], end])


def _run(hold: bool, movers: bool) -> tuple[np.ndarray, np.ndarray]:
    """A resting sensor in the corridor, its accelerometer 0.05 m/s^2 off along x (mostly taken
    for tilt at initialisation); (x positions, accelerometer bias (3,)) after 3 s. movers: as if
    the free-space check saw people on every scan."""
    from coin_lio.config import LioConfig
    from coin_lio.odometry_driver import ImuReading, OdometryDriver
    from test_odometry_driver_path import _scan

    cfg = LioConfig()
    cfg.update.hold_weak_biases = hold
    driver = OdometryDriver(cfg)
    pts = _corridor(np.random.default_rng(4))
    xs = []
    for k in range(30):
        t0 = 100.0 + 0.1 * k
        for j in range(1, 11):
            driver.add_imu(ImuReading(t0 + 0.01 * j, np.zeros(3), np.array([0.05, 0.0, 9.81])))
        if movers:
            driver.pipeline._movers_seen = 10
        res = driver.process(_scan(pts, t0))
        if res is not None and res.state is not None:
            xs.append(res.state.pos[0])
    return np.array(xs), driver.pipeline.state.ba.copy()


def test_pipeline_holds_the_biases_only_while_movers_are_seen():
    free_x, free_ba = _run(hold=False, movers=True)
    quiet_x, quiet_ba = _run(hold=True, movers=False)
    held_x, held_ba = _run(hold=True, movers=True)
    assert np.array_equal(free_x, quiet_x) and np.array_equal(free_ba, quiet_ba)   # no movers: the same
    assert abs(free_ba[0]) > 2e-5                          # the weak x update moved the bias
    assert abs(held_ba[0]) < 0.02 * abs(free_ba[0])        # held: at its prior (0)
    assert abs(held_ba[1] - free_ba[1]) < 0.05 * abs(free_ba[1])   # y, seen by the walls: updated
    assert np.all(np.isfinite(held_x)) and len(held_x) == len(free_x)
