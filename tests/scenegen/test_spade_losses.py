"""SPADE and the multi-scale discriminator (shapes by hand, the layout conditions the image), the GAN losses on
hand-computed cases, and `frozen_call`'s gradient isolation."""

from __future__ import annotations

import math
from typing import Final

import pytest
import torch
from torch import nn

from scenegen.config import ImageNetworkConfig
from scenegen.losses import (
    entropy_loss,
    feature_matching_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    low_pass_l1,
    spread_loss,
)
from scenegen.spade import SPADE, MultiscaleDiscriminator, SPADEGenerator
from scenes.training.frozen import frozen_call

NETWORK: Final = ImageNetworkConfig(ngf=8, spade_hidden=8, ndf=8, noise_dim=8)
CLASSES: Final = 4


def one_hot(labels: torch.Tensor, classes: int = CLASSES) -> torch.Tensor:
    return nn.functional.one_hot(labels, classes).permute(0, 3, 1, 2).float()


def _batch_norm(x: torch.Tensor) -> torch.Tensor:
    """Parameter-free batch norm by hand: per channel over batch and pixels, biased variance, eps 1e-5."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    variance = ((x - mean) ** 2).mean(dim=(0, 2, 3), keepdim=True)
    return (x - mean) / torch.sqrt(variance + 1e-5)


def test_spade_modulates_the_batch_norm_by_gamma_and_beta() -> None:
    torch.manual_seed(0)
    spade = SPADE(channels=2, num_classes=CLASSES, hidden=4)
    x = torch.randn(2, 2, 3, 4) * 3.0 + 1.5
    layout = one_hot(torch.randint(0, CLASSES, (2, 6, 8)))  # resized to x's 3x4 inside
    gamma_bias, beta_bias = spade.gamma.bias, spade.beta.bias
    assert gamma_bias is not None and beta_bias is not None
    with torch.no_grad():
        for parameter in (spade.gamma.weight, gamma_bias, spade.beta.weight, beta_bias):
            parameter.zero_()
    torch.testing.assert_close(spade(x, layout), _batch_norm(x))
    # Constant modulation: x_norm * (1 + gamma) + beta with gamma = 1, beta = 0.5 (one value per channel).
    with torch.no_grad():
        gamma_bias.fill_(1.0)
        beta_bias.copy_(torch.tensor([0.5, -2.0]))
    torch.testing.assert_close(spade(x, layout), 2.0 * _batch_norm(x) + torch.tensor([0.5, -2.0]).view(1, 2, 1, 1))
    # With its initial (random) convolutions, the modulation varies with the layout.
    torch.manual_seed(1)
    varied = SPADE(channels=2, num_classes=CLASSES, hidden=4)
    first = varied(x, one_hot(torch.zeros(2, 6, 8, dtype=torch.long)))
    second = varied(x, one_hot(torch.ones(2, 6, 8, dtype=torch.long)))
    assert (first - second).abs().max() > 1e-3


def test_spade_generator_renders_the_layout() -> None:
    torch.manual_seed(0)
    generator = SPADEGenerator(NETWORK, CLASSES, levels=3).eval()
    captured: list[torch.Tensor] = []
    generator.to_rgb.register_forward_hook(lambda module, args, out: captured.append(out))
    noise = torch.randn(2, 8)
    roads = one_hot(torch.zeros(2, 16, 32, dtype=torch.long))
    skies = one_hot(torch.full((2, 16, 32), 3, dtype=torch.long))
    with torch.no_grad():
        image = generator(roads, noise)
        assert image.shape == (2, 3, 16, 32)
        assert image.min() >= -1.0 and image.max() <= 1.0
        torch.testing.assert_close(image, torch.tanh(captured[0]), rtol=0, atol=0)  # a tanh of the RGB convolution
        assert torch.equal(generator(roads, noise), image)
        assert (generator(skies, noise) - image).abs().mean() > 1e-3
        # A layout that differs in its top rows changes the image there.
        mixed = roads.clone()
        mixed[:, :, :4] = skies[:, :, :4]
        assert (generator(mixed, noise) - image)[:, :, :4].abs().mean() > 1e-3
    # Widths: ngf * min(top_width_factor, 2^(levels - 1 - level)) = 32, 16, 8 channels.
    assert [block.conv_1.out_channels for block in (generator.head, *generator.blocks)] == [32, 16, 8]


def test_multiscale_discriminator_shapes() -> None:
    torch.manual_seed(0)
    discriminator = MultiscaleDiscriminator(NETWORK, CLASSES)
    outputs = discriminator(one_hot(torch.randint(0, CLASSES, (2, 16, 32))), torch.rand(2, 3, 16, 32) * 2 - 1)
    assert len(outputs) == NETWORK.num_discriminators == 2
    assert all(len(scale) == NETWORK.discriminator_layers + 2 for scale in outputs)
    # 4x4 convolutions with padding 2: stride 2 maps n to n // 2 + 1, stride 1 maps n to n + 1.
    # Full size 16x32: 9x17, 5x9, 3x5, 4x6 (stride 1), logits 5x7; half size (3x3 average pool, stride 2) 8x16: ... 4x5.
    assert [tuple(t.shape) for t in outputs[0]] == [(2, 8, 9, 17), (2, 16, 5, 9), (2, 32, 3, 5), (2, 64, 4, 6), (2, 1, 5, 7)]
    assert [tuple(t.shape[2:]) for t in outputs[1]] == [(5, 9), (3, 5), (2, 3), (3, 4), (4, 5)]


class _Linear(nn.Module):
    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.weight * x).flatten(1).sum(dim=1)


class _Energy(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (x**2).flatten(1).sum(dim=1)  # gradient x


@pytest.mark.parametrize(("norm", "penalty"), [(2.0, 1.0), (1.0, 0.0), (0.25, 0.5625)])
def test_gradient_penalty_of_a_linear_critic(norm: float, penalty: float) -> None:
    generator = torch.Generator().manual_seed(0)
    direction = torch.randn(1, 3, 2, 2, generator=generator)
    critic = _Linear(direction / direction.norm() * norm)
    real, fake = torch.randn(4, 3, 2, 2, generator=generator), torch.randn(4, 3, 2, 2, generator=generator)
    value = gradient_penalty(critic, real, fake, torch.rand(4, generator=generator))
    assert value.item() == pytest.approx(penalty, abs=1e-5)
    value.backward()
    # d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    assert critic.weight.grad is not None
    torch.testing.assert_close(critic.weight.grad, 2.0 * (norm - 1.0) * critic.weight.detach() / norm)


def test_gradient_penalty_interpolates_towards_real_by_mix() -> None:
    # Critic 0.5 ||x||^2 has gradient x: x_hat = 0.2 * (3, 4) has norm 1 (penalty 0), x_hat = (3, 4) norm 5 (16).
    real = torch.tensor([[3.0, 4.0], [3.0, 4.0]])
    value = gradient_penalty(_Energy(), real, torch.zeros(2, 2), torch.tensor([0.2, 1.0]))
    assert value.item() == pytest.approx((0.0 + 16.0) / 2)


def test_entropy_and_spread_by_hand() -> None:
    labels = torch.tensor([[[0, 1, 2], [2, 1, 0]]])
    assert entropy_loss(one_hot(labels, 3)).item() == 0.0
    assert entropy_loss(torch.full((2, 5, 3, 4), 0.2)).item() == pytest.approx(math.log(5))
    # Two pixels: (0.5, 0.5) has entropy log 2, (1, 0) has 0; mean log(2) / 2.
    layout = torch.tensor([[[[0.5, 1.0]], [[0.5, 0.0]]]])
    assert entropy_loss(layout).item() == pytest.approx(math.log(2) / 2)
    # Pixel sums of the masses 1.5 and 0.5 and 1: ((0.5)^2 + (-0.5)^2 + 0) / 3.
    masses = torch.tensor([[[[1.0, 0.25, 0.5]], [[0.5, 0.25, 0.5]]]])
    assert spread_loss(masses).item() == pytest.approx(0.5 / 3)
    assert spread_loss(one_hot(labels, 3)).item() == 0.0


def test_hinge_losses_by_hand() -> None:
    real = [torch.tensor([0.5, 2.0, -1.0]), torch.tensor([[1.0, 0.0]])]
    fake = [torch.tensor([-2.0, 0.0, 1.0]), torch.tensor([[-0.5, -1.5]])]
    # Scale 0: relu(1 - real) = (0.5, 0, 2) -> 5/6, relu(1 + fake) = (0, 1, 2) -> 1.
    # Scale 1: relu(1 - real) = (0, 1) -> 0.5, relu(1 + fake) = (0.5, 0) -> 0.25.
    assert hinge_discriminator_loss(real, fake).item() == pytest.approx(5 / 6 + 1 + 0.5 + 0.25)
    assert hinge_generator_loss(fake).item() == pytest.approx(1 / 3 + 1.0)  # -mean: 1/3 and 1
    with pytest.raises(ValueError):
        hinge_discriminator_loss(real, fake[:1])


def test_feature_matching_leaves_out_the_logits_and_the_real_side() -> None:
    generator = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(2, 4, 3, 3, generator=generator) for _ in range(3))
    real = [[a, b, torch.zeros(2, 1, 3, 3)], [c, torch.zeros(2, 1, 2, 2)]]
    only_logits = [[a.clone(), b.clone(), torch.ones(2, 1, 3, 3)], [c.clone(), torch.full((2, 1, 2, 2), 5.0)]]
    assert feature_matching_loss(real, only_logits).item() == 0.0
    # Scale 0: layers differ by 1 and 0 -> mean 0.5; scale 1: its one layer differs by 2 -> 2; summed over scales.
    real_a = a.clone().requires_grad_(True)
    fake_a = (a + 1.0).requires_grad_(True)
    value = feature_matching_loss([[real_a, b, real[0][2]], real[1]], [[fake_a, b, real[0][2]], [c + 2.0, real[1][1]]])
    assert value.item() == pytest.approx(2.5)
    value.backward()
    assert real_a.grad is None and fake_a.grad is not None
    torch.testing.assert_close(fake_a.grad, torch.full_like(a, 0.5 / a.numel()))  # d/dx of 0.5 * mean|x - r|


def test_low_pass_l1_ignores_zero_mean_detail() -> None:
    generator = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 8, 12, generator=generator)
    pattern = torch.tensor([[1.0, -1.0, 0.5, -0.5], [-1.0, 1.0, -0.5, 0.5], [0.25, 0.25, -0.25, -0.25], [0.0, 0.0, 0.0, 0.0]])
    assert pattern.sum() == 0
    detail = pattern.repeat(2, 3)  # 4x4-periodic over the 8x12 image
    assert low_pass_l1(real, real + detail).item() == pytest.approx(0.0, abs=1e-6)
    assert low_pass_l1(real, real + 0.3).item() == pytest.approx(0.3, abs=1e-6)
    assert low_pass_l1(real, real - 0.2).item() == pytest.approx(0.2, abs=1e-6)
    # The same detail with a mean of 1/16 per block is seen as that mean.
    assert low_pass_l1(real, real + detail + 1.0 / 16).item() == pytest.approx(1.0 / 16, abs=1e-6)
    # Only block means count: a plain L1 would see the detail (mean |pattern| = 7/16).
    assert nn.functional.l1_loss(real + detail, real).item() == pytest.approx(7 / 16, abs=1e-6)


def test_frozen_call_passes_gradients_to_inputs_only() -> None:
    torch.manual_seed(0)
    module = nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=True)
    out = frozen_call(module, x)
    torch.testing.assert_close(out, module(x))
    out.sum().backward()
    assert module.weight.grad is None and module.bias.grad is None
    assert x.grad is not None
    torch.testing.assert_close(x.grad, module.weight.detach().sum(dim=0).expand(4, 3))  # d/dx sum(Wx + b) = W^T 1
    module(x).sum().backward()  # the plain call still trains the module
    assert module.weight.grad is not None
