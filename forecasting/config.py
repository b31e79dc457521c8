"""Configuration of the forecaster: input features, network, training objective (plain, CAB, Reweight, RUBiZ), optimiser."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import Field, model_validator

from scenes.config import StrictConfig
from scenes.records import SignalState

Objective = Literal["plain", "cab", "reweight", "rubiz"]
LANE_POINT_DIM: Final = 5  # x, y, direction x, direction y, in intersection
# One-hot channels of a lane point's signal state (UNKNOWN: all zero).
SIGNAL_CHANNELS: Final = (SignalState.STOP, SignalState.CAUTION, SignalState.GO)


class LaneGoalConfig(StrictConfig):
    """TNT-style goal candidates on reachable lanes (`forecasting.lane_goals`); when enabled, the network scores them and
    decodes one trajectory along each goal's path (`forecasting.goal_decoder`) instead of `num_modes` latent modes."""

    enabled: bool = False
    max_paths: int = Field(6, ge=2, description="paths per agent: the straight ray and lane paths (vehicles) or rays around it (others)")
    goals_per_path: int = Field(12, ge=2, description="goals evenly spread along each path, the first at its start")
    start_radius_m: float = Field(3.5, gt=0, description="lanes passing this close to the agent can be entered")
    start_max_angle_deg: float = Field(60.0, ge=0, le=180, description="largest angle between a moving agent's heading and a lane it enters")
    stopped_speed_m_per_s: float = Field(0.5, ge=0, description="below this speed an agent may enter lanes in any direction")
    max_acceleration_m_per_s2: float = Field(2.5, ge=0, description="reach of the paths: v T + a T^2 / 2")
    min_reach_m: float = Field(8.0, gt=0)
    max_lateral_offset_m: float = Field(1.5, ge=0, description="largest offset of a decoded trajectory from its path")
    nms_distance_m: float = Field(2.0, ge=0, description="modes whose endpoints are closer than this are suppressed")


class FeatureConfig(StrictConfig):
    """What the network sees of one agent, in its own frame at the prediction time."""

    history_steps: int = Field(5, ge=1, description="observed steps, the current one included")
    horizon_steps: int = Field(6, ge=1, description="predicted steps")
    step_s: float = Field(0.5, gt=0, description="time between two steps of history and forecast")
    max_neighbors: int = Field(8, ge=0)
    neighbor_radius_m: float = Field(30.0, gt=0)
    max_lanes: int = Field(12, ge=0, description="lane segments kept around the agent")
    lane_points: int = Field(8, ge=2, description="points per lane segment")
    lane_segment_length_m: float = Field(12.0, gt=0)
    lane_radius_m: float = Field(40.0, gt=0)
    position_scale_m: float = Field(10.0, gt=0, description="positions are divided by this before the network")
    heading_source: Literal["yaw", "motion"] = Field(
        "yaw",
        description="heading of every state (the agent frame's +x, heading features): the box yaw, or (motion) the "
        "direction of its velocity wherever the speed reaches motion_heading_min_speed_m_per_s, else the yaw",
    )
    motion_heading_min_speed_m_per_s: float = Field(1.0, ge=0)
    traffic_signals: bool = Field(
        False,
        description="lane points also carry the state (stop, caution, go) of the signal at the lane's end or on the lane, "
        "where the scenario records signal states (the synthetic city does; AV2 and nuScenes do not: all zeros there)",
    )
    lane_goals: LaneGoalConfig = LaneGoalConfig()

    @property
    def lane_point_dim(self) -> int:
        """Features per lane point: x, y, direction x, direction y, in intersection (+ stop, caution, go)."""
        return LANE_POINT_DIM + (len(SIGNAL_CHANNELS) if self.traffic_signals else 0)


class ModelConfig(StrictConfig):
    """Sizes of the encoders and of the categorical-latent decoder."""

    hidden_dim: int = Field(64, ge=8)
    category_dim: int = Field(8, ge=1)
    num_modes: int = Field(5, ge=1, le=25, description="values of the categorical latent z = predicted modes")
    min_log_scale: float = Field(-3.0, description="lower clamp of the Laplace log-scale (log metres)")


class ObjectiveConfig(StrictConfig):
    """Training objective. `cab`: L + blind_weight * L_blind - kl_weight * KL[p(z|X,C) || sg p(z|X,~C)]."""

    method: Objective = "cab"
    blind_weight: float = Field(1.0, ge=0, description="lambda: weight of the blind branch's loss")
    kl_weight: float = Field(5.0, ge=0, description="lambda_KL: weight of the (negated) KL term of CAB")
    posterior_kl_weight: float = Field(1.0, ge=0, description="alpha: weight of KL[q(z|X,C,Y) || p(z|X,C)] (equation 2)")
    mutual_information_weight: float = Field(
        1.0, ge=0, description="weight of Trajectron++'s mutual information term I(X, C; z) in every branch's loss"
    )
    logit_clip: float = Field(5.0, gt=0, description="training-time clip of the centred latent logits (official CAB code)")


class OptimConfig(StrictConfig):
    epochs: int = Field(20, ge=1)
    batch_size: int = Field(128, ge=1, description="global batch size (split across distributed workers)")
    learning_rate: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    grad_clip_norm: float = Field(5.0, gt=0)


class SynthDataConfig(StrictConfig):
    """Synthetic-city training data (`--data synth`): logs simulated without sensors."""

    train_logs: int = Field(8, ge=1)
    seconds: float = Field(30.0, gt=0)
    seed: int = 0
    sample_every_steps: int = Field(1, ge=1, description="prediction times are this many forecast steps apart")


class TrackerNoiseConfig(StrictConfig):
    """Training-time errors like a tracker's on the inputs (`forecasting.tracker_noise`); all zero (off) by default."""

    position_std_m: float = Field(0.0, ge=0, description="Gaussian error of every observed position, the agent's frame origin included")
    velocity_std_m_per_s: float = Field(0.0, ge=0, description="Gaussian error per velocity axis")
    velocity_outlier_probability: float = Field(0.0, ge=0, le=1, description="share of states whose velocity error has the wider spread")
    velocity_outlier_std_m_per_s: float = Field(0.0, ge=0, description="that wider spread, per axis")
    heading_std_deg: float = Field(0.0, ge=0, description="Gaussian error of the agent's heading, which turns its frame")
    stopped_flip_probability: float = Field(0.0, ge=0, le=1, description="chance that a stopped state's heading reads backwards")
    stopped_speed_m_per_s: float = Field(0.5, ge=0, description="below this speed a state counts as stopped")

    @property
    def enabled(self) -> bool:
        return any((self.position_std_m, self.velocity_std_m_per_s, self.velocity_outlier_probability, self.heading_std_deg, self.stopped_flip_probability))


class ForecastingConfig(StrictConfig):
    seed: int = 0
    features: FeatureConfig = FeatureConfig()
    model: ModelConfig = ModelConfig()
    objective: ObjectiveConfig = ObjectiveConfig()
    optim: OptimConfig = OptimConfig()
    synth: SynthDataConfig = SynthDataConfig()
    tracker_noise: TrackerNoiseConfig = TrackerNoiseConfig()

    @model_validator(mode="after")
    def _enough_goals(self) -> ForecastingConfig:
        goals = self.features.lane_goals
        if goals.enabled and goals.goals_per_path < self.model.num_modes:
            raise ValueError(
                f"features.lane_goals.goals_per_path ({goals.goals_per_path}) must be at least model.num_modes "
                f"({self.model.num_modes}): an agent may have a single path"
            )
        return self
