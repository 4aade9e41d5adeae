"""coin_lio.photometric.projection: COIN-LIO's image model on simulated Ouster and Velodyne
clouds -- every point lands on the pixel its index fills, for raw and destaggered clouds and any
rows x columns -- plus the projection Jacobian against finite differences."""
from __future__ import annotations

import json

import numpy as np
import pytest

from coin_lio.photometric.projection import ImageModel, destagger
from coin_lio.sim import (LidarNoiseConfig, LidarSimulator, LinearTrajectory, OusterConfig,
                          VelodyneConfig, coin_lio_u_shift)
from coin_lio.sim.primitives import Cylinder, Plane
from coin_lio.sim.scene import Scene
from coin_lio.sim.textures import Noise


def room() -> Scene:
    """A closed round room: every beam returns."""
    return Scene("room", [Cylinder(point=(0, 0, 0), axis=(0, 0, 1), radius=7.0, texture=Noise()),
                          Plane(point=(0, 0, -4.0), normal=(0, 0, 1), texture=Noise(seed=5)),
                          Plane(point=(0, 0, 5.0), normal=(0, 0, -1), texture=Noise(seed=6))])


_SCANS: dict = {}


def scan(sensor):
    """(simulator, noiseless sweep of the room), cached per sensor configuration."""
    key = repr(sensor)
    if key not in _SCANS:
        sim = LidarSimulator(sensor, LidarNoiseConfig.noiseless())
        _SCANS[key] = sim, sim.scan(room(), LinearTrajectory(p0=(0.3, -0.2, 0.1), yaw_deg=20.0),
                                    0.0, rng=0)
    return _SCANS[key]


def xyz(cloud: np.ndarray) -> np.ndarray:
    return np.stack([cloud[c].reshape(-1) for c in "xyz"], axis=-1).astype(np.float64)


LAYOUTS = [(16, 512), (32, 1024), (64, 512), (128, 1024), (64, 2048)]


@pytest.mark.parametrize("rows,cols", LAYOUTS)
@pytest.mark.parametrize("destaggered", [False, True])
def test_point_projects_to_the_pixel_its_index_fills(rows, cols, destaggered):
    offset = 7 if rows == 64 else 0                # firmware-2.x-style constant in the shifts
    sim, cloud = scan(OusterConfig(rows=rows, cols=cols, destaggered=destaggered,
                                   quantize_azimuths=True, pixel_shift_offset=offset))
    u_shift = coin_lio_u_shift(sim.meta, "os_lidar", offset)
    model = ImageModel.from_metadata(sim.meta, u_shift=u_shift, destaggered=destaggered)
    image, index, rng = model.image_from_cloud(cloud)
    assert image.shape == index.shape == rng.shape == (rows, cols)
    assert image.dtype == np.float32 and index.dtype == np.int64 and rng.dtype == np.float32
    pts = xyz(cloud)
    assert np.all(index >= 0)
    assert np.array_equal(np.sort(index.reshape(-1)), np.arange(pts.shape[0]))
    # point -> pixel -> the same point index
    uv, valid = model.project(pts)
    assert valid.all()
    pu = np.floor(uv[:, 0] + 0.5).astype(int) % cols
    pv = np.rint(uv[:, 1]).astype(int)
    assert np.array_equal(index[pv, pu], np.arange(pts.shape[0]))
    assert np.abs(uv[:, 1] - pv).max() < 0.02
    # pixel_of agrees with the filled image, image and range come from the right points
    r, c = np.divmod(np.arange(rows * cols), cols)
    v, u = model.pixel_of(r, c)
    assert np.array_equal(index[v, u], np.arange(rows * cols))
    np.testing.assert_array_equal(image.reshape(-1)[v * cols + u], cloud["intensity"].reshape(-1))
    np.testing.assert_allclose(rng[v, u], np.linalg.norm(pts, axis=1), rtol=1e-6)
    # the other ordering assumption scrambles the image (the reference's issue with new drivers)
    wrong, _, _ = model.image_from_cloud(cloud, destaggered_input=not destaggered)
    if np.any(np.asarray(sim.meta.pixel_shift_by_row) != sim.meta.pixel_shift_by_row[0]):
        assert not np.array_equal(wrong, image)


@pytest.mark.parametrize("rows,cols", [(32, 512), (128, 1024)])
def test_raw_and_destaggered_clouds_give_the_same_image(rows, cols):
    _, raw = scan(OusterConfig(rows=rows, cols=cols))
    sim, dst = scan(OusterConfig(rows=rows, cols=cols, destaggered=True))
    u_shift = coin_lio_u_shift(sim.meta, "os_lidar")
    m_raw = ImageModel.from_metadata(sim.meta, u_shift=u_shift, destaggered=False)
    m_dst = ImageModel.from_metadata(sim.meta, u_shift=u_shift, destaggered=True)
    a, ia, ra = m_raw.image_from_cloud(raw)
    b, ib, rb = m_dst.image_from_cloud(dst)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ra, rb)
    for name in raw.dtype.names:                     # the same point behind every pixel
        np.testing.assert_array_equal(raw[name].reshape(-1)[ia], dst[name].reshape(-1)[ib])
    # destagger (the sdk's convention) then roll by u_shift is what filling by index does
    ref = np.roll(destagger(raw["intensity"], sim.meta.pixel_shift_by_row), -u_shift, axis=1)
    np.testing.assert_array_equal(a, ref)
    # and the calibration helper finds the u_shift from the cloud alone
    assert m_raw.estimate_u_shift(raw) == u_shift
    assert m_dst.estimate_u_shift(dst) == u_shift


def test_sensor_frame_clouds_use_origin_height_and_u_shift_zero():
    sim, cloud = scan(OusterConfig(rows=64, cols=1024, cloud_frame="os_sensor",
                                   quantize_azimuths=True))
    z0 = float(sim.meta.T_sensor("os_lidar")[2, 3])
    model = ImageModel.from_metadata(sim.meta, u_shift=coin_lio_u_shift(sim.meta, "os_sensor"),
                                     origin_z_m=z0)
    assert model.u_shift == 0
    _, index, _ = model.image_from_cloud(cloud)
    uv, valid = model.project(xyz(cloud))
    assert valid.all()
    pu = np.floor(uv[:, 0] + 0.5).astype(int) % 1024
    assert np.array_equal(index[np.rint(uv[:, 1]).astype(int), pu], np.arange(64 * 1024))


def test_invalid_points_leave_holes_and_min_range_applies():
    sim, cloud = scan(OusterConfig(rows=32, cols=512))
    cloud = cloud.copy()
    cloud["x"][3, 10] = cloud["y"][3, 10] = cloud["z"][3, 10] = 0.0     # no return
    cloud["x"][5, 20] = np.nan
    model = ImageModel.from_metadata(sim.meta, u_shift=256)
    image, index, rng = model.image_from_cloud(cloud, min_range=0.5)
    for r, c in ((3, 10), (5, 20)):
        v, u = model.pixel_of(np.array([r]), np.array([c]))
        assert index[v, u] == -1 and image[v, u] == 0 and rng[v, u] == 0
    assert (index < 0).sum() == 2
    _, index2, _ = model.image_from_cloud(cloud, min_range=100.0)
    assert np.all(index2 < 0)
    with pytest.raises(ValueError, match="64x1024"):
        other = ImageModel.from_metadata(OusterConfig(rows=64, cols=1024).metadata())
        other.image_from_cloud(cloud)
    with pytest.raises(ValueError, match="lacks field 'signal'"):
        model.image_from_cloud(cloud, field="signal")


def test_velodyne_image_by_ring_and_azimuth_bin():
    cfg = VelodyneConfig(rings=16, cols=1800)
    _, cloud = scan(cfg)
    assert cloud.ndim == 1
    model = ImageModel.from_rings(np.sort(cfg.altitudes_deg()), cols=900)
    assert model.shape == (16, 900) and model.kind == "rings"
    image, index, rng = model.image_from_cloud(cloud)
    pts = xyz(cloud)
    filled = index >= 0
    assert filled.mean() > 0.95                      # 2 firings per bin
    rows = np.nonzero(filled)[0]
    # the row is the ring's rank from the top; the pixel's point is the nearest of its bin
    np.testing.assert_array_equal(15 - cloud["ring"][index[filled]], rows)
    uv, _ = model.project(pts[index[filled]])
    cols = np.nonzero(filled)[1]
    np.testing.assert_array_equal(np.floor(uv[:, 0] + 0.5).astype(int) % 900, cols)
    assert np.abs(uv[:, 1] - rows).max() < 0.05
    np.testing.assert_array_equal(image[filled], cloud["intensity"][index[filled]])
    bins = (15 - cloud["ring"].astype(int)) * 900 + np.floor(model.project(pts)[0][:, 0] + 0.5
                                                              ).astype(int) % 900
    nearest = np.full(16 * 900, np.inf)
    np.minimum.at(nearest, bins, np.linalg.norm(pts, axis=1))
    np.testing.assert_allclose(rng.reshape(-1)[filled.reshape(-1)],
                               nearest[filled.reshape(-1)], rtol=1e-6)


@pytest.mark.parametrize("fy_mode", ["nominal", "local"])
def test_projection_jacobian_matches_finite_differences(fy_mode):
    rng = np.random.default_rng(3)
    alt = np.linspace(20.0, -20.0, 33)                 # uniform table: interpolation is linear
    model = ImageModel(altitudes_deg=alt, cols=1024, beam_offset_m=0.0158, jacobian_fy=fy_mode)
    pts = rng.normal(size=(200, 3)) * np.array([8, 8, 1.5])
    pts = pts[np.linalg.norm(pts[:, :2], axis=1) > 1.0]
    uv, valid = model.project(pts)
    pts = pts[valid & (uv[:, 0] > 2) & (uv[:, 0] < 1021)]
    jac = model.project_jacobian(pts)
    eps = 1e-6
    fd = np.zeros_like(jac)
    for j in range(3):
        d = np.zeros(3)
        d[j] = eps
        fd[:, :, j] = (model.project(pts + d)[0] - model.project(pts - d)[0]) / (2 * eps)
    np.testing.assert_allclose(jac[:, 0], fd[:, 0], atol=1e-4, rtol=1e-5)
    spacing_fy = -(alt.size - 1) / np.radians(40.0)   # the table's true slope
    if fy_mode == "local":
        np.testing.assert_allclose(jac[:, 1], fd[:, 1], atol=1e-4, rtol=1e-5)
    else:                                             # nominal fy = -rows / span: factor 33/32
        np.testing.assert_allclose(jac[:, 1] * spacing_fy / model.fy, fd[:, 1], atol=1e-4,
                                   rtol=1e-5)
    assert model.fy == pytest.approx(-33 / np.radians(40.0))


def test_local_jacobian_follows_an_uneven_altitude_table():
    sim, cloud = scan(OusterConfig(rows=32, cols=512))
    model = ImageModel.from_metadata(sim.meta, jacobian_fy="local")
    pts = xyz(cloud)[::37]
    uv, valid = model.project(pts)
    frac = uv[:, 1] - np.floor(uv[:, 1])
    pts = pts[valid & (frac > 0.05) & (frac < 0.95)]   # away from the table's knots
    jac = model.project_jacobian(pts)
    d = np.array([0.0, 0.0, 1e-6])
    fd = (model.project(pts + d)[0][:, 1] - model.project(pts - d)[0][:, 1]) / 2e-6
    np.testing.assert_allclose(jac[:, 1, 2], fd, rtol=1e-4)


def test_metadata_json_in_flat_and_nested_layouts(tmp_path):
    meta = OusterConfig(rows=64, cols=2048, pixel_shift_offset=4).metadata()
    models = []
    for layout in ("legacy", "nested"):
        path = meta.write(tmp_path / f"{layout}.json", layout)
        models.append(ImageModel.from_metadata(path, u_shift=5))
        models.append(ImageModel.from_metadata(json.loads(path.read_text()), u_shift=5))
    for m in models:
        assert m.shape == (64, 2048) and m.u_shift == 5
        assert m.beam_offset_m == pytest.approx(meta.lidar_origin_to_beam_origin_mm * 1e-3)
        np.testing.assert_array_equal(m.pixel_shift_by_row, meta.pixel_shift_by_row)
        np.testing.assert_allclose(m.altitudes_deg, meta.beam_altitude_angles)
        assert m.fx == pytest.approx(-2048 / (2 * np.pi)) and m.cx == 1024


def test_model_rejects_bad_tables():
    with pytest.raises(ValueError, match="strictly decreasing"):
        ImageModel(altitudes_deg=[1.0, 2.0, 0.0], cols=512)
    with pytest.raises(ValueError, match="pixel_shift_by_row"):
        ImageModel(altitudes_deg=[1.0, 0.0], cols=512, pixel_shift_by_row=[0, 0, 0])
    with pytest.raises(ValueError, match="jacobian_fy"):
        ImageModel(altitudes_deg=[1.0, 0.0], cols=512, jacobian_fy="exact")


def test_projection_edges_wrap_and_fov():
    model = ImageModel(altitudes_deg=np.linspace(10, -10, 16), cols=1024)
    pts = np.array([[-5.0, -0.0, 0.0],        # phi = -pi: u = W -> wraps to 0
                    [-5.0, 0.0, 0.0],         # phi = +pi: u = 0
                    [5.0, 0.0, 5.0],          # 45 deg up: outside the vertical FOV
                    [0.0, 0.0, 0.0]])         # the origin
    uv, valid = model.project(pts)
    assert np.all((uv[:, 0] >= 0) & (uv[:, 0] < 1024))
    assert uv[0, 0] == pytest.approx(0.0, abs=1e-6) and uv[1, 0] == pytest.approx(0.0, abs=1e-6)
    assert valid.tolist() == [True, True, False, False]
    # half a row beyond the table's ends still belongs to the top / bottom row
    top, bottom = np.radians([10.0 + 0.6, -10.0 - 0.6])
    edge = np.stack([5 * np.cos([top, bottom]), [0, 0], 5 * np.sin([top, bottom])], axis=1)
    uv, valid = model.project(edge)
    step = 20.0 / 15
    np.testing.assert_allclose(uv[:, 1], [-0.6 / step, 15 + 0.6 / step], atol=1e-3)
    assert valid.tolist() == [True, True]
    uv, valid = model.project(edge * np.array([1, 1, 1.2]))
    assert valid.tolist() == [False, False]
    assert np.all(model.project_jacobian(pts[3:]) == 0)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_row_search_gives_the_interpolated_row_exactly(seed):
    """The projection's row search: on an irregular altitude table (Ouster's are) and on one whose
    rows crowd at the horizon (a gradient beam layout), rays at every altitude exactly, between
    them and beyond the ends get the row of np.interp over the table, and the valid flag of half a
    row past the ends."""
    rng = np.random.default_rng(seed)
    rows = [2, 16, 64, 128][seed]
    alt = np.sort(rng.uniform(-20, 20, rows))[::-1] if rows > 2 else np.array([5.0, -3.0])
    if seed == 3:
        alt = 45.0 * np.linspace(1.0, -1.0, rows) ** 3
    model = ImageModel(altitudes_deg=alt, cols=512)
    theta = np.radians(np.concatenate([alt, rng.uniform(alt[-1] - 3, alt[0] + 3, 4000),
                                       (alt[:-1] + alt[1:]) / 2]))
    pts = np.stack([10 * np.cos(theta), np.zeros_like(theta), 10 * np.sin(theta)], axis=1)
    uv, valid = model.project(pts)
    a = np.radians(alt)
    inside = (theta <= a[0]) & (theta >= a[-1])
    want = np.interp(-theta[inside], -a, np.arange(rows, dtype=float))
    np.testing.assert_allclose(uv[inside, 1], want, rtol=0, atol=1e-9)
    assert valid[inside].all()
    np.testing.assert_array_equal(valid, (uv[:, 1] >= -0.5) & (uv[:, 1] <= rows - 0.5))


def test_one_pass_selection_and_fill_equal_the_two_passes():
    """process_cloud's single pass over the cloud (io.cloud_kernel.select_and_fill) gives the image
    of image_from_cloud and the points of select_points, on a staggered model with missing,
    NaN, too-near and too-far returns."""
    from coin_lio.io.cloud_kernel import gather_points, select_and_fill, select_points

    rng = np.random.default_rng(21)
    h, w = 16, 64
    model = ImageModel(altitudes_deg=np.linspace(15, -15, h), cols=w, u_shift=5,
                       pixel_shift_by_row=rng.integers(-6, 7, h))
    cloud = np.zeros((h, w), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("reflectivity", "<u2")])
    xyz = rng.normal(0, 1, (h, w, 3)) * rng.choice([0.2, 8.0, 300.0], (h, w, 1))
    for j, c in enumerate("xyz"):
        cloud[c] = xyz[..., j]
    cloud["reflectivity"] = rng.integers(0, 4000, (h, w))
    cloud["x"][0, :6] = np.nan
    cloud["x"][1, :6] = cloud["y"][1, :6] = cloud["z"][1, :6] = 0.0
    times = 5.0 + rng.uniform(0, 0.1, (h, w))
    valid = rng.uniform(size=(h, w)) > 0.2
    flat = cloud.reshape(-1)
    args = (flat["x"], flat["y"], flat["z"])
    sel, *filled = select_and_fill(*args, flat["reflectivity"], times.reshape(-1), valid.reshape(-1),
                                   0.65 ** 2, 150.0 ** 2, 4, model.pixel_of_point(), h, w)
    np.testing.assert_array_equal(sel, select_points(*args, times.reshape(-1), valid.reshape(-1),
                                                     0.65 ** 2, 150.0 ** 2, 4))
    for got, want in zip(filled, model.image_from_cloud(cloud, field="reflectivity")):
        np.testing.assert_array_equal(got, want)
    assert 0 < (filled[1] < 0).sum() < h * w and len(sel) > 20
    pts, t = gather_points(*args, times.reshape(-1), sel)                 # the strided fields' points
    np.testing.assert_array_equal(pts, np.stack([a[sel] for a in args], axis=1).astype(np.float64))
    np.testing.assert_array_equal(t, times.reshape(-1)[sel])


def test_pixel_time_projection_is_the_two_projections_and_the_time_lookup():
    """project_at_pixel_time (compiled passes around numpy's arcsin / arctan2) is the image model's
    projection, the time-index lookup at the rounded pixel, the move into that time's frame and
    the projection again; on a staggered 64-row model, with points at the origin, inside the beam
    offset, past the field of view and non-finite."""
    from coin_lio.photometric.projection_kernel import project_at_pixel_time
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(4)
    h, w = 64, 1024
    model = ImageModel(altitudes_deg=np.sort(rng.uniform(-22, 22, h))[::-1], cols=w, u_shift=7,
                       origin_z_m=0.036, beam_offset_m=0.015,
                       pixel_shift_by_row=np.tile([18, 6, -6, -18], h // 4))
    pts = rng.normal(0, 1, (3000, 3)) * rng.choice([0.01, 3.0, 40.0], (3000, 1))
    pts[:4] = [[0, 0, 0.036], [0.01, 0, 0.5], [3, 0, 40.0], [np.nan, 1, 1]]
    u_times = 40
    time_index = rng.integers(0, u_times, (h, w))
    R_u = Rotation.from_rotvec(rng.normal(0, 0.05, (u_times, 3))).as_matrix()
    t_u = rng.normal(0, 0.1, (u_times, 3))
    p_t, k, uv, ok = project_at_pixel_time(pts, *model.projection_args(), time_index, R_u, t_u)

    uv0, ok0 = model.project(pts)
    vi = np.clip(np.rint(np.nan_to_num(uv0[:, 1])), 0, h - 1).astype(int)
    ui = np.rint(np.nan_to_num(uv0[:, 0])).astype(int) % w
    want_k = time_index[vi, ui]
    want_pt = np.einsum("nji,nj->ni", R_u[want_k], pts - t_u[want_k])      # R^T (p - t)
    want_uv, ok1 = model.project(want_pt)
    np.testing.assert_array_equal(k, want_k)
    np.testing.assert_allclose(p_t, want_pt, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ok, ok0 & ok1)
    np.testing.assert_allclose(uv[ok], want_uv[ok], rtol=0, atol=1e-9)
    assert ok.sum() > 500 and not ok[:4].any()


def test_scan_end_points_are_the_imu_and_lidar_frames_of_world_points():
    """scan_end_points: q = R^T (p - pos) (IMU frame) and p_end = R_IL^T (q - t_IL) (scan-end
    LiDAR frame), as the stacked numpy products."""
    from coin_lio.photometric.projection_kernel import scan_end_points
    from scipy.spatial.transform import Rotation

    rng = np.random.default_rng(8)
    world = rng.normal(0, 10, (700, 3))
    rot, rot_il = Rotation.random(2, random_state=3).as_matrix()
    pos, pos_il = rng.normal(size=3), rng.normal(0, 0.1, 3)
    q, p_end = scan_end_points(world, pos, rot, pos_il, rot_il)
    np.testing.assert_allclose(q, (world - pos) @ rot, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p_end, (q - pos_il) @ rot_il, rtol=0, atol=1e-12)
