"""Semantic Palette's three training phases as `nn.Module`s whose forward returns the whole loss.

- `LayoutGAN`: layout generator + unconditional critic, WGAN-GP with entropy and spread losses on every
  resolution's output; real layouts are softened before the critic sees them.
- `ImageGAN`: SPADE generator + multi-scale discriminator on (layout, image) pairs, hinge + feature matching +
  low-pass L1, trained on real layouts.
- `JointModel`: both, fine-tuned together as in the official `seg_img_model.py`: the layout GAN's loss, SPADE's loss on
  real layouts, and a second image discriminator that tells real pairs from (generated layout, image generated from
  it); its generator term, weighted `loss.joint_generated_layouts`, reaches the layout generator through SPADE.

Each GAN's two updates are folded into one loss (`scenes.training.frozen`): generator terms evaluate the discriminator
through `frozen_call`, discriminator terms see detached fakes. Noise, requested proportions and the penalty's
interpolation weights come with the batch, so the loss is a function of the batch (seeded per sample).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from scenegen.config import ScenegenConfig
from scenegen.layout import LayoutCritic, LayoutGenerator, soften_layouts
from scenegen.losses import (
    entropy_loss,
    feature_matching_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    low_pass_l1,
    spread_loss,
)
from scenegen.spade import MultiscaleDiscriminator, SPADEGenerator
from scenes.training.frozen import frozen_call

__all__ = ["ImageGAN", "JointModel", "LayoutGAN", "Parts", "ScenegenBatch"]

Parts = dict[str, torch.Tensor]


class ScenegenBatch(NamedTuple):
    layouts: torch.Tensor  # (B, C, H, W) one-hot real layouts
    images: torch.Tensor  # (B, 3, H, W) real images in [-1, 1]
    layout_noise: torch.Tensor  # (B, latent_dim)
    proportions: torch.Tensor  # (B, C) requested proportions, sampled from the palette estimator
    mix: torch.Tensor  # (B,) gradient-penalty interpolation weights
    image_noise: torch.Tensor  # (B, noise_dim)


def _logits(outputs: list[list[torch.Tensor]]) -> list[torch.Tensor]:
    return [scale[-1] for scale in outputs]


class LayoutGAN(nn.Module):
    def __init__(self, config: ScenegenConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.generator = LayoutGenerator(config.layout_network, num_classes)
        self.critic = LayoutCritic(config.layout_network, num_classes, config.height_px, config.width_px)

    def losses(self, batch: ScenegenBatch) -> tuple[torch.Tensor, Parts, torch.Tensor]:
        """(loss, parts, the generated soft layouts)."""
        weights = self.config.loss
        output = self.generator(batch.layout_noise, batch.proportions)
        fake = output.layout
        real = soften_layouts(batch.layouts, weights.soften_sigma_px)
        real_scores = self.critic(real)
        fake_scores = self.critic(fake.detach())
        penalty = gradient_penalty(self.critic, real, fake.detach(), batch.mix)
        critic = fake_scores.mean() - real_scores.mean() + weights.gradient_penalty * penalty + weights.drift * (real_scores**2).mean()
        adversarial = -frozen_call(self.critic, fake).mean()
        layouts = [*output.intermediate_layouts, fake]
        masses = [*output.intermediate_masses, output.masses]
        entropy = torch.stack([entropy_loss(layout) for layout in layouts]).mean()
        spread = torch.stack([spread_loss(mass) for mass in masses]).mean()
        loss = critic + adversarial + weights.entropy * entropy + weights.spread * spread
        wasserstein = (real_scores.mean() - fake_scores.mean()).detach()
        return (
            loss,
            {"critic": critic.detach(), "wasserstein": wasserstein, "penalty": penalty.detach(), "entropy": entropy.detach(), "spread": spread.detach()},
            fake,
        )

    def forward(self, batch: ScenegenBatch) -> tuple[torch.Tensor, Parts]:
        loss, parts, _ = self.losses(batch)
        return loss, parts


class ImageGAN(nn.Module):
    def __init__(self, config: ScenegenConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.generator = SPADEGenerator(config.image_network, num_classes, config.levels)
        self.discriminator = MultiscaleDiscriminator(config.image_network, num_classes)

    def forward(self, batch: ScenegenBatch) -> tuple[torch.Tensor, Parts]:
        weights = self.config.loss
        fake = self.generator(batch.layouts, batch.image_noise)
        real_outputs = self.discriminator(batch.layouts, batch.images)
        fake_outputs = self.discriminator(batch.layouts, fake.detach())
        discriminator = hinge_discriminator_loss(_logits(real_outputs), _logits(fake_outputs))
        generated = frozen_call(self.discriminator, batch.layouts, fake)
        adversarial = hinge_generator_loss(_logits(generated))
        matching = feature_matching_loss(real_outputs, generated)
        low_pass = low_pass_l1(batch.images, fake)
        loss = discriminator + adversarial + weights.feature_matching * matching + weights.low_pass_l1 * low_pass
        return loss, {
            "discriminator": discriminator.detach(),
            "adversarial": adversarial.detach(),
            "feature_matching": matching.detach(),
            "low_pass_l1": low_pass.detach(),
        }


class JointModel(nn.Module):
    def __init__(self, config: ScenegenConfig, num_classes: int) -> None:
        super().__init__()
        self.config = config
        self.layout = LayoutGAN(config, num_classes)
        self.image = ImageGAN(config, num_classes)
        self.generated_discriminator = MultiscaleDiscriminator(config.image_network, num_classes)

    def forward(self, batch: ScenegenBatch) -> tuple[torch.Tensor, Parts]:
        layout_loss, layout_parts, soft_layouts = self.layout.losses(batch)
        image_loss, image_parts = self.image(batch)
        images = self.image.generator(soft_layouts, batch.image_noise)
        real = _logits(self.generated_discriminator(batch.layouts, batch.images))
        fake = _logits(self.generated_discriminator(soft_layouts.detach(), images.detach()))
        second = hinge_discriminator_loss(real, fake)
        fooled = hinge_generator_loss(_logits(frozen_call(self.generated_discriminator, soft_layouts, images)))
        loss = layout_loss + image_loss + second + self.config.loss.joint_generated_layouts * fooled
        return loss, {**layout_parts, **image_parts, "generated_discriminator": second.detach(), "generated_adversarial": fooled.detach()}
