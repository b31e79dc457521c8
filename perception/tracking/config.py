"""Configuration of the AB3DMOT-style tracker and of its fitting (configs/tracking/*.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from perception.tracking.kalman import NoiseModel
from scenes.categories import CATEGORY_ID
from scenes.config import StrictConfig


class TrackerConfig(StrictConfig):
    """Motion model, association, track management and post-processing."""

    motion_model: Literal["cv", "ctrv"] = "cv"
    metric: Literal["center", "iou"] = "center"
    matcher: Literal["greedy", "hungarian"] = "greedy"
    # Greedy order: "score" takes detections by decreasing score, each its cheapest free track (CenterPoint);
    # "cost" takes (track, detection) pairs by increasing cost (AB3DMOT's greedy matching).
    greedy_order: Literal["score", "cost"] = "score"
    distance_gate_m: Annotated[float, Field(gt=0)] = 2.0
    class_distance_gate_m: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict)
    min_iou: Annotated[float, Field(ge=0, lt=1)] = 0.01
    min_hits: Annotated[int, Field(ge=1)] = 2
    max_age: Annotated[int, Field(ge=0)] = 3
    min_score: Annotated[float, Field(ge=0, le=1)] = 0.0
    use_detection_velocity: bool = True
    noise: NoiseModel = Field(default_factory=NoiseModel)
    interpolate_gaps: bool = True
    # Reported heading: a track moving faster than this points along its filtered velocity (a box heading more than
    # 90 deg off is turned by pi), which undoes the detector's front/back flips; None keeps the filtered heading.
    heading_from_motion_min_speed_m_per_s: Annotated[float, Field(gt=0)] | None = None
    # Offline run: a track that gets confirmed also reports the frames it had as a tentative track.
    backfill_tentative: bool = True

    @field_validator("class_distance_gate_m")
    @classmethod
    def _known_classes(cls, gates: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(gates) - set(CATEGORY_ID))
        if unknown:
            raise ValueError(f"unknown categories {unknown}")
        return gates

    def gate_m(self, category_name: str) -> float:
        return self.class_distance_gate_m.get(category_name, self.distance_gate_m)


class TrackingSynthConfig(StrictConfig):
    """Simulated logs the statistics are measured on (agents and annotations only: no LiDAR, no cameras)."""

    num_logs: Annotated[int, Field(ge=1)] = 4
    seed: int = 0
    seconds: Annotated[float, Field(gt=0)] = 15.0


class TrackingConfig(StrictConfig):
    """Top-level tracking config (configs/tracking/*.yaml)."""

    tracker: TrackerConfig = Field(default_factory=TrackerConfig)
    synth: TrackingSynthConfig = Field(default_factory=TrackingSynthConfig)
    gate_percentile: Annotated[float, Field(gt=0, le=100)] = 99.0
    min_track_samples: Annotated[int, Field(ge=1)] = 20
