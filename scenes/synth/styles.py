"""Domain styles of the synthetic city: palette, lighting, weather and city-layout statistics, selected by name.

A style changes what a model sees (colours, light, fog, night) and what the city is (block size, lanes, building
heights, traffic density), so a model trained on one style and tested on another faces a real domain gap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np

__all__ = ["CityscapesLabel", "Layout", "Lighting", "Style", "STYLES", "get_style", "style_names"]


class CityscapesLabel:
    """Cityscapes label ids (`labelIds`, not train ids) used by the simulator's semantic maps."""

    UNLABELED: Final = 0
    STATIC: Final = 4
    ROAD: Final = 7
    SIDEWALK: Final = 8
    BUILDING: Final = 11
    WALL: Final = 12
    FENCE: Final = 13
    POLE: Final = 17
    TRAFFIC_LIGHT: Final = 19
    TRAFFIC_SIGN: Final = 20
    VEGETATION: Final = 21
    TERRAIN: Final = 22
    SKY: Final = 23
    PERSON: Final = 24
    RIDER: Final = 25
    CAR: Final = 26
    TRUCK: Final = 27
    BUS: Final = 28
    BICYCLE: Final = 33


# Cityscapes label ids whose pixels carry instance ids (`label_id * 1000 + k`).
INSTANCE_LABELS: Final = frozenset({24, 25, 26, 27, 28, 33})


@dataclass(frozen=True)
class Layout:
    """City layout statistics: the road grid, the buildings and the traffic."""

    blocks_x: int = 3
    blocks_y: int = 3
    block_size_m: float = 90.0
    lanes_per_direction: int = 2
    lane_width_m: float = 3.5
    parking_width_m: float = 2.5
    sidewalk_width_m: float = 3.5
    curb_height_m: float = 0.15
    building_height_m: tuple[float, float] = (6.0, 20.0)
    building_setback_m: float = 2.0
    building_fill: float = 0.85
    tree_spacing_m: float = 14.0
    pole_spacing_m: float = 30.0
    vehicles_per_km_lane: float = 9.0
    pedestrians_per_block: float = 5.0
    cyclists_per_km: float = 3.0
    parked_fraction: float = 0.35
    static_objects_per_block: float = 2.0
    speed_limit_m_per_s: float = 11.0


@dataclass(frozen=True)
class Lighting:
    """Sun, ambient light, fog and night settings of the camera renderer."""

    sun_direction: tuple[float, float, float] = (0.4, 0.3, 0.85)
    sun_intensity: float = 0.75
    ambient: float = 0.45
    sky_zenith_rgb: tuple[int, int, int] = (90, 140, 215)
    sky_horizon_rgb: tuple[int, int, int] = (190, 210, 235)
    fog_density_per_m: float = 0.0
    fog_rgb: tuple[int, int, int] = (200, 200, 200)
    night: bool = False
    exposure: float = 1.0
    sensor_noise_std: float = 2.0


def _palette(**overrides: tuple[int, int, int]) -> MappingProxyType[int, tuple[int, int, int]]:
    base = {
        CityscapesLabel.ROAD: (95, 95, 100),
        CityscapesLabel.SIDEWALK: (175, 170, 160),
        CityscapesLabel.BUILDING: (160, 120, 95),
        CityscapesLabel.WALL: (150, 145, 135),
        CityscapesLabel.FENCE: (120, 115, 100),
        CityscapesLabel.POLE: (110, 110, 115),
        CityscapesLabel.TRAFFIC_LIGHT: (40, 40, 40),
        CityscapesLabel.TRAFFIC_SIGN: (220, 200, 40),
        CityscapesLabel.VEGETATION: (70, 125, 50),
        CityscapesLabel.TERRAIN: (120, 150, 80),
        CityscapesLabel.STATIC: (240, 110, 20),
        CityscapesLabel.PERSON: (150, 60, 60),
        CityscapesLabel.RIDER: (60, 60, 150),
        CityscapesLabel.CAR: (150, 30, 30),
        CityscapesLabel.TRUCK: (230, 230, 225),
        CityscapesLabel.BUS: (235, 180, 30),
        CityscapesLabel.BICYCLE: (30, 30, 30),
    }
    base.update({getattr(CityscapesLabel, name.upper()): rgb for name, rgb in overrides.items()})
    return MappingProxyType(base)


@dataclass(frozen=True)
class Style:
    """A named domain: layout statistics, lighting and the base colour of every semantic class."""

    name: str
    city_code: str
    layout: Layout
    lighting: Lighting
    palette: MappingProxyType[int, tuple[int, int, int]] = field(default_factory=_palette)
    vehicle_colors: tuple[tuple[int, int, int], ...] = (
        (150, 30, 30),
        (30, 50, 120),
        (200, 200, 200),
        (30, 30, 30),
        (120, 120, 125),
        (230, 230, 230),
        (40, 90, 50),
    )

    def palette_array(self) -> np.ndarray:
        """`(256, 3)` float RGB in [0, 1] indexed by Cityscapes label id."""
        table = np.full((256, 3), 0.5)
        for label, rgb in self.palette.items():
            table[label] = np.asarray(rgb) / 255.0
        return table


STYLES: Final[MappingProxyType[str, Style]] = MappingProxyType(
    {
        style.name: style
        for style in (
            Style("default", "SYD", Layout(), Lighting()),
            Style(
                "downtown",
                "SYT",
                Layout(
                    blocks_x=3,
                    blocks_y=3,
                    block_size_m=75.0,
                    lanes_per_direction=3,
                    lane_width_m=3.3,
                    parking_width_m=2.3,
                    sidewalk_width_m=4.5,
                    building_height_m=(18.0, 60.0),
                    building_setback_m=0.5,
                    building_fill=0.97,
                    tree_spacing_m=30.0,
                    pole_spacing_m=20.0,
                    vehicles_per_km_lane=14.0,
                    pedestrians_per_block=14.0,
                    cyclists_per_km=6.0,
                    parked_fraction=0.6,
                    static_objects_per_block=4.0,
                    speed_limit_m_per_s=9.0,
                ),
                Lighting(sun_direction=(-0.3, 0.5, 0.6), sun_intensity=0.6, ambient=0.5, sky_zenith_rgb=(120, 150, 190)),
                _palette(road=(80, 80, 85), sidewalk=(150, 150, 150), building=(120, 125, 135), vegetation=(60, 100, 55)),
            ),
            Style(
                "night",
                "SYN",
                Layout(blocks_x=3, blocks_y=2, block_size_m=95.0, vehicles_per_km_lane=7.0, pedestrians_per_block=2.0),
                Lighting(
                    sun_direction=(0.2, -0.3, 0.9),
                    sun_intensity=0.04,
                    ambient=0.08,
                    sky_zenith_rgb=(5, 8, 20),
                    sky_horizon_rgb=(25, 25, 45),
                    night=True,
                    exposure=1.0,
                    sensor_noise_std=5.0,
                ),
                _palette(building=(140, 130, 120)),
            ),
            Style(
                "fog",
                "SYF",
                Layout(
                    blocks_x=2,
                    blocks_y=2,
                    block_size_m=110.0,
                    lanes_per_direction=1,
                    lane_width_m=3.8,
                    parking_width_m=3.0,
                    sidewalk_width_m=2.5,
                    building_height_m=(4.0, 9.0),
                    building_setback_m=6.0,
                    building_fill=0.55,
                    tree_spacing_m=8.0,
                    pole_spacing_m=40.0,
                    vehicles_per_km_lane=8.0,
                    pedestrians_per_block=2.0,
                    cyclists_per_km=2.0,
                    parked_fraction=0.2,
                    speed_limit_m_per_s=13.0,
                ),
                Lighting(
                    sun_direction=(0.0, 0.2, 1.0),
                    sun_intensity=0.25,
                    ambient=0.7,
                    sky_zenith_rgb=(205, 205, 205),
                    sky_horizon_rgb=(215, 215, 215),
                    fog_density_per_m=0.025,
                    fog_rgb=(210, 210, 210),
                ),
                _palette(terrain=(105, 130, 75), vegetation=(55, 95, 45), building=(185, 175, 160)),
            ),
            Style(
                "desert",
                "SYS",
                Layout(
                    blocks_x=3,
                    blocks_y=2,
                    block_size_m=120.0,
                    lanes_per_direction=2,
                    lane_width_m=3.7,
                    building_height_m=(3.5, 8.0),
                    building_setback_m=8.0,
                    building_fill=0.5,
                    tree_spacing_m=35.0,
                    vehicles_per_km_lane=6.0,
                    pedestrians_per_block=1.5,
                    speed_limit_m_per_s=15.0,
                ),
                Lighting(
                    sun_direction=(0.6, -0.2, 0.5),
                    sun_intensity=0.95,
                    ambient=0.35,
                    sky_zenith_rgb=(70, 130, 230),
                    sky_horizon_rgb=(225, 215, 195),
                    exposure=1.05,
                ),
                _palette(
                    road=(110, 105, 100),
                    sidewalk=(205, 190, 160),
                    building=(215, 185, 140),
                    terrain=(200, 170, 120),
                    vegetation=(95, 115, 60),
                ),
            ),
        )
    }
)


def style_names() -> tuple[str, ...]:
    return tuple(STYLES)


def get_style(name: str) -> Style:
    """The style called `name`; an unknown name lists the known ones."""
    try:
        return STYLES[name]
    except KeyError:
        raise ValueError(f"unknown synthetic-city style {name!r}; known styles: {', '.join(STYLES)}") from None
