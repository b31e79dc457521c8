"""Sparse-depth interpolation: exact on planes (inverse depth affine in the image), nearest return outside the hull, fallbacks and errors."""

from __future__ import annotations

import numpy as np
import pytest

from depth.interpolation import interpolate_sparse_depth

HEIGHT_PX = 12
WIDTH_PX = 16
BEAM_ROWS = (3, 6, 8)


def _sample_rows(dense_m: np.ndarray, rows: tuple[int, ...], column_step: int = 1) -> np.ndarray:
    sparse = np.zeros_like(dense_m, dtype=np.float32)
    for row in rows:
        sparse[row, ::column_step] = dense_m[row, ::column_step]
    return sparse


def test_constant_depth_plane_is_reproduced_everywhere() -> None:
    plane = np.full((HEIGHT_PX, WIDTH_PX), 7.5)
    dense = interpolate_sparse_depth(_sample_rows(plane, BEAM_ROWS, column_step=3))
    assert dense.shape == (HEIGHT_PX, WIDTH_PX)
    assert dense.dtype == np.float32
    np.testing.assert_array_equal(dense, np.float32(7.5))


def test_inverse_depth_linear_in_u_is_reproduced_everywhere() -> None:
    u = np.arange(WIDTH_PX)
    field = np.broadcast_to(1.0 / (0.2 + 0.01 * u), (HEIGHT_PX, WIDTH_PX))
    # Outside the beams every pixel's nearest return is in its own column, on the nearest beam, with the same depth.
    dense = interpolate_sparse_depth(_sample_rows(field, BEAM_ROWS))
    np.testing.assert_allclose(dense, field, rtol=1e-6)


def test_plane_is_exact_inside_the_hull() -> None:
    v, u = np.mgrid[0:HEIGHT_PX, 0:WIDTH_PX]
    field = 1.0 / (0.2 + 0.01 * u + 0.005 * v)  # a plane: inverse depth affine in (u, v)
    # Returns every third column, with the last column sampled so that the hull spans the whole width.
    sparse = _sample_rows(field, BEAM_ROWS, column_step=3)
    sparse[list(BEAM_ROWS), -1] = field[list(BEAM_ROWS), -1]
    dense = interpolate_sparse_depth(sparse)
    inside = slice(BEAM_ROWS[0], BEAM_ROWS[-1] + 1)
    np.testing.assert_allclose(dense[inside], field[inside], rtol=1e-6)
    # Above the top beam the nearest return is straight below, on the top beam.
    np.testing.assert_allclose(dense[0, ::3], field[BEAM_ROWS[0], ::3], rtol=1e-6)


def test_triangle_by_hand_and_nearest_return_outside() -> None:
    sparse = np.zeros((10, 10), dtype=np.float32)
    sparse[5, 2], sparse[5, 7], sparse[8, 5] = 10.0, 20.0, 30.0  # (row, col) = (v, u)
    dense = interpolate_sparse_depth(sparse)

    # Inverse depth is affine through (u, v, 1/z) = (2, 5, 1/10), (7, 5, 1/20), (5, 8, 1/30):
    # 1/z = 1/10 - (u - 2) / 100 + (v - 5) / 3 * (1/30 - 7/100).
    def inverse(u: float, v: float) -> float:
        return 0.1 - (u - 2.0) / 100.0 - ((v - 5.0) / 3.0) * (0.1 - 1.0 / 30.0 - 3.0 / 100.0)

    assert dense[6, 5] == pytest.approx(1.0 / inverse(5, 6), rel=1e-5)
    assert dense[5, 4] == pytest.approx(1.0 / inverse(4, 5), rel=1e-5)
    assert dense[0, 0] == 10.0  # nearest: (2, 5) at sqrt(29)
    assert dense[0, 9] == 20.0  # nearest: (7, 5) at sqrt(29)
    assert dense[9, 5] == 30.0  # below the lowest return
    assert dense[9, 0] == 10.0  # nearest: (2, 5) at sqrt(20), before (5, 8) at sqrt(26)


def test_returns_on_one_row_fall_back_to_nearest() -> None:
    sparse = np.zeros((4, 9), dtype=np.float32)
    sparse[1, [0, 5, 8]] = [2.0, 4.0, 6.0]  # collinear: no triangle, QhullError inside griddata
    dense = interpolate_sparse_depth(sparse)
    expected_row = np.array([2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0, 6.0, 6.0], dtype=np.float32)
    np.testing.assert_array_equal(dense, np.broadcast_to(expected_row, (4, 9)))


def test_fewer_than_three_returns_fall_back_to_nearest() -> None:
    single = np.zeros((3, 4), dtype=np.float32)
    single[2, 1] = 9.0
    np.testing.assert_array_equal(interpolate_sparse_depth(single), np.full((3, 4), 9.0, dtype=np.float32))
    pair = np.zeros((3, 4), dtype=np.float32)
    pair[0, 0], pair[2, 3] = 1.0, 3.0
    dense = interpolate_sparse_depth(pair)
    assert dense[0, 1] == 1.0 and dense[2, 2] == 3.0 and dense[1, 0] == 1.0 and dense[1, 3] == 3.0


def test_float64_input_gives_float32_output() -> None:
    sparse = np.zeros((5, 6))
    sparse[[1, 1, 3], [0, 5, 2]] = [1.0, 2.0, 3.0]
    dense = interpolate_sparse_depth(sparse)
    assert dense.dtype == np.float32 and dense.shape == (5, 6)
    assert (dense >= 1.0).all() and (dense <= 3.0).all()


def test_invalid_inputs() -> None:
    with pytest.raises(ValueError, match="no LiDAR return in the image"):
        interpolate_sparse_depth(np.zeros((4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        interpolate_sparse_depth(np.ones((2, 4, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN or infinite"):
        interpolate_sparse_depth(np.array([[1.0, np.nan], [2.0, 3.0]]))
