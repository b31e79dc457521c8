"""The one ego frame of every record, and each dataset's own ego frame.

Records (`Frame.lidar`, `Frame.annotations`, `Frame.city_SE3_ego`, `CameraFrame.ego_SE3_camera`, ...) all use the
**canonical ego frame**: x forward, y left, z up, origin on the ground directly below the dataset's reference point,
so the road lies at z = 0 whatever the rig. A model trained on one dataset's records therefore sees the road at the
same height on another's. Each dataset keeps the same axes but puts its origin `origin_height_m` above the ground:

- Argoverse 2: the centre of the rear axle, 0.33 m up (median over the real log in `shared/data` of `city_SE3_egovehicle`
  against the map's ground-height raster: 0.324 m; the AV2 paper's wheels are 0.33 m in radius).
- KITTI (object, raw and tracking): the Velodyne HDL-64E, 1.73 m up (KITTI's sensor set-up).
- nuScenes (and Lyft in its schema): the `ego_pose` frame, already on the ground (LIDAR_TOP sits 1.84 m above it).

Adapters apply `to_ego` conversions when they read a dataset; writers (the synthetic city's, submission tables in an
ego frame) apply `from_ego` ones. Only the height differs, so x/y, yaws and velocities are the same in both frames.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np

from scenes.geometry import SE3
from scenes.records import Boxes3D, LidarSweep

__all__ = ["EgoConvention", "AV2_EGO", "KITTI_EGO", "NUSCENES_EGO"]


@dataclass(frozen=True)
class EgoConvention:
    """A dataset's ego frame: the canonical axes with the origin `origin_height_m` above the ground."""

    dataset: str
    origin_height_m: float
    reference_point: str

    @property
    def ego_SE3_dataset(self) -> SE3:
        """Dataset-frame coordinates -> canonical ego coordinates (a lift by `origin_height_m`)."""
        return SE3(np.eye(3), np.array([0.0, 0.0, self.origin_height_m]))

    @property
    def dataset_SE3_ego(self) -> SE3:
        return self.ego_SE3_dataset.inverse()

    def points_to_ego(self, points_m: np.ndarray) -> np.ndarray:
        """`(N, 3)` dataset-frame points -> canonical ego frame, same dtype."""
        return self._lift(points_m, self.origin_height_m)

    def points_from_ego(self, points_m: np.ndarray) -> np.ndarray:
        return self._lift(points_m, -self.origin_height_m)

    def sweep_to_ego(self, sweep: LidarSweep) -> LidarSweep:
        return replace(sweep, points_xyz_m=self.points_to_ego(sweep.points_xyz_m))

    def boxes_to_ego(self, boxes: Boxes3D) -> Boxes3D:
        """Dataset-ego-frame boxes -> canonical ego frame (only the centre's height changes)."""
        return replace(boxes, center_m=self.points_to_ego(boxes.center_m))

    def boxes_from_ego(self, boxes: Boxes3D) -> Boxes3D:
        return replace(boxes, center_m=self.points_from_ego(boxes.center_m))

    def pose_to_ego(self, city_SE3_dataset: SE3) -> SE3:
        """A dataset pose (`city_SE3_<dataset ego>`) -> `city_SE3_ego` of the canonical ego frame."""
        return city_SE3_dataset.compose(self.dataset_SE3_ego)

    def pose_from_ego(self, city_SE3_ego: SE3) -> SE3:
        return city_SE3_ego.compose(self.ego_SE3_dataset)

    def sensor_to_ego(self, dataset_SE3_sensor: SE3) -> SE3:
        """A dataset extrinsic (`<dataset ego>_SE3_sensor`) -> `ego_SE3_sensor` of the canonical ego frame."""
        return self.ego_SE3_dataset.compose(dataset_SE3_sensor)

    def sensor_from_ego(self, ego_SE3_sensor: SE3) -> SE3:
        return self.dataset_SE3_ego.compose(ego_SE3_sensor)

    @staticmethod
    def _lift(points_m: np.ndarray, dz_m: float) -> np.ndarray:
        lifted = np.array(points_m, copy=True)
        if dz_m:
            lifted[..., 2] += np.asarray(dz_m, dtype=lifted.dtype)
        return lifted


AV2_EGO: Final = EgoConvention("av2", 0.33, "centre of the rear axle")
KITTI_EGO: Final = EgoConvention("kitti", 1.73, "the Velodyne HDL-64E")
NUSCENES_EGO: Final = EgoConvention("nuscenes", 0.0, "the ego pose frame, on the ground")
