"""Regions of interest of a map: the city-frame area an evaluation considers (AV2: the drivable area dilated by 5 m)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np

from scenes.records import LaneGraph, MapRaster

__all__ = ["ROI_DILATION_M", "RegionOfInterest", "RasterRegionOfInterest"]

ROI_DILATION_M: Final = 5.0  # av2.map.map_api.ROI_ISOCONTOUR_M


class RegionOfInterest(Protocol):
    """Which city-frame points lie in the evaluated region of one log's map."""

    def contains_xy(self, points_xy_city_m: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class RasterRegionOfInterest:
    """ROI from a boolean raster layer (e.g. the synthetic city's `roi` layer) with its city->pixel Sim(2)."""

    raster: MapRaster

    @classmethod
    def from_lane_graph(cls, lane_graph: LaneGraph, dilation_m: float = ROI_DILATION_M) -> RasterRegionOfInterest | None:
        """The `roi` layer of a map, else its `drivable_area` layer dilated by `dilation_m` (as AV2 builds its ROI)."""
        from scipy.ndimage import distance_transform_edt  # only here: importing the adapters stays cheap

        if "roi" in lane_graph.rasters:
            return cls(lane_graph.rasters["roi"])
        if "drivable_area" not in lane_graph.rasters:
            return None
        drivable = lane_graph.rasters["drivable_area"]
        metres_per_pixel = 1.0 / abs(drivable.img_Sim2_city.scale)
        distance_m = distance_transform_edt(~drivable.values.astype(bool)) * metres_per_pixel
        return cls(MapRaster("roi", distance_m <= dilation_m, drivable.img_Sim2_city))

    def contains_xy(self, points_xy_city_m: np.ndarray) -> np.ndarray:
        return self.raster.lookup(points_xy_city_m, outside=0).astype(bool)
