"""Relative camera poses between a target frame t and a source frame s (t-1 or t+1) for self-supervised depth.

LiDARTouch warps the source image into the target view with the predicted depth and a relative pose. Besides a pose
network, the pose can come from the sensors: PnP on image matches lifted to 3D with the few-beam LiDAR (the paper's
choice), ICP between the two LiDAR sweeps, or the dataset's own ego poses (an oracle for ablations).

Every pose here is a 4x4 float64 matrix `source_T_target` that maps points of the target camera frame (OpenCV axes:
x right, y down, z forward) into the source camera frame, `p_source = source_T_target @ p_target`.
"""

from __future__ import annotations

from typing import Final

import cv2
import numpy as np
import numpy.typing as npt
import open3d as o3d
from scipy import ndimage

from scenes.geometry import SE3

__all__ = ["icp_pose", "oracle_pose", "pnp_pose", "sideslip_deg", "to_camera"]

MIN_PNP_POINTS: Final = 6
# RANSAC consensus below which a PnP pose is not trusted: on small or low-texture images EPnP on a handful of inliers
# can return a pose metres off (seen on 256x128 synthetic frames).
MIN_PNP_INLIERS: Final = 12
MIN_ICP_POINTS: Final = 6
KNN_NEIGHBOURS: Final = 2
NO_DISTORTION: Final = np.zeros(4)
# Normals of few-beam sweeps: within a small radius every neighbour lies on the same scan ring, a line whose normal is
# undefined. 4 HDL-64E lines meet the ground about 2 m apart near the car, so the neighbourhood reaches 2.5 m, and the
# sweep is first thinned to one point per 10 cm voxel so that the 30 nearest neighbours are not all taken from the
# densely sampled ring of the query point.
NORMAL_RADIUS_M: Final = 2.5
NORMAL_MAX_NEIGHBOURS: Final = 30
VOXEL_M: Final = 0.1
ICP_MAX_ITERATIONS: Final = 50

FloatArray = npt.NDArray[np.float64]


def pnp_pose(
    target_image: np.ndarray,
    source_image: np.ndarray,
    target_sparse_depth_m: np.ndarray,
    intrinsics: np.ndarray,
    *,
    max_keypoints: int = 1000,
    ratio: float = 0.8,
    reprojection_px: float = 2.0,
    iterations: int = 100,
    dilation_px: int = 4,
    min_translation_m: float = 0.15,
    max_translation_m: float = np.inf,
    min_inliers: int = MIN_PNP_INLIERS,
    ego_R_camera: np.ndarray | None = None,
    max_sideslip_deg: float = 90.0,
) -> FloatArray | None:
    """`source_T_target` from SIFT matches between two `(H, W, 3)` uint8 RGB images, the target keypoints lifted to
    3D with the target's sparse LiDAR depth `(H, W)` (metres, 0 where there is no return), as LiDARTouch does.

    SIFT keypoints of the grey images are matched by brute-force 2-nearest-neighbour search and Lowe's ratio test. The
    sparse depth is grey-dilated over `dilation_px x dilation_px` pixels so that keypoints near a LiDAR scanline get a
    depth; keypoints left without one are dropped. EPnP inside RANSAC then fits the pose of the source camera to the
    target 3D points and their source pixels. The rotation is the Rodrigues vector's (the official code reads that
    vector as Euler angles, which is only close for small rotations; not reproduced here).

    Returns None with fewer than 6 lifted matches, when RANSAC fails or keeps fewer than `min_inliers` inliers (a
    safeguard the official code lacks), when the translation is shorter than `min_translation_m` (the official code
    then treats the pair as static), or longer than `max_translation_m` (the most a vehicle can travel between the two
    frames; also missing from the official code). The last check catches a consensus of wrong matches: along a row of
    identical street furniture, keypoints lifted by the near-horizontal scanline all lie close to the plane through
    the camera centre, and RANSAC can then find a dozen inliers for a pose tens of metres off. With the camera's
    mounting `ego_R_camera`, a pose whose motion leaves the vehicle's axis by more than `max_sideslip_deg` (a car does
    not move sideways; `sideslip_deg`) is rejected too: a wrong consensus of a few metres passes the speed check. The
    RANSAC pose is refined on its inliers (Levenberg-Marquardt).
    """
    target_grey = cv2.cvtColor(np.ascontiguousarray(target_image, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    source_grey = cv2.cvtColor(np.ascontiguousarray(source_image, dtype=np.uint8), cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT.create(nfeatures=max_keypoints)
    target_keypoints, target_descriptors = sift.detectAndCompute(target_grey, np.full_like(target_grey, 255))
    source_keypoints, source_descriptors = sift.detectAndCompute(source_grey, np.full_like(source_grey, 255))
    if target_descriptors is None or source_descriptors is None or len(source_keypoints) < KNN_NEIGHBOURS:
        return None
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(target_descriptors, source_descriptors, k=KNN_NEIGHBOURS)
    good = [pair[0] for pair in matches if len(pair) == KNN_NEIGHBOURS and pair[0].distance < ratio * pair[1].distance]
    if len(good) < MIN_PNP_POINTS:
        return None
    target_px = np.array([target_keypoints[match.queryIdx].pt for match in good], dtype=np.float64)
    source_px = np.array([source_keypoints[match.trainIdx].pt for match in good], dtype=np.float64)

    depth_m = ndimage.grey_dilation(np.asarray(target_sparse_depth_m, dtype=np.float64), size=(dilation_px, dilation_px))
    height, width = depth_m.shape
    columns = np.clip(np.floor(target_px[:, 0] + 0.5).astype(np.int64), 0, width - 1)
    rows = np.clip(np.floor(target_px[:, 1] + 0.5).astype(np.int64), 0, height - 1)
    keypoint_depth_m = depth_m[rows, columns]
    lifted = keypoint_depth_m > 0
    if np.count_nonzero(lifted) < MIN_PNP_POINTS:
        return None
    camera_matrix = np.asarray(intrinsics, dtype=np.float64)
    rays = np.column_stack([target_px[lifted], np.ones(np.count_nonzero(lifted))]) @ np.linalg.inv(camera_matrix).T
    points_target_m = rays * keypoint_depth_m[lifted, None]

    success, rotation_vector, translation_m, inliers = cv2.solvePnPRansac(
        points_target_m,
        source_px[lifted],
        camera_matrix,
        NO_DISTORTION,
        iterationsCount=iterations,
        reprojectionError=reprojection_px,
        flags=cv2.SOLVEPNP_EPNP,
    )
    if not success or inliers is None or len(inliers) < min_inliers:
        return None
    inlier_index = inliers[:, 0]
    rotation_vector, translation_m = cv2.solvePnPRefineLM(
        points_target_m[inlier_index], source_px[lifted][inlier_index], camera_matrix, NO_DISTORTION, rotation_vector, translation_m
    )
    translation_m = np.asarray(translation_m, dtype=np.float64).reshape(3)
    if not min_translation_m <= np.linalg.norm(translation_m) <= max_translation_m:
        return None
    if ego_R_camera is not None and sideslip_deg(translation_m, ego_R_camera) > max_sideslip_deg:
        return None
    source_T_target = np.eye(4)
    source_T_target[:3, :3] = cv2.Rodrigues(rotation_vector)[0]
    source_T_target[:3, 3] = translation_m
    return source_T_target


def sideslip_deg(source_t_target_m: np.ndarray, ego_R_camera: np.ndarray) -> float:
    """Angle in the ground plane between the camera's motion (the target camera centre in the source camera frame) and
    the vehicle's forward-backward axis: near 0 for a car, whatever its speed."""
    motion_ego = np.asarray(ego_R_camera, dtype=np.float64) @ np.asarray(source_t_target_m, dtype=np.float64).reshape(3)
    return float(np.degrees(np.arctan2(abs(motion_ego[1]), abs(motion_ego[0]))))


def icp_pose(
    target_points_m: np.ndarray,
    source_points_m: np.ndarray,
    *,
    max_correspondence_m: float = 1.0,
    initial_source_T_target: np.ndarray | None = None,
    min_fitness: float = 0.3,
) -> FloatArray | None:
    """`source_T_target` aligning the target sweep `(N, 3)` onto the source sweep `(M, 3)` (both in the same sensor or
    ego frame convention) by open3d point-to-plane ICP, so that it maps target-frame points into the source frame.

    Both sweeps are thinned to one point per `VOXEL_M` voxel; the source sweep's normals come from a KD-tree hybrid
    search wide enough to span neighbouring rings of a few-beam sweep (see `NORMAL_RADIUS_M`). Returns None when the
    fraction of target points with a source point within `max_correspondence_m` (open3d's fitness) is below
    `min_fitness`.
    """
    target_cloud = _point_cloud(target_points_m)
    source_cloud = _point_cloud(source_points_m)
    if len(target_cloud.points) < MIN_ICP_POINTS or len(source_cloud.points) < MIN_ICP_POINTS:
        return None
    source_cloud.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=NORMAL_RADIUS_M, max_nn=NORMAL_MAX_NEIGHBOURS))
    initial = np.eye(4) if initial_source_T_target is None else np.asarray(initial_source_T_target, dtype=np.float64)
    result = o3d.pipelines.registration.registration_icp(
        target_cloud,
        source_cloud,
        max_correspondence_m,
        initial,
        o3d.pipelines.registration.TransformationEstimationPointToPlane(),
        o3d.pipelines.registration.ICPConvergenceCriteria(max_iteration=ICP_MAX_ITERATIONS),
    )
    if result.fitness < min_fitness:
        return None
    return np.array(result.transformation, dtype=np.float64)


def to_camera(pose_ego: np.ndarray, ego_SE3_camera: SE3) -> FloatArray:
    """A `source_T_target` between ego (or LiDAR) frames -> the same motion between the camera frames:
    `camera_T_ego @ pose_ego @ ego_T_camera`."""
    ego_T_camera = ego_SE3_camera.as_matrix()
    return ego_SE3_camera.inverse().as_matrix() @ np.asarray(pose_ego, dtype=np.float64) @ ego_T_camera


def oracle_pose(city_SE3_ego_target: SE3, city_SE3_ego_source: SE3, ego_SE3_camera: SE3) -> FloatArray:
    """`source_T_target` in the camera frame from the dataset's ego poses of the two frames."""
    source_T_target_ego = city_SE3_ego_source.inverse().compose(city_SE3_ego_target)
    return to_camera(source_T_target_ego.as_matrix(), ego_SE3_camera)


def _point_cloud(points_m: np.ndarray) -> o3d.geometry.PointCloud:
    """An open3d cloud of `(N, 3)` points, one per `VOXEL_M` voxel."""
    points = np.asarray(points_m, dtype=np.float64).reshape(-1, 3)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return cloud.voxel_down_sample(VOXEL_M)
