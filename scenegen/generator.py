"""Generation with a trained Semantic Palette: `SceneGenerator.from_checkpoint(path)`.

A request names some classes' proportions (`{"road": 0.35, "car": 0.08}`); the palette estimator completes it
(the other classes share the remaining mass as its conditional predicts), or `sample_palettes` draws whole palettes.
The layout generator turns each palette into a soft layout (with `generation_balancing_iterations` of the assisted
activation), whose argmax is the scene's label map; SPADE renders the
image from that label map (one-hot), so the image and the labels written beside it agree pixel for pixel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import torch

from scenegen.config import ScenegenConfig
from scenegen.data import CLASS_NAMES, one_hot
from scenegen.layout import LayoutGenerator
from scenegen.palette import PaletteEstimator
from scenegen.spade import SPADEGenerator
from scenegen.train import STAGE
from scenes.config import ConfigError, validate_config
from scenes.errors import InputError
from scenes.training.checkpoint import CheckpointError, load_checkpoint

__all__ = ["SHIPPED_CHECKPOINT", "GeneratedScenes", "SceneGenerator", "parse_proportions"]

# Trained by `drivestack train scenegen --config configs/scenegen/palette_synth.yaml --data synth`.
SHIPPED_CHECKPOINT: Final = Path(__file__).resolve().parent / "checkpoints" / "palette_synth.pt"
_CHUNK: Final = 16


def parse_proportions(text: str, option: str = "--proportions") -> dict[str, float]:
    """`"road=0.35,sky=0.2"` -> `{"road": 0.35, "sky": 0.2}`; unknown classes, repeated classes, values outside
    [0, 1] or a sum above 1 are `InputError`s naming the option."""
    request: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep:
            raise InputError(f"{option}: '{item}' is not CLASS=VALUE")
        if name not in CLASS_NAMES:
            raise InputError(f"{option}: unknown class '{name}'; classes: {', '.join(CLASS_NAMES)}")
        if name in request:
            raise InputError(f"{option}: class '{name}' is given twice")
        try:
            share = float(value)
        except ValueError:
            raise InputError(f"{option}: '{value.strip()}' is not a number (class '{name}')") from None
        if not 0.0 <= share <= 1.0:
            raise InputError(f"{option}: {name}={share:g} is outside [0, 1]")
        request[name] = share
    if not request:
        raise InputError(f"{option}: no CLASS=VALUE given")
    total = sum(request.values())
    if total > 1.0 + 1e-6:
        raise InputError(f"{option}: the proportions sum to {total:g}, more than 1")
    return request


@dataclass(frozen=True)
class GeneratedScenes:
    """`images` `(N, H, W, 3)` uint8, `labels` `(N, H, W)` uint8 train ids, and the `requested` palettes `(N, C)`."""

    images: np.ndarray
    labels: np.ndarray
    requested: np.ndarray


class SceneGenerator:
    def __init__(
        self, config: ScenegenConfig, palette: PaletteEstimator, layout: LayoutGenerator, image: SPADEGenerator, device: torch.device | str = "cpu"
    ) -> None:
        self.config = config
        self.palette = palette
        self.device = torch.device(device)
        self.layout = layout.to(self.device).eval()
        self.image = image.to(self.device).eval()
        self.iterations = config.layout_network.generation_balancing_iterations

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike[str], device: torch.device | str = "cpu") -> SceneGenerator:
        payload = load_checkpoint(path, STAGE)
        try:
            config = validate_config(payload["config"], ScenegenConfig, f"{path}:config")
        except ConfigError as error:
            raise CheckpointError(str(error)) from None
        state = payload["state_dict"]
        classes = len(CLASS_NAMES)
        layout = LayoutGenerator(config.layout_network, classes)
        image = SPADEGenerator(config.image_network, classes, config.levels)
        try:
            palette = PaletteEstimator.from_state_dict(_entries(state, "palette."), CLASS_NAMES)
            layout.load_state_dict(_entries(state, "layout."))
            image.load_state_dict(_entries(state, "image."))
        except (RuntimeError, ValueError) as error:
            raise CheckpointError(f"{path}: weights do not fit the stored config ({str(error).splitlines()[0]})") from None
        return cls(config, palette, layout, image, device)

    def complete(self, request: Mapping[str, float], rng: np.random.Generator | None = None) -> np.ndarray:
        """The full palette `(C,)` of a request by class name (the estimator's conditional mean without `rng`)."""
        return np.asarray(self.palette.complete({CLASS_NAMES.index(name): share for name, share in request.items()}, rng), dtype=np.float32)

    def sample_palettes(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(self.palette.sample(count, rng), dtype=np.float32)

    @torch.inference_mode()
    def generate(self, palettes: np.ndarray, seed: int = 0) -> GeneratedScenes:
        """One scene per palette `(N, C)`; the same palettes and seed give the same scenes."""
        palettes = np.asarray(palettes, dtype=np.float32)
        if palettes.ndim != 2 or palettes.shape[1] != len(CLASS_NAMES) or len(palettes) == 0:
            raise InputError(f"palettes: expected shape (N >= 1, {len(CLASS_NAMES)}), got {palettes.shape}")
        generator = torch.Generator().manual_seed(seed)
        images, labels = [], []
        for begin in range(0, len(palettes), _CHUNK):
            chunk = torch.from_numpy(palettes[begin : begin + _CHUNK])
            layout_noise = torch.randn(len(chunk), self.config.layout_network.latent_dim, generator=generator)
            image_noise = torch.randn(len(chunk), self.config.image_network.noise_dim, generator=generator)
            soft = self.layout(layout_noise.to(self.device), chunk.to(self.device), iterations=self.iterations).layout
            hard = soft.argmax(dim=1)
            layouts = torch.from_numpy(one_hot(hard.cpu().numpy(), len(CLASS_NAMES))).to(self.device)
            rendered = self.image(layouts, image_noise.to(self.device))
            images.append(_to_uint8(rendered))
            labels.append(hard.to(torch.uint8).cpu().numpy())
        return GeneratedScenes(np.concatenate(images), np.concatenate(labels), palettes)

    @torch.inference_mode()
    def edit(self, labels: np.ndarray, region: np.ndarray, palette: np.ndarray, seed: int = 0) -> GeneratedScenes:
        """Partial editing: the pixels of `region` `(H, W)` bool of the layout `labels` `(H, W)` are regenerated with
        the proportions `palette` `(C,)` within the region; the other pixels keep their classes. One scene."""
        height, width = self.config.height_px, self.config.width_px
        if labels.shape != (height, width) or region.shape != (height, width):
            raise InputError(f"edit: labels and region must be {height}x{width}, got {labels.shape} and {region.shape}")
        if labels.max(initial=0) >= len(CLASS_NAMES):
            raise InputError(f"edit: labels must be train ids below {len(CLASS_NAMES)}")
        generator = torch.Generator().manual_seed(seed)
        layout_noise = torch.randn(1, self.config.layout_network.latent_dim, generator=generator).to(self.device)
        image_noise = torch.randn(1, self.config.image_network.noise_dim, generator=generator).to(self.device)
        current = torch.from_numpy(one_hot(labels[None], len(CLASS_NAMES))).to(self.device)
        mask = torch.from_numpy(region[None, None].astype(np.float32)).to(self.device)
        request = torch.from_numpy(np.asarray(palette, dtype=np.float32)[None]).to(self.device)
        edited = self.layout.edit(current, mask, request, layout_noise, self.iterations).argmax(dim=1)
        rendered = self.image(torch.from_numpy(one_hot(edited.cpu().numpy(), len(CLASS_NAMES))).to(self.device), image_noise)
        return GeneratedScenes(_to_uint8(rendered), edited.to(torch.uint8).cpu().numpy(), request.cpu().numpy())


def _entries(state: Mapping[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The entries of `state` under `prefix`, with the prefix removed."""
    return {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """`(B, 3, H, W)` images in [-1, 1] -> `(B, H, W, 3)` uint8."""
    return ((images.permute(0, 2, 3, 1) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
