"""Huber weights of the photometric rows (photometric.huber_k): inliers keep weight 1, a row k
spreads out is down-weighted as k x spread / |r|, too few rows or no spread leave every row at 1,
and iterated with the weights a least-squares fit ignores a block of rows a mover spoiled."""
import numpy as np
import pytest

from coin_lio.config import PhotometricConfig
from coin_lio.core.photometric import huber_weights


def test_inliers_keep_weight_one_outliers_get_k_spread_over_r():
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 2.0, 2000)
    r[:20] = 60.0                                                    # 30 sigma out
    w = huber_weights(r, 3.0)
    spread = 1.4826 * np.median(np.abs(r))
    assert spread == pytest.approx(2.0, rel=0.1)
    assert np.all(w[np.abs(r) <= 3.0 * spread] == 1.0)
    np.testing.assert_allclose(w[:20], 3.0 * spread / 60.0)
    assert np.all((w > 0) & (w <= 1))


@pytest.mark.parametrize("r", [np.full(40, 5.0), np.zeros(500), np.r_[np.zeros(400), np.ones(10)]])
def test_too_few_rows_or_no_spread_leave_every_row_alone(r):
    assert np.all(huber_weights(r, 2.0) == 1.0)


def test_iterated_weights_ignore_a_spoiled_block():
    """A 2-parameter fit (pixel shift of 60 patches x 25 rows); 4 patches on a person are off by 40
    grey levels. Plain least squares is pulled by them; with Huber weights, iterated as the filter
    does, the estimate comes back to within the noise."""
    rng = np.random.default_rng(1)
    H = rng.normal(0.0, 10.0, (1500, 2))                             # image gradients
    H[:100, 0] = np.abs(H[:100, 0]) + 5.0                            # the person's edge: along u
    truth = np.array([0.3, -0.2])
    y = H @ truth + rng.normal(0.0, 1.0, 1500)
    y[:100] += 40.0
    plain = np.linalg.lstsq(H, y, rcond=None)[0]
    x = np.zeros(2)
    for _ in range(5):
        r = y - H @ x
        w = huber_weights(r, 2.0)
        x = x + np.linalg.solve(H.T @ (H * w[:, None]), H.T @ (w * r))
    assert np.linalg.norm(plain - truth) > 0.05
    assert np.linalg.norm(x - truth) < 0.25 * np.linalg.norm(plain - truth)


@pytest.mark.parametrize("k", [-1.0, 0.5, float("nan"), 200.0])
def test_bad_huber_k_is_refused(k):
    with pytest.raises(ValueError, match="huber_k"):
        PhotometricConfig(huber_k=k)


def test_compiled_median_and_weights_equal_numpys():
    """The in-place selection gives np.median exactly (odd and even counts, ties, one value), and
    the compiled weights equal the numpy formula row for row."""
    from coin_lio.core.robust_kernel import median_inplace

    rng = np.random.default_rng(2)
    for n in [1, 2, 3, 4, 5, 10, 49, 50, 51, 517, 1500]:
        for rounded in (False, True):
            x = rng.normal(size=n)
            x = np.round(x, 1) if rounded else x                    # ties
            assert median_inplace(x.copy(), n) == np.median(x)
    r = rng.standard_t(2, 1500)
    a = np.abs(r)
    want = np.minimum(1.0, 2.0 * (1.4826 * float(np.median(a))) / np.maximum(a, 1e-300))
    np.testing.assert_array_equal(huber_weights(r, 2.0), want)


def test_median_bracket_holds_the_median_whenever_it_says_so():
    """median_bracket's [lo, hi] holds np.median (odd and even counts, ties, skewed and constant
    values), leaves the array as given, says so for most arrays and never below 62 values."""
    from coin_lio.core.robust_kernel import median_bracket

    rng = np.random.default_rng(5)
    sample = np.empty(31)
    said = 0
    for trial in range(600):
        n = int(rng.integers(1, 700))
        x = [rng.normal(size=n), rng.standard_t(1, n), np.round(rng.normal(size=n), 1),
             np.full(n, 0.25), np.sort(rng.normal(size=n))][trial % 5]
        given = x.copy()
        lo, hi, ok = median_bracket(x, n, sample)
        np.testing.assert_array_equal(x, given)
        if ok:
            said += 1
            assert lo <= np.median(x) <= hi
        if n < 62:
            assert not ok
    assert said > 300
