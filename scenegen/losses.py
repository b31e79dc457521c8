"""The losses of Semantic Palette's two GANs (official `models/seg_generator/models/seg_model.py` and SPADE).

Layout GAN: WGAN-GP (critic `D(fake) - D(real) + lambda * (||grad D(x_hat)|| - 1)^2` on random interpolates, plus
ProGAN's drift `eps * D(real)^2`; generator `-D(fake)`), the entropy loss (mean per-pixel entropy of the layout,
pushing every pixel towards one class) and the spread loss (`(sum_c m_c - 1)^2` per pixel: the assisted masses
should tile the image, so the normalisation leaves the requested proportions intact).

Image GAN: hinge loss (`relu(1 - D(real)) + relu(1 + D(fake))` for the discriminator, `-D(fake)` for the generator),
feature matching (L1 between the discriminator's intermediate features of real and generated pairs, averaged over
layers and scales) and, in place of the VGG loss, L1 between 4x-downsampled real and generated images.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = [
    "entropy_loss",
    "feature_matching_loss",
    "gradient_penalty",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "low_pass_l1",
    "spread_loss",
]

LOW_PASS_FACTOR = 4


def gradient_penalty(critic: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
    """`mean((||grad critic(x_hat)||_2 - 1)^2)` at `x_hat = mix * real + (1 - mix) * fake`, `mix` `(B,)` in [0, 1]
    (`fake` detached by the caller; the penalty's gradients reach the critic)."""
    weights = mix.view(-1, *([1] * (real.dim() - 1)))
    interpolates = (weights * real + (1.0 - weights) * fake).requires_grad_(True)
    (gradients,) = torch.autograd.grad(critic(interpolates).sum(), interpolates, create_graph=True)
    return ((gradients.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def entropy_loss(layout: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of the entropy (nats) of the class distribution of a `(B, C, H, W)` soft layout."""
    return -(layout * torch.log(layout.clamp(min=1e-8))).sum(dim=1).mean()


def spread_loss(masses: torch.Tensor) -> torch.Tensor:
    """Mean over pixels of `(sum_c m_c - 1)^2` for `(B, C, H, W)` assisted-activation masses."""
    return ((masses.sum(dim=1) - 1.0) ** 2).mean()


def hinge_discriminator_loss(real_logits: list[torch.Tensor], fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Sum over scales of `mean(relu(1 - D(real))) + mean(relu(1 + D(fake)))`."""
    return torch.stack([F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean() for real, fake in zip(real_logits, fake_logits, strict=True)]).sum()


def hinge_generator_loss(fake_logits: list[torch.Tensor]) -> torch.Tensor:
    """Sum over scales of `-mean(D(fake))`."""
    return torch.stack([-fake.mean() for fake in fake_logits]).sum()


def feature_matching_loss(real_features: list[list[torch.Tensor]], fake_features: list[list[torch.Tensor]]) -> torch.Tensor:
    """L1 between the intermediate features (the logits excluded) of real (detached) and generated pairs, averaged
    over layers and summed over scales, as pix2pixHD."""
    total = []
    for real_scale, fake_scale in zip(real_features, fake_features, strict=True):
        layers = list(zip(real_scale[:-1], fake_scale[:-1], strict=True))
        total.append(torch.stack([F.l1_loss(fake, real.detach()) for real, fake in layers]).mean())
    return torch.stack(total).sum()


def low_pass_l1(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """L1 between `(B, 3, H, W)` images averaged over 4x4 blocks."""
    return F.l1_loss(F.avg_pool2d(fake, LOW_PASS_FACTOR), F.avg_pool2d(real, LOW_PASS_FACTOR))
