"""Relative poses: oracle and frame changes against hand-computed motions, ICP on a synthetic structured cloud, PnP on
two rendered views of a textured synthetic scene."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage
from scipy.spatial.transform import Rotation

from depth.pose import icp_pose, oracle_pose, pnp_pose, sideslip_deg, to_camera
from scenes.geometry import SE3

# Camera axes (x right, y down, z forward) in the ego frame (x forward, y left, z up): the columns of the rotation.
CAMERA_AXES_IN_EGO: Final = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]])
WIDTH_PX: Final = 480
HEIGHT_PX: Final = 240
INTRINSICS: Final = np.array([[300.0, 0.0, 239.5], [0.0, 300.0, 119.5], [0.0, 0.0, 1.0]])
TEXELS_PER_M: Final = 20.0
TEXTURE_PX: Final = 512
LIDAR_ROW_STEP: Final = 16


def camera_on_ego(translation_m: tuple[float, float, float] = (0.0, 0.0, 0.0)) -> SE3:
    return SE3(CAMERA_AXES_IN_EGO, np.array(translation_m))


def apply(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ pose[:3, :3].T + pose[:3, 3]


def rotation_error_deg(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.degrees(Rotation.from_matrix(estimate[:3, :3] @ truth[:3, :3].T).magnitude()))


def test_oracle_forward_motion_moves_points_back_along_camera_z() -> None:
    """The source frame is 1 m ahead of the target: a point 10 m ahead of the target camera is 9 m ahead of the source's."""
    pose = oracle_pose(SE3(), SE3(np.eye(3), np.array([1.0, 0.0, 0.0])), camera_on_ego((1.5, 0.2, 1.6)))
    np.testing.assert_allclose(pose, [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, -1], [0, 0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(apply(pose, np.array([[0.0, 0.0, 10.0]])), [[0.0, 0.0, 9.0]], atol=1e-12)


def test_oracle_left_turn_moves_points_ahead_to_the_right() -> None:
    """The source ego has turned 90 deg left on the spot: what was 10 m ahead is now 10 m to the right (camera +x)."""
    pose = oracle_pose(SE3(), SE3.from_yaw(np.pi / 2, [0.0, 0.0, 0.0]), camera_on_ego())
    np.testing.assert_allclose(apply(pose, np.array([[0.0, 0.0, 10.0]])), [[10.0, 0.0, 0.0]], atol=1e-12)
    # In the camera frame a left turn is a rotation about the camera's -y (up) axis.
    np.testing.assert_allclose(pose[:3, :3], [[0, 0, 1], [0, 1, 0], [-1, 0, 0]], atol=1e-12)


def test_to_camera_with_camera_at_ego_origin_and_ego_axes_is_identity_change() -> None:
    pose_ego = SE3.from_yaw(0.3, [1.0, -2.0, 0.5]).as_matrix()
    np.testing.assert_allclose(to_camera(pose_ego, SE3()), pose_ego)


def test_to_camera_of_ego_translation() -> None:
    """The target ego points move 1 m left (ego +y) in the source frame: camera points move 1 m along camera -x."""
    pose_ego = SE3(np.eye(3), np.array([0.0, 1.0, 0.0])).as_matrix()
    pose_camera = to_camera(pose_ego, camera_on_ego((2.0, 0.0, 1.5)))
    np.testing.assert_allclose(pose_camera[:3, 3], [-1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(pose_camera[:3, :3], np.eye(3), atol=1e-12)


def se3_strategy() -> st.SearchStrategy[SE3]:
    angle = st.floats(-np.pi, np.pi)
    coordinate = st.floats(-50.0, 50.0)
    return st.builds(
        lambda roll, pitch, yaw, x, y, z: SE3(Rotation.from_euler("xyz", [roll, pitch, yaw]).as_matrix(), np.array([x, y, z])),
        angle, angle, angle, coordinate, coordinate, coordinate,
    )  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(target=se3_strategy(), middle=se3_strategy(), source=se3_strategy(), camera=se3_strategy(), point=st.tuples(*[st.floats(-30, 30)] * 3))
def test_oracle_composition_round_trips(target: SE3, middle: SE3, source: SE3, camera: SE3, point: tuple[float, float, float]) -> None:
    forward = oracle_pose(target, source, camera)
    np.testing.assert_allclose(forward @ oracle_pose(source, target, camera), np.eye(4), atol=1e-9)
    np.testing.assert_allclose(oracle_pose(middle, source, camera) @ oracle_pose(target, middle, camera), forward, atol=1e-9)
    point_target_camera = np.array([point])
    point_city = target.compose(camera).transform_points(point_target_camera)
    np.testing.assert_allclose(apply(forward, point_target_camera), source.compose(camera).inverse().transform_points(point_city), atol=1e-8)


def structured_scene(rng: np.random.Generator, count: int) -> np.ndarray:
    """Points `(count, 3)` sampled on a ground plane, two perpendicular walls and two boxes (ego frame, z up)."""

    def uniform(low: list[float], high: list[float], n: int) -> np.ndarray:
        return rng.uniform(low, high, size=(n, 3))

    share = count // 8
    boxes = []
    for centre, half in (((6.0, -4.0, 1.0), (1.0, 2.0, 1.0)), ((-5.0, 5.0, 0.75), (2.0, 1.0, 0.75))):
        for axis in range(3):
            for sign in (-1.0, 1.0):
                face = uniform([c - h for c, h in zip(centre, half, strict=True)], [c + h for c, h in zip(centre, half, strict=True)], share // 6)
                face[:, axis] = centre[axis] + sign * half[axis]
                boxes.append(face)
    return np.vstack(
        [
            uniform([-20.0, -20.0, 0.0], [20.0, 20.0, 0.0], 4 * share),
            uniform([15.0, -20.0, 0.0], [15.0, 20.0, 4.0], share),
            uniform([-20.0, 12.0, 0.0], [20.0, 12.0, 4.0], share),
            *boxes,
        ]
    )


def test_icp_recovers_a_small_rigid_motion() -> None:
    rng = np.random.default_rng(0)
    truth = SE3(Rotation.from_euler("xyz", [0.5, -0.3, 2.0], degrees=True).as_matrix(), np.array([0.6, -0.2, 0.05])).as_matrix()
    target_points = structured_scene(rng, 40_000)
    source_points = apply(truth, structured_scene(rng, 40_000))
    estimate = icp_pose(target_points, source_points)
    assert estimate is not None
    assert np.linalg.norm(estimate[:3, 3] - truth[:3, 3]) < 0.02
    assert rotation_error_deg(estimate, truth) < 0.2


def test_icp_returns_none_without_overlap() -> None:
    rng = np.random.default_rng(1)
    target_points = structured_scene(rng, 5_000)
    assert icp_pose(target_points, target_points + np.array([100.0, 0.0, 0.0])) is None
    assert icp_pose(np.zeros((0, 3)), target_points) is None


@dataclass(frozen=True)
class Plane:
    """A textured plane through `origin_m` spanned by the orthonormal `axis_u` and `axis_v` (world = target camera frame)."""

    origin_m: tuple[float, float, float]
    axis_u: tuple[float, float, float]
    axis_v: tuple[float, float, float]
    texture: np.ndarray


def random_texture(rng: np.random.Generator) -> np.ndarray:
    """A tileable float32 texture in [0, 255]: blurred noise at two scales."""
    fine = ndimage.gaussian_filter(rng.normal(size=(TEXTURE_PX, TEXTURE_PX)), 1.5, mode="wrap")
    coarse = ndimage.gaussian_filter(rng.normal(size=(TEXTURE_PX, TEXTURE_PX)), 6.0, mode="wrap")
    texture = fine / fine.std() + coarse / coarse.std()
    return (255.0 * (texture - texture.min()) / np.ptp(texture)).astype(np.float32)


def textured_room(rng: np.random.Generator) -> list[Plane]:
    """Floor 1.5 m below the camera, a back wall 14 m ahead and side walls 5 m to each side."""
    return [
        Plane((0.0, 1.5, 0.0), (1.0, 0.0, 0.0), (0.0, 0.0, 1.0), random_texture(rng)),
        Plane((0.0, 0.0, 14.0), (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), random_texture(rng)),
        Plane((-5.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), random_texture(rng)),
        Plane((5.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 1.0, 0.0), random_texture(rng)),
    ]


def render(planes: list[Plane], world_T_camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 image `(H, W, 3)` and z-depth `(H, W)` of a pinhole camera at `world_T_camera`, by ray-plane
    intersection and bilinear texture lookups (cv2.remap)."""
    columns, rows = np.meshgrid(np.arange(WIDTH_PX, dtype=np.float64), np.arange(HEIGHT_PX, dtype=np.float64))
    rays_camera = np.stack([columns, rows, np.ones_like(columns)], axis=-1) @ np.linalg.inv(INTRINSICS).T  # z = 1
    rays_world = rays_camera @ world_T_camera[:3, :3].T
    origin = world_T_camera[:3, 3]
    depth = np.full((HEIGHT_PX, WIDTH_PX), np.inf)
    grey = np.zeros((HEIGHT_PX, WIDTH_PX), dtype=np.float32)
    for plane in planes:
        normal = np.cross(plane.axis_u, plane.axis_v)
        with np.errstate(divide="ignore", invalid="ignore"):
            distance = (normal @ (np.asarray(plane.origin_m) - origin)) / (rays_world @ normal)
        nearer = np.isfinite(distance) & (distance > 0) & (distance < depth)
        hits = origin + distance[..., None] * rays_world - np.asarray(plane.origin_m)
        texel_u = np.mod(hits @ np.asarray(plane.axis_u) * TEXELS_PER_M, TEXTURE_PX).astype(np.float32)
        texel_v = np.mod(hits @ np.asarray(plane.axis_v) * TEXELS_PER_M, TEXTURE_PX).astype(np.float32)
        shade = cv2.remap(plane.texture, np.nan_to_num(texel_u), np.nan_to_num(texel_v), cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        grey[nearer] = shade[nearer]
        depth[nearer] = distance[nearer]
    image = np.clip(np.stack([grey, 0.8 * grey + 20.0, 0.6 * grey + 40.0], axis=-1), 0, 255).astype(np.uint8)
    return image, np.where(np.isfinite(depth), depth, 0.0)


def sparse_lidar(depth_m: np.ndarray) -> np.ndarray:
    """The dense depth kept on every `LIDAR_ROW_STEP`-th row only, like a few-beam LiDAR seen by a level camera."""
    sparse = np.zeros_like(depth_m)
    sparse[LIDAR_ROW_STEP // 2 :: LIDAR_ROW_STEP] = depth_m[LIDAR_ROW_STEP // 2 :: LIDAR_ROW_STEP]
    return sparse


@pytest.fixture(scope="module")
def rendered_pair() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Target view at the world origin, source view 1 m further forward, 0.15 m right, turned 3 deg right and pitched
    1 deg: (target image, source image, target sparse depth, true source_T_target)."""
    planes = textured_room(np.random.default_rng(2))
    target_image, target_depth = render(planes, np.eye(4))
    world_T_source = SE3(Rotation.from_euler("yx", [3.0, 1.0], degrees=True).as_matrix(), np.array([0.15, 0.0, 1.0]))
    source_image, _ = render(planes, world_T_source.as_matrix())
    return target_image, source_image, sparse_lidar(target_depth), world_T_source.inverse().as_matrix()


def test_render_depth_of_hand_computed_pixels() -> None:
    """The principal ray meets the back wall at 14 m; a ray 45 px below it meets the floor at 300 * 1.5 / 45 = 10 m."""
    _, depth = render(textured_room(np.random.default_rng(3)), np.eye(4))
    assert depth[119, 239] == pytest.approx(14.0)
    assert depth[164, 240] == pytest.approx(10.0, rel=0.02)


def test_pnp_recovers_known_motion(rendered_pair: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    target_image, source_image, target_sparse_depth, truth = rendered_pair
    estimate = pnp_pose(target_image, source_image, target_sparse_depth, INTRINSICS)
    assert estimate is not None
    assert estimate.shape == (4, 4) and estimate.dtype == np.float64
    np.testing.assert_allclose(estimate[3], [0.0, 0.0, 0.0, 1.0])
    assert np.linalg.norm(estimate[:3, 3] - truth[:3, 3]) < 0.05
    assert rotation_error_deg(estimate, truth) < 0.5


def test_pnp_rejects_motion_beyond_the_bound(rendered_pair: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    """A pose that travels further than a vehicle can between the two frames is not trusted."""
    target_image, source_image, target_sparse_depth, truth = rendered_pair
    travelled = float(np.linalg.norm(truth[:3, 3]))
    assert pnp_pose(target_image, source_image, target_sparse_depth, INTRINSICS, max_translation_m=0.9 * travelled) is None
    assert pnp_pose(target_image, source_image, target_sparse_depth, INTRINSICS, max_translation_m=1.1 * travelled) is not None


def test_sideslip_of_hand_computed_motions() -> None:
    assert sideslip_deg(np.array([0.0, 0.0, 2.0]), CAMERA_AXES_IN_EGO) == pytest.approx(0.0)  # straight ahead
    assert sideslip_deg(np.array([0.0, 0.0, -2.0]), CAMERA_AXES_IN_EGO) == pytest.approx(0.0)  # reversing
    assert sideslip_deg(np.array([1.0, 0.3, 1.0]), CAMERA_AXES_IN_EGO) == pytest.approx(45.0)  # camera x = ego -y
    assert sideslip_deg(np.array([1.36, 0.32, 2.04]), CAMERA_AXES_IN_EGO) == pytest.approx(np.degrees(np.arctan2(1.36, 2.04)))
    looking_left = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # camera z along ego +y
    assert sideslip_deg(np.array([0.0, 0.0, 2.0]), looking_left) == pytest.approx(90.0)


def test_pnp_rejects_a_vehicle_moving_sideways(rendered_pair: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    """The same images read from a camera mounted looking left: the recovered motion would be a car sliding sideways."""
    target_image, source_image, target_sparse_depth, truth = rendered_pair
    assert sideslip_deg(truth[:3, 3], CAMERA_AXES_IN_EGO) < 10.0
    forward = pnp_pose(target_image, source_image, target_sparse_depth, INTRINSICS, ego_R_camera=CAMERA_AXES_IN_EGO, max_sideslip_deg=25.0)
    assert forward is not None
    looking_left = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
    assert pnp_pose(target_image, source_image, target_sparse_depth, INTRINSICS, ego_R_camera=looking_left, max_sideslip_deg=25.0) is None


def test_pnp_identical_images_are_static(rendered_pair: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    target_image, _, target_sparse_depth, _ = rendered_pair
    assert pnp_pose(target_image, target_image, target_sparse_depth, INTRINSICS) is None


def test_pnp_blank_images_or_no_depth_give_none(rendered_pair: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]) -> None:
    target_image, source_image, target_sparse_depth, _ = rendered_pair
    blank = np.full_like(target_image, 128)
    assert pnp_pose(blank, blank, target_sparse_depth, INTRINSICS) is None
    assert pnp_pose(target_image, source_image, np.zeros_like(target_sparse_depth), INTRINSICS) is None
