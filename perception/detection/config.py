"""Configuration of the CenterPoint-style detector and of its training (validated YAML, configs/detection/)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from perception.detection.box_coder import LAYOUT, BoxCoder
from perception.detection.voxelize import VoxelGrid
from scenes.categories import CATEGORY_ID
from scenes.config import StrictConfig

PositiveFloat = Annotated[float, Field(gt=0)]


class ModelConfig(StrictConfig):
    """Grid, input, network widths and decoding of the detector."""

    range_m: tuple[float, float, float, float, float, float] = (-40.0, -40.0, -3.0, 40.0, 40.0, 3.0)
    pillar_size_m: tuple[PositiveFloat, PositiveFloat] = (0.5, 0.5)
    num_sweeps: Annotated[int, Field(ge=1)] = 3
    # Adds one BEV channel per sweep, log(1 + points of that sweep in the pillar): a mover shows as occupancy that
    # shifts from one sweep's channel to the next, which the 2D backbone sees directly (the velocity head's cue).
    sweep_occupancy: bool = False
    # Whether the pillar encoder reads each point's intensity (False: read as 0). Each dataset scales intensity its own
    # way; a network that ignores it scores the same on every rig's scale, but loses the cue that tells the city's
    # pedestrians from its street furniture.
    use_intensity: bool = True
    # Reads each point's intensity as its rank among the intensities of the points the grid keeps (all sweeps of the
    # sample, pasted objects included), in (0, 1], ties sharing their mean rank. Every dataset's intensity scale is
    # (close to) a monotone map of reflectance, which leaves ranks unchanged: the network sees the single rig, AV2's
    # 8-bit 0-255 and KITTI's 0-1 reflectance on one scale.
    intensity_as_rank: bool = False
    # Point heights and box centres relative to the ground estimated from the sweep (`ground`), not to the ego frame:
    # the network sees a car on a slope, below a kerb or in a lower parking lane as it sees one on the road.
    ground_relative: bool = False
    # Class groups: one heatmap head per group (CenterPoint's class-grouped heads), names from scenes.categories.
    tasks: tuple[tuple[str, ...], ...] = (("REGULAR_VEHICLE",), ("PEDESTRIAN",))
    pillar_channels: Annotated[int, Field(ge=4)] = 32
    backbone_channels: tuple[int, int] = (32, 64)
    backbone_layers: tuple[int, int] = (3, 3)
    head_channels: Annotated[int, Field(ge=4)] = 32
    # The last this many tasks' heads read the backbone's features (their own 3x3 conv over all its channels) instead
    # of the conv that the other heads share: heads added to a trained, frozen network, whose shared conv keeps only
    # what its own tasks need.
    backbone_fed_tasks: Annotated[int, Field(ge=0)] = 0
    # Heads run at this stride of the pillar grid: 2 (CenterPoint's pillar setting) or 1 (finer, for small objects).
    out_stride: Literal[1, 2] = 2
    # Frame of the velocity channels of the box code: the ego frame (CenterPoint) or along/across the box's heading
    # (`box_coder`: learnable before the network tells front from back).
    velocity_frame: Literal["ego", "box"] = "ego"
    # Decoding: each box's velocity searched from its sweeps (`sweep_velocity`: the motion that carries its past points
    # onto its current ones) instead of the velocity head's.
    velocity_from_sweeps: bool = True
    # Decoding: boxes moving at least this fast (m/s, by their velocity) face the way they move; with the heads'
    # velocity, of their heading and its opposite, the one whose motion carries their past sweeps onto the current one
    # (`motion_heading`). None keeps the heads' heading.
    motion_heading_min_speed_m_per_s: Annotated[float, Field(ge=0)] | None = 1.0
    # Decoding: peaks kept per task, minimum score per class name (default for unnamed classes), rotated NMS.
    max_detections_per_task: Annotated[int, Field(ge=1)] = 100
    score_threshold: Annotated[float, Field(ge=0, le=1)] = 0.1
    class_score_thresholds: dict[str, Annotated[float, Field(ge=0, le=1)]] = Field(default_factory=dict)
    nms_iou_threshold: Annotated[float, Field(gt=0, le=1)] | None = None

    @field_validator("tasks")
    @classmethod
    def _known_classes(cls, tasks: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
        names = [name for task in tasks for name in task]
        unknown = sorted(set(names) - set(CATEGORY_ID))
        if unknown:
            raise ValueError(f"unknown categories {unknown}")
        if len(set(names)) != len(names) or not all(tasks):
            raise ValueError("every class must appear in exactly one non-empty task")
        return tasks

    @model_validator(mode="after")
    def _grid_divides(self) -> ModelConfig:
        grid = self.grid
        _, ny, nx = grid.shape_zyx
        if nx % 4 or ny % 4:
            raise ValueError(f"the BEV grid ({nx} x {ny} pillars) must be divisible by 4 (backbone strides)")
        if self.backbone_fed_tasks >= len(self.tasks):
            raise ValueError(f"backbone_fed_tasks ({self.backbone_fed_tasks}) must leave at least one of the {len(self.tasks)} tasks on the shared conv")
        unknown = sorted(set(self.class_score_thresholds) - set(self.class_names))
        if unknown:
            raise ValueError(f"class_score_thresholds names classes outside tasks: {unknown}")
        return self

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(name for task in self.tasks for name in task)

    @property
    def range_xy_m(self) -> tuple[float, float, float, float]:
        """The grid's BEV extent `(x_min, y_min, x_max, y_max)`."""
        return self.range_m[0], self.range_m[1], self.range_m[3], self.range_m[4]

    @property
    def grid(self) -> VoxelGrid:
        low_z, high_z = self.range_m[2], self.range_m[5]
        return VoxelGrid(self.range_m, (self.pillar_size_m[0], self.pillar_size_m[1], high_z - low_z))

    @property
    def out_cell_m(self) -> tuple[float, float]:
        return self.pillar_size_m[0] * self.out_stride, self.pillar_size_m[1] * self.out_stride

    @property
    def out_shape_hw(self) -> tuple[int, int]:
        _, ny, nx = self.grid.shape_zyx
        return ny // self.out_stride, nx // self.out_stride

    def backbone_fed(self, task_index: int) -> bool:
        """Whether the head of task `task_index` reads the backbone's features rather than the shared conv's."""
        return task_index >= len(self.tasks) - self.backbone_fed_tasks

    @property
    def box_coder(self) -> BoxCoder:
        """The coder of boxes at the heads' output cells."""
        return BoxCoder(origin_m=(self.range_m[0], self.range_m[1]), cell_m=self.out_cell_m, velocity_frame=self.velocity_frame)


_VARY_SENSOR_FIELDS = ("ground_shift_m", "point_keep_range", "max_ground_slope", "max_ground_undulation_m")
_VARY_INTENSITY_FIELDS = ("intensity_gain_range", "intensity_gamma_range")


class TrainConfig(StrictConfig):
    """Optimisation, targets, augmentation and data of `perception.detection.train.fit`."""

    seed: int = 0
    epochs: Annotated[int, Field(ge=1)] = 10
    batch_size: Annotated[int, Field(ge=1)] = 4  # global batch (split over distributed workers)
    learning_rate: PositiveFloat = 2e-3
    weight_decay: Annotated[float, Field(ge=0)] = 1e-2
    gaussian_overlap: Annotated[float, Field(gt=0, lt=1)] = 0.1
    min_gaussian_radius: Annotated[int, Field(ge=0)] = 2
    max_objects: Annotated[int, Field(ge=1)] = 256
    # Regression weights, one per channel of the box code (`box_coder.LAYOUT`).
    code_weights: tuple[float, ...] = LAYOUT.weights(velocity=0.2)
    regression_weight: PositiveFloat = 0.25
    # Error on the velocity channels: L1 (CenterPoint) or half the squared error (see `losses`).
    velocity_loss: Literal["l1", "l2"] = "l1"
    augment: bool = True
    flip_probability: Annotated[float, Field(ge=0, le=1)] = 0.5
    rotation_range_rad: Annotated[float, Field(ge=0)] = 0.3927
    scale_range: tuple[PositiveFloat, PositiveFloat] = (0.95, 1.05)
    # Sensor variation (`augment.vary_sensor`, `augment.keep_lasers`); the defaults change nothing.
    ground_shift_m: Annotated[float, Field(ge=0)] = 0.0
    # Terrain (`augment.random_terrain`): the steepest slope (dz per m) and the largest undulation amplitude.
    max_ground_slope: Annotated[float, Field(ge=0, le=0.2)] = 0.0
    max_ground_undulation_m: Annotated[float, Field(ge=0, le=2.0)] = 0.0
    # Intensity response (`augment.vary_intensity`), drawn per sample after pasting, so pasted objects share it.
    intensity_gain_range: tuple[PositiveFloat, PositiveFloat] = (1.0, 1.0)
    intensity_gamma_range: tuple[PositiveFloat, PositiveFloat] = (1.0, 1.0)
    laser_keep_range: tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]] = (1.0, 1.0)
    point_keep_range: tuple[Annotated[float, Field(gt=0, le=1)], Annotated[float, Field(gt=0, le=1)]] = (1.0, 1.0)
    min_interior_points: Annotated[int, Field(ge=0)] = 1
    # Share of samples that keep only their current sweep (past sweeps' points dropped, pasted objects' too): the
    # detector also runs on single sweeps (the real samples, KITTI object frames), which it must have seen in training.
    single_sweep_probability: Annotated[float, Field(ge=0, le=1)] = 0.0
    # Ground-truth sampling (`gt_sampling`): how many banked objects of each class to paste into every sample, turned
    # about the sensor into free space, and how many objects of each class the bank holds.
    paste_objects: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    paste_bank_size: Annotated[int, Field(ge=1)] = 1000
    # Share of the pasted objects placed beside walls, parked cars and trees rather than anywhere free
    # (`gt_sampling`, "placement beside structure").
    paste_near_structure: Annotated[float, Field(ge=0, le=1)] = 0.0
    num_threads: Annotated[int, Field(ge=1)] | None = None
    # Warm start: weights of a detector checkpoint whose model config is this run's or this run's less some tasks
    # (fine-tuning, or heads added to a trained network); a relative path is read from the working directory; ignored
    # when resuming.
    init_checkpoint: str | None = None
    # Train only the heads of tasks the init checkpoint lacks: everything it holds keeps its weights and BatchNorm
    # statistics, so the detections of its tasks stay exactly as they were.
    freeze_initialised: bool = False

    @property
    def varies_sensor(self) -> bool:
        """Whether any setting of `augment.vary_sensor` (ground shift, point share, terrain) differs from its default,
        the one that changes nothing."""
        return self._differs_from_default(_VARY_SENSOR_FIELDS)

    @property
    def varies_intensity(self) -> bool:
        """Whether the gain or gamma range of `augment.vary_intensity` differs from its default, the one that changes
        nothing."""
        return self._differs_from_default(_VARY_INTENSITY_FIELDS)

    @model_validator(mode="after")
    def _frozen_needs_init(self) -> TrainConfig:
        if self.freeze_initialised and self.init_checkpoint is None:
            raise ValueError("train.freeze_initialised needs train.init_checkpoint")
        return self

    def _differs_from_default(self, names: tuple[str, ...]) -> bool:
        return any(getattr(self, name) != type(self).model_fields[name].default for name in names)

    @field_validator("code_weights")
    @classmethod
    def _one_weight_per_channel(cls, weights: tuple[float, ...]) -> tuple[float, ...]:
        if len(weights) != LAYOUT.width:
            raise ValueError(f"expected {LAYOUT.width} code weights, got {len(weights)}")
        return weights


class SynthDataConfig(StrictConfig):
    """Synthetic training logs: `num_logs` logs simulated from seeds `seed`, `seed+1`, ..."""

    num_logs: Annotated[int, Field(ge=1)] = 8
    seed: int = 0
    seconds: PositiveFloat = 15.0
    frame_stride: Annotated[int, Field(ge=1)] = 1
    # LiDAR rigs of the logs, in turn (`scenes.synth.lidar`: single, av2, kitti, nuscenes), and the street clutter.
    lidar_rigs: tuple[str, ...] = ("single",)
    street_clutter: bool = True
    # People as bright in the LiDAR as on the real samples (`scenes.synth.world.SynthConfig.bright_people`).
    bright_people: bool = False
    # Each vehicle with its own paint, spread in brightness as real ones (`SynthConfig.vehicle_paint`).
    vehicle_paint: bool = False
    # People walking in groups of two and three (`SynthConfig.pedestrian_groups`).
    pedestrian_groups: bool = False
    # City styles of the logs, in turn (`scenes.synth.styles`): layouts differ in block size, sidewalks, how far
    # facades stand behind them, parked cars and crowds.
    styles: tuple[str, ...] = ("default",)

    @field_validator("lidar_rigs", "styles")
    @classmethod
    def _known_names(cls, names: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        from scenes.synth.lidar import RIG_NAMES
        from scenes.synth.styles import STYLES

        kind, known = ("rigs", tuple(RIG_NAMES)) if info.field_name == "lidar_rigs" else ("styles", tuple(STYLES))
        if not names or any(name not in known for name in names):
            raise ValueError(f"{info.field_name} must name {kind} among {', '.join(known)}; got {list(names)}")
        return names


class DetectionConfig(StrictConfig):
    """Top-level detection config (configs/detection/*.yaml)."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    synth: SynthDataConfig = Field(default_factory=SynthDataConfig)

    @model_validator(mode="after")
    def _pasted_classes_detected(self) -> DetectionConfig:
        unknown = sorted(set(self.train.paste_objects) - set(self.model.class_names))
        if unknown:
            raise ValueError(f"train.paste_objects names classes outside model.tasks: {unknown}")
        return self
