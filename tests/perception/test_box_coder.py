"""The CenterPoint box coder: code layout, hand-computed encode/decode, and the encode -> decode round trip."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perception.detection.box_coder import LAYOUT, LOG_SIZE_CLIP, BoxCoder
from perception.detection.config import ModelConfig
from scenes.categories import CATEGORY_ID
from scenes.records import Boxes3D

RV = CATEGORY_ID["REGULAR_VEHICLE"]
CODER = BoxCoder(origin_m=(-4.0, -2.0), cell_m=(0.5, 0.25))


def _box(center: list[float], size: list[float], yaw: float, velocity: list[float] | None) -> Boxes3D:
    return Boxes3D(
        np.array([center]),
        np.array([size]),
        np.array([yaw]),
        np.array([RV]),
        velocity_m_per_s=None if velocity is None else np.array([velocity]),
    )


def _map_with(code: np.ndarray, rows: np.ndarray, columns: np.ndarray, height: int, width: int) -> np.ndarray:
    regression = np.zeros((LAYOUT.width, height, width), dtype=np.float32)
    regression[:, rows, columns] = code.T
    return regression


def test_layout_tiles_the_code_in_order() -> None:
    starts = [part.start for part in LAYOUT.parts.values()]
    stops = [part.stop for part in LAYOUT.parts.values()]
    assert list(LAYOUT.parts) == ["offset", "z", "size", "rotation", "velocity"]
    assert starts == [0, *stops[:-1]] and LAYOUT.width == stops[-1] == 10
    assert LAYOUT.weights(velocity=0.2) == (1.0,) * 8 + (0.2, 0.2)
    assert LAYOUT.weights(z=3.0, rotation=0.5) == (1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 0.5, 0.5, 1.0, 1.0)
    with pytest.raises(ValueError, match="heading"):
        LAYOUT.weights(heading=1.0)


def test_model_config_coder_uses_the_output_grid() -> None:
    cfg = ModelConfig(range_m=(-16.0, -8.0, -3.0, 16.0, 8.0, 3.0), pillar_size_m=(0.5, 0.25), out_stride=2)
    assert cfg.box_coder == BoxCoder(origin_m=(-16.0, -8.0), cell_m=(1.0, 0.5))


def test_encode_one_box_by_hand() -> None:
    # x = -4 + 0.5 * 10.5, y = -2 + 0.25 * 3.25: cell (column 10, row 3), offset (0.5, 0.25) cells.
    box = _box([1.25, -1.1875, 0.7], [math.e, 1.0, 4.0], math.pi / 6, [3.0, -1.5])
    coded = CODER.encode(box)
    assert coded.column.tolist() == [10] and coded.row.tolist() == [3]
    assert coded.code.dtype == np.float32 and coded.code.shape == (1, LAYOUT.width)
    expected = [0.5, 0.25, 0.7, 1.0, 0.0, math.log(4.0), 0.5, math.sqrt(3) / 2, 3.0, -1.5]
    np.testing.assert_allclose(coded.code[0], expected, rtol=1e-6, atol=1e-7)
    assert CODER.encode(_box([1.25, -1.1875, 0.7], [1.0, 1.0, 1.0], 0.0, None)).code[0, LAYOUT.velocity].tolist() == [0.0, 0.0]


def test_decode_two_cells_by_hand() -> None:
    code = np.zeros((2, LAYOUT.width), dtype=np.float32)
    code[0] = [0.25, 0.75, -1.0, 0.0, math.log(2.0), math.log(3.0), 1.0, 0.0, 2.0, -4.0]
    code[1] = [0.5, 0.5, 0.5, 9.0, -9.0, 0.0, 0.0, -2.0, 0.0, 0.0]
    rows, columns = np.array([3, 1]), np.array([10, 0])
    decoded = CODER.decode(_map_with(code, rows, columns, height=5, width=12), rows, columns)
    np.testing.assert_allclose(decoded.center_m, [[(10.25 * 0.5) - 4.0, (3.75 * 0.25) - 2.0, -1.0], [-3.75, -1.625, 0.5]])
    clip = math.exp(LOG_SIZE_CLIP)
    np.testing.assert_allclose(decoded.size_lwh_m, [[1.0, 2.0, 3.0], [clip, 1 / clip, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(decoded.yaw_rad, [math.pi / 2, math.pi])
    np.testing.assert_allclose(decoded.velocity_m_per_s, [[2.0, -4.0], [0.0, 0.0]])


def test_box_frame_velocity_is_along_and_across_the_heading() -> None:
    # Heading 90 degrees (facing +y): a velocity of (0, 3) m/s in the ego frame is 3 m/s along it; (-1, 0) is 1 m/s to
    # its left (+across).
    coder = BoxCoder(origin_m=(-4.0, -2.0), cell_m=(0.5, 0.25), velocity_frame="box")
    forward = coder.encode(_box([0.0, 0.0, 0.0], [4.0, 2.0, 1.5], math.pi / 2, [0.0, 3.0]))
    np.testing.assert_allclose(forward.code[0, LAYOUT.velocity], [3.0, 0.0], atol=1e-6)
    left = coder.encode(_box([0.0, 0.0, 0.0], [4.0, 2.0, 1.5], math.pi / 2, [-1.0, 0.0]))
    np.testing.assert_allclose(left.code[0, LAYOUT.velocity], [0.0, 1.0], atol=1e-6)
    # Decoding turns it back with the decoded heading: a heading decoded flipped flips the velocity too.
    code = np.zeros((1, LAYOUT.width), dtype=np.float32)
    code[0, LAYOUT.rotation] = [-1.0, 0.0]  # heading -90 degrees
    code[0, LAYOUT.velocity] = [3.0, 0.0]
    rows, columns = np.array([2]), np.array([4])
    decoded = coder.decode(_map_with(code, rows, columns, height=5, width=8), rows, columns)
    np.testing.assert_allclose(decoded.velocity_m_per_s, [[0.0, -3.0]], atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    frame=st.sampled_from(["ego", "box"]),
    origin=st.tuples(st.floats(-60, 0), st.floats(-60, 0)),
    cell=st.tuples(st.floats(0.1, 2.0), st.floats(0.1, 2.0)),
    uv=st.tuples(st.floats(0, 40, exclude_max=True), st.floats(0, 40, exclude_max=True)),
    z=st.floats(-5, 5),
    size=st.tuples(st.floats(0.1, 20), st.floats(0.1, 20), st.floats(0.1, 20)),
    yaw=st.floats(-math.pi, math.pi),
    velocity=st.tuples(st.floats(-30, 30), st.floats(-30, 30)),
)
def test_encode_decode_round_trip(
    frame: Literal["ego", "box"],
    origin: tuple[float, float],
    cell: tuple[float, float],
    uv: tuple[float, float],
    z: float,
    size: tuple[float, float, float],
    yaw: float,
    velocity: tuple[float, float],
) -> None:
    coder = BoxCoder(origin_m=origin, cell_m=cell, velocity_frame=frame)
    center = [origin[0] + uv[0] * cell[0], origin[1] + uv[1] * cell[1], z]
    box = _box(center, list(size), yaw, list(velocity))
    coded = coder.encode(box)
    assert 0 <= coded.column[0] <= 40 and 0 <= coded.row[0] <= 40
    regression = _map_with(coded.code, coded.row, coded.column, height=42, width=43)
    decoded = coder.decode(regression, coded.row, coded.column)
    np.testing.assert_allclose(decoded.center_m, box.center_m, atol=1e-5)
    np.testing.assert_allclose(decoded.size_lwh_m, box.size_lwh_m, rtol=1e-6)
    assert abs(math.remainder(float(decoded.yaw_rad[0]) - yaw, 2 * math.pi)) < 1e-6
    assert decoded.velocity_m_per_s is not None and box.velocity_m_per_s is not None
    np.testing.assert_allclose(decoded.velocity_m_per_s, box.velocity_m_per_s, atol=1e-5)
