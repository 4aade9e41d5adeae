"""coin_lio.core.free_space on hand-built range images: a static scene seen twice gives nothing,
an object standing where the earlier rays reached a wall behind it is found, grazing surfaces
and pixels without a return are not judged."""
import numpy as np

from coin_lio.config import FreeSpaceConfig
from coin_lio.core.free_space import FreeSpaceCheck
from coin_lio.photometric.projection import ImageModel

H, W = 32, 512


def _model() -> ImageModel:
    return ImageModel.from_rings(np.linspace(15, -15, H), W)


def _points(model: ImageModel, rng_img: np.ndarray) -> np.ndarray:
    """(N, 3) points of the pixels with a return, by projecting a dense set of directions."""
    v, u = np.nonzero(rng_img > 0)
    az = (u - model.cx) / model.fx            # inverse of u = fx * atan2(y, x) + cx
    alt = np.radians(np.linspace(15, -15, H))[v]
    r = rng_img[v, u]
    return np.stack([r * np.cos(alt) * np.cos(az), r * np.cos(alt) * np.sin(az), r * np.sin(alt)], axis=1)


def _run(images: list[np.ndarray], cfg: FreeSpaceConfig | None = None) -> list:
    model, check, out = _model(), FreeSpaceCheck(cfg or FreeSpaceConfig(lag_scans=1)), []
    for img in images:
        out.append(check.check(_points(model, img), np.eye(4), img, model))
    return out


def test_static_scene_seen_twice_has_nothing_in_free_space():
    wall = np.full((H, W), 20.0, np.float32)
    first, second = _run([wall, wall])
    assert first is None and not second.any()


def test_object_where_the_wall_was_seen_is_found_but_not_the_wall():
    wall = np.full((H, W), 20.0, np.float32)
    walker = wall.copy()
    walker[10:20, 100:106] = 8.0                 # a person 8 m away, in front of the 20 m wall
    _, flags = _run([wall, walker])
    pts_are_walker = np.linalg.norm(_points(_model(), walker), axis=1) < 10
    assert flags[pts_are_walker].mean() > 0.5 and not flags[~pts_are_walker].any()
    _, back = _run([walker, wall])               # where it left: the wall behind is not in free space
    assert not back.any()


def test_grazing_surfaces_and_missing_returns_are_not_judged():
    u = np.arange(W, dtype=np.float32)
    wall = np.where((u >= 100) & (u < 130), 10.0 * 1.15 ** (u - 100), 0.0)   # a wall at grazing incidence
    grazing = np.tile(wall, (H, 1)).astype(np.float32)
    misregistered = np.roll(grazing, 4, axis=1)  # the same wall, 4 pixels off (15 % nearer per pixel)
    _, flags = _run([grazing, misregistered])
    assert not flags.any()
    _, flags = _run([grazing, misregistered], FreeSpaceConfig(lag_scans=1, max_spread=0.99))
    assert flags.any()                           # without the spread rule the wall would be "in free space"
    hole = np.full((H, W), 20.0, np.float32)
    hole[10:20, 100:106] = 0.0                   # no return there before
    obj = np.full((H, W), 20.0, np.float32)
    obj[12:18, 102:104] = 5.0
    _, flags = _run([hole, obj], FreeSpaceConfig(lag_scans=1, open_range_m=0.0))
    assert not flags.any()


def test_open_sky_counts_as_free_only_near_and_never_in_lost_columns():
    """An earlier neighbourhood without any return is open space for points nearer than
    open_range_m (a person's head against the sky), not for farther ones (a dark or grazing
    surface may not return), and not where only some returns are missing (patchy ground) or the
    whole column is (a dropped packet, the column window)."""
    sky = np.full((H, W), 20.0, np.float32)
    sky[:16] = 0.0                               # upper half: no return (sky)
    head = sky.copy()
    head[10:14, 100:104] = 5.0                   # a head 5 m away against the sky
    head[10:14, 300:304] = 15.0                  # something 15 m away against the sky
    _, flags = _run([sky, head])
    r = np.linalg.norm(_points(_model(), head), axis=1)
    assert flags[np.isclose(r, 5.0)].all() and not flags[~np.isclose(r, 5.0)].any()
    lost = sky.copy()
    lost[:, 96:112] = 0.0                        # the head's columns lost in the earlier scan
    _, flags = _run([lost, head])
    assert not flags.any()
    _, flags = _run([sky, head], FreeSpaceConfig(lag_scans=1, open_range_m=0.0))
    assert not flags.any()
    patchy = np.full((H, W), 20.0, np.float32)
    patchy[::2, ::2] = 0.0                       # ground with returns missing here and there
    near = patchy.copy()
    near[10:14, 100:104] = 5.0
    _, flags = _run([patchy, near])
    assert not flags.any()                       # only a neighbourhood without any return is open


def test_neighbourhood_reach_at_a_pixel_equals_the_whole_image_filters():
    """The kernel's per-pixel reach is what eroding and dilating the whole image gives (square
    neighbourhood, replicated borders, no-return pixels and wide spreads not judged), corners and
    edges included, for every radius the config allows."""
    import cv2

    from coin_lio.core.free_space_kernel import neighbourhood_reach

    rng = np.random.default_rng(7)
    img = rng.uniform(2, 40, (12, 50)).astype(np.float32)
    img[rng.random(img.shape) < 0.05] = 0.0
    img[2:10, 5:40] = rng.uniform(20.0, 20.5, (8, 35))            # a smooth patch: judged
    v, u = np.divmod(np.arange(img.size), img.shape[1])
    for radius in (1, 2, 3):
        kernel = np.ones((2 * radius + 1,) * 2, np.uint8)
        near = cv2.erode(img, kernel, borderType=cv2.BORDER_REPLICATE)
        far = cv2.dilate(img, kernel, borderType=cv2.BORDER_REPLICATE)
        near[far - near > 0.1 * near] = 0.0
        got = neighbourhood_reach(img, u, v, radius, 0.1)
        np.testing.assert_array_equal(got, near.reshape(-1))
        assert (got > 0).any() and (got == 0).any()


def test_free_space_test_in_one_pass_equals_the_numpy_steps():
    """in_free_space (one compiled pass) flags what the rounding, clipping, norm, reach and
    comparison in numpy flag: points off the image rows or across the seam, too near, invalid."""
    from coin_lio.core.free_space_kernel import in_free_space, neighbourhood_reach

    rng = np.random.default_rng(11)
    h, w = 16, 120
    img = rng.uniform(3, 30, (h, w)).astype(np.float32)
    img[:, 20:90] = rng.uniform(20.0, 20.5, (h, 70))                 # smooth: judged
    img[rng.random(img.shape) < 0.05] = 0.0
    n = 2000
    uv = np.c_[rng.uniform(-2, w + 1, n), rng.uniform(-3, h + 2, n)]
    p = rng.normal(0, 1, (n, 3)) * rng.choice([0.3, 5.0, 20.0], (n, 1))
    ok = rng.random(n) > 0.1
    got = in_free_space(uv, ok, p, img, 2, 0.1, 1.0, 0.3, 0.05, 0.0, np.zeros(w, bool), np.zeros(h, np.int64), 0)
    u = np.clip(np.rint(uv[:, 0]).astype(np.int64) % w, 0, w - 1)
    v = np.clip(np.rint(uv[:, 1]).astype(np.int64), 0, h - 1)
    r = np.linalg.norm(p, axis=1)
    reach = neighbourhood_reach(img, u, v, 2, 0.1)
    want = ok & (r >= 1.0) & (reach > r + np.maximum(0.3, 0.05 * r))
    np.testing.assert_array_equal(got, want)
    assert 0 < want.sum() < n


def test_lost_packets_are_found_across_the_stagger_and_never_read_as_open():
    """A lost packet is a block of the sensor's measurement columns: in the destaggered image it
    is a slanted band (each row shifted by pixel_shift_by_row). lost_columns finds exactly those
    columns, and a near point over the band is not taken for one in open space."""
    from coin_lio.core.free_space_kernel import in_free_space, lost_columns

    h, w, u_shift = 16, 128, 5
    shift = (np.arange(h) * 2).astype(np.int64)                    # staggered wider than a packet
    img = np.full((h, w), 20.0, np.float32)
    v, u = np.divmod(np.arange(h * w), w)
    col = (u + u_shift - shift[v]) % w                              # the measurement column of each pixel
    img.reshape(-1)[(col >= 40) & (col < 56)] = 0.0                 # one 16-column packet lost
    lost = lost_columns(img, shift, u_shift)
    np.testing.assert_array_equal(np.nonzero(lost)[0], np.arange(40, 56))
    assert not (img == 0).all(axis=0).any()                         # no image column is empty: per-pixel needed
    empty = np.array([[(img[max(v - 2, 0):v + 3, max(u - 2, 0):u + 3] == 0).all() for u in range(w)]
                      for v in range(h)])
    holes = np.argwhere(empty)                                      # (v, u): 5x5 inside the band
    assert len(holes) > 10
    uv = holes[:, ::-1].astype(np.float64)
    pts = np.tile([5.0, 0.0, 0.0], (len(uv), 1))                    # 5 m: within open_range_m
    ok = np.ones(len(uv), bool)
    args = (uv, ok, pts, img, 2, 0.1, 1.0, 0.3, 0.05, 10.0)
    assert not in_free_space(*args, lost, shift, u_shift).any()
    assert in_free_space(*args, np.zeros(w, bool), shift, u_shift).all()   # what it would say without
