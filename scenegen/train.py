"""Semantic Palette on the training harness: the palette estimator, then three phases, then one shipped checkpoint.

`train_scenegen` fits the palette estimator on the training layouts' class proportions (closed form), trains the
layout GAN (`OUT/layout`), SPADE on real layouts (`OUT/image`) and both jointly (`OUT/joint`, starting from the two
previous phases' weights), each phase a harness run that resumes from its own `last.pt`, and assembles `OUT/palette.pt`:
the estimator and the two generators (stored in float16), which is all `drivestack generate` needs.

Batches: real layouts (one-hot) and images in [-1, 1], flipped horizontally together with probability 1/2; the
proportions the layout generator is asked for are drawn from the palette estimator, as in the official training;
noise and gradient-penalty weights are drawn per sample from `(seed, epoch, index)`, so a resumed run draws the
same ones. Discriminators train at `discriminator_lr_factor` times the generators' learning rate (SPADE's TTUR).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from scenegen.config import PhaseConfig, ScenegenConfig
from scenegen.data import CLASS_NAMES, LayoutSample, one_hot, proportions_of
from scenegen.model import ImageGAN, JointModel, LayoutGAN, ScenegenBatch
from scenegen.palette import PaletteEstimator
from scenes.errors import InputError
from scenes.training.checkpoint import load_checkpoint, save_checkpoint
from scenes.training.harness import LoopSettings, ParameterGroup, TrainingTask

__all__ = [
    "FINAL",
    "IMAGE_STAGE",
    "JOINT_STAGE",
    "LAYOUT_STAGE",
    "STAGE",
    "ImageTask",
    "JointTask",
    "LayoutTask",
    "fit_palette",
    "shipped_state",
    "train_scenegen",
]

STAGE: Final = "scenegen"
LAYOUT_STAGE: Final = "scenegen-layout"
IMAGE_STAGE: Final = "scenegen-image"
JOINT_STAGE: Final = "scenegen-joint"
FINAL: Final = "palette.pt"
PHASE_FINAL: Final = "phase.pt"
PHASE_KEYS: Final = ("layout_train", "image_train", "joint_train")

Train = Callable[[Callable[[Any], TrainingTask], Any, Path], Path]


def fit_palette(config: ScenegenConfig, samples: list[LayoutSample]) -> PaletteEstimator:
    """The palette estimator of the training layouts' class proportions."""
    proportions = proportions_of(np.stack([sample.labels for sample in samples]), len(CLASS_NAMES))
    return PaletteEstimator.fit(proportions, CLASS_NAMES, max_components=config.palette.max_components, seed=config.layout_train.seed)


class _PhaseTask(TrainingTask):
    """Batches of real pairs, palette-drawn proportions and noise, for one phase's model."""

    final_name = PHASE_FINAL
    config: ScenegenConfig

    def __init__(self, config: ScenegenConfig, samples: list[LayoutSample], palette: PaletteEstimator, config_source: str = "this run's config") -> None:
        self.config = config
        self.config_source = config_source
        self.samples = samples
        self.palette = palette
        phase = self.phase
        self.loop = LoopSettings(
            epochs=phase.epochs,
            batch_size=phase.batch_size,
            learning_rate=phase.learning_rate,
            weight_decay=phase.weight_decay,
            seed=phase.seed,
            grad_clip_norm=None,
            schedule="constant",
            num_threads=phase.num_threads,
            betas=phase.betas,
        )

    phase_key: str

    @property
    def phase(self) -> PhaseConfig:
        phase: PhaseConfig = getattr(self.config, self.phase_key)
        return phase

    def resume_relevant(self, config: dict[str, Any]) -> dict[str, Any]:
        """The config without the training settings of the phases this one does not start from, so a finished
        phase resumes when only another phase's settings changed (joint fine-tuning depends on all three)."""
        if self.phase_key == "joint_train":
            return config
        return {key: value for key, value in config.items() if key == self.phase_key or key not in PHASE_KEYS}

    def __len__(self) -> int:
        return len(self.samples)

    def make_batch(self, indices: np.ndarray, epoch: int, device: torch.device) -> ScenegenBatch:
        config = self.config
        layouts, images, noise, proportions, mix, image_noise = [], [], [], [], [], []
        for index in indices:
            rng = np.random.default_rng([self.loop.seed, epoch, int(index)])
            sample = self.samples[int(index)]
            labels, image = sample.labels, sample.image
            if rng.random() < 0.5:
                labels, image = labels[:, ::-1], image[:, ::-1]
            layouts.append(one_hot(labels, len(CLASS_NAMES)))
            images.append(image.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0)
            noise.append(rng.standard_normal(config.layout_network.latent_dim))
            proportions.append(self.palette.sample(1, rng)[0])
            mix.append(rng.random())
            image_noise.append(rng.standard_normal(config.image_network.noise_dim))

        def tensor(values: list[Any]) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(np.stack(values), dtype=np.float32)).to(device)

        return ScenegenBatch(tensor(layouts), tensor(images), tensor(noise), tensor(proportions), tensor(mix), tensor(image_noise))

    def loss(self, model: torch.nn.Module, batch: ScenegenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts = model(batch)
        return loss, parts


def _groups(generators: list[torch.nn.Module], discriminators: list[torch.nn.Module], factor: float) -> list[ParameterGroup]:
    return [
        ParameterGroup([p for module in generators for p in module.parameters()]),
        ParameterGroup([p for module in discriminators for p in module.parameters()], factor),
    ]


class LayoutTask(_PhaseTask):
    phase_key = "layout_train"
    stage = LAYOUT_STAGE
    plot_title = "Semantic Palette: layout GAN"

    def build_model(self) -> LayoutGAN:
        return LayoutGAN(self.config, len(CLASS_NAMES))

    def parameter_groups(self, model: torch.nn.Module) -> list[ParameterGroup]:
        assert isinstance(model, LayoutGAN)
        return _groups([model.generator], [model.critic], self.phase.discriminator_lr_factor)


class ImageTask(_PhaseTask):
    phase_key = "image_train"
    stage = IMAGE_STAGE
    plot_title = "Semantic Palette: SPADE layout-to-image"

    def build_model(self) -> ImageGAN:
        return ImageGAN(self.config, len(CLASS_NAMES))

    def parameter_groups(self, model: torch.nn.Module) -> list[ParameterGroup]:
        assert isinstance(model, ImageGAN)
        return _groups([model.generator], [model.discriminator], self.phase.discriminator_lr_factor)


class JointTask(_PhaseTask):
    """Joint fine-tuning, starting from the layout phase's and the image phase's final weights."""

    phase_key = "joint_train"
    stage = JOINT_STAGE
    plot_title = "Semantic Palette: joint fine-tuning"

    def __init__(
        self,
        config: ScenegenConfig,
        samples: list[LayoutSample],
        palette: PaletteEstimator,
        layout_checkpoint: Path,
        image_checkpoint: Path,
        config_source: str = "this run's config",
    ) -> None:
        super().__init__(config, samples, palette, config_source)
        self.layout_checkpoint = layout_checkpoint
        self.image_checkpoint = image_checkpoint

    def build_model(self) -> JointModel:
        model = JointModel(self.config, len(CLASS_NAMES))
        model.layout.load_state_dict(load_checkpoint(self.layout_checkpoint, LAYOUT_STAGE)["state_dict"])
        model.image.load_state_dict(load_checkpoint(self.image_checkpoint, IMAGE_STAGE)["state_dict"])
        return model

    def parameter_groups(self, model: torch.nn.Module) -> list[ParameterGroup]:
        assert isinstance(model, JointModel)
        discriminators = [model.layout.critic, model.image.discriminator, model.generated_discriminator]
        return _groups([model.layout.generator, model.image.generator], discriminators, self.phase.discriminator_lr_factor)


def shipped_state(palette: PaletteEstimator, joint_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The generation checkpoint's weights: `palette.*`, `layout.*` and `image.*` (generators in float16)."""
    state = {f"palette.{key}": value for key, value in palette.state_dict().items()}
    for prefix, source in (("layout.", "layout.generator."), ("image.", "image.generator.")):
        for key, value in joint_state.items():
            if key.startswith(source):
                state[prefix + key[len(source) :]] = value.half() if value.is_floating_point() else value
    return state


def train_scenegen(config: ScenegenConfig, samples: list[LayoutSample], out_dir: Path, train: Train, config_source: str = "this run's config") -> Path:
    """Fits the palette, trains the three phases with `train(task_factory, samples, phase_dir)` and writes
    `out_dir/palette.pt`; running again resumes each phase where it stopped."""
    from functools import partial

    if len(samples) < 2:
        raise InputError(f"{config_source}: Semantic Palette needs at least 2 training layouts, got {len(samples)}")
    palette = fit_palette(config, samples)
    layout = train(partial(LayoutTask, config, palette=palette, config_source=config_source), samples, out_dir / "layout")
    image = train(partial(ImageTask, config, palette=palette, config_source=config_source), samples, out_dir / "image")
    joint = train(
        partial(JointTask, config, palette=palette, layout_checkpoint=layout, image_checkpoint=image, config_source=config_source), samples, out_dir / "joint"
    )
    payload = load_checkpoint(joint, JOINT_STAGE)
    return save_checkpoint(
        out_dir / FINAL,
        stage=STAGE,
        state_dict=shipped_state(palette, payload["state_dict"]),
        config=config,
        history={"joint": payload.get("history", [])},
    )
