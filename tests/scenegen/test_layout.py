"""Semantic Palette's layout generator: the assisted activation by hand and as a property, partial editing, softened
real layouts, the critic, and the resolution checks of the config."""

from __future__ import annotations

import math
from typing import Any, Final

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pydantic import ValidationError

from scenegen.config import ScenegenConfig
from scenegen.data import CLASS_NAMES
from scenegen.layout import LayoutCritic, LayoutGenerator, assisted_activation, soften_layouts
from scenes.config import ConfigError, validate_config

TINY: Final[dict[str, Any]] = {
    "height_px": 16,
    "width_px": 32,
    "layout_network": {"block_channels": [16, 16, 8], "critic_channels": [8, 8], "latent_dim": 8},
    "image_network": {"ngf": 8, "spade_hidden": 8, "ndf": 8, "noise_dim": 8},
}
CLASSES: Final = len(CLASS_NAMES)
# (height, width) of every level of the tiny config, coarse to fine.
LEVELS: Final = ((4, 8), (8, 16), (16, 32))


def tiny_config(**layout_network: Any) -> ScenegenConfig:
    return ScenegenConfig.model_validate({**TINY, "layout_network": {**TINY["layout_network"], **layout_network}})


def palettes(batch: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).dirichlet(np.ones(CLASSES), batch).astype(np.float32))


def test_assisted_activation_by_hand() -> None:
    # Class 0: softmax over the 4 pixels of log(1, 2, 3, 2) = (1, 2, 3, 2) / 8; class 1: uniform 1/4.
    logits = torch.stack([torch.tensor([[1.0, 2.0], [3.0, 2.0]]).log(), torch.zeros(2, 2)])[None]
    proportions = torch.tensor([[0.75, 0.25]])
    layout, masses = assisted_activation(logits, proportions)
    # m_0 = 0.75 * 4 * (1, 2, 3, 2) / 8, m_1 = 0.25 * 4 * 1/4
    expected_masses = torch.tensor([[[0.375, 0.75], [1.125, 0.75]], [[0.25, 0.25], [0.25, 0.25]]])[None]
    torch.testing.assert_close(masses, expected_masses)
    expected_class_0 = torch.tensor([[0.375 / 0.625, 0.75 / 1.0], [1.125 / 1.375, 0.75 / 1.0]])
    torch.testing.assert_close(layout[0, 0], expected_class_0)
    torch.testing.assert_close(layout[0, 1], 1.0 - expected_class_0)
    torch.testing.assert_close(masses.sum(dim=(2, 3)), torch.tensor([[3.0, 1.0]]))  # p_c * N
    # The masses do not tile here (pixel sums 0.625, 1, 1.375, 1), so the layout's proportions drift from the request.
    assert layout[0, 0].mean().item() == pytest.approx((0.6 + 0.75 + 1.125 / 1.375 + 0.75) / 4)
    assert abs(layout[0, 0].mean().item() - 0.75) > 0.01


def test_tiling_masses_give_the_requested_proportions() -> None:
    # Class 0 dominates three pixels, class 1 the fourth: m_0 ~ 1 on those three, m_1 ~ 1 on the last one.
    big = 20.0
    logits = torch.tensor([[[big, big], [big, -big]], [[-big, -big], [-big, big]]])[None]
    layout, masses = assisted_activation(logits, torch.tensor([[0.75, 0.25]]))
    torch.testing.assert_close(masses.sum(dim=1), torch.ones(1, 2, 2), rtol=0, atol=1e-4)
    torch.testing.assert_close(layout.mean(dim=(2, 3)), torch.tensor([[0.75, 0.25]]), rtol=0, atol=1e-4)
    torch.testing.assert_close(layout.argmax(dim=1), torch.tensor([[[0, 0], [0, 1]]]))


def test_region_restricts_the_masses_by_hand() -> None:
    # 1 x 2 x 2 x 3 with a region of 4 pixels (the first row and the first pixel of the second).
    logits = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]], [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])[None]
    region = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])[None, None]
    layout, masses = assisted_activation(logits, torch.tensor([[0.5, 0.5]]), region)
    weights = torch.tensor([1.0, math.e, math.e**2, math.e**3])
    expected_0 = 0.5 * 4 * weights / weights.sum()  # softmax over the region's 4 pixels only
    torch.testing.assert_close(masses[0, 0].flatten()[:4], expected_0)
    torch.testing.assert_close(masses[0, 1].flatten()[:4], torch.full((4,), 0.5))
    assert (masses[0, :, 1, 1:] == 0).all() and (layout[0, :, 1, 1:] == 0).all()
    torch.testing.assert_close(masses.sum(dim=(2, 3)), torch.tensor([[2.0, 2.0]]))  # p_c * 4 pixels
    torch.testing.assert_close(layout[0].sum(dim=0).flatten()[:4], torch.ones(4))
    # An empty region: no mass anywhere (the masked softmax's NaNs become 0), an all-zero layout.
    empty_layout, empty_masses = assisted_activation(logits, torch.tensor([[0.5, 0.5]]), torch.zeros_like(region))
    assert (empty_masses == 0).all() and (empty_layout == 0).all()


def _simplex(draw: st.DrawFn, batch: int, classes: int) -> torch.Tensor:
    raw = draw(hnp.arrays(np.float64, (batch, classes), elements=st.floats(0.0, 1.0)).filter(lambda a: bool((a.sum(axis=1) > 0.05).all())))
    return torch.from_numpy(raw / raw.sum(axis=1, keepdims=True)).to(torch.float32)


@st.composite
def activation_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, classes, height, width = draw(st.integers(1, 2)), draw(st.integers(1, 4)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float32, (batch, classes, height, width), elements=st.floats(-5.0, 5.0, width=32)))
    region = draw(hnp.arrays(np.bool_, (batch, 1, height, width)))
    return torch.from_numpy(logits), _simplex(draw, batch, classes), torch.from_numpy(region).float()


@settings(max_examples=60, deadline=None)
@given(activation_inputs())
def test_masses_carry_the_requested_share_of_the_image(inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    logits, proportions, _ = inputs
    pixels = logits.shape[2] * logits.shape[3]
    layout, masses = assisted_activation(logits, proportions)
    assert (masses >= 0).all()
    torch.testing.assert_close(masses.sum(dim=(2, 3)), proportions * pixels, rtol=1e-5, atol=1e-5)
    # Logits within +-5 keep every softmax entry above e^-10 / N, so every pixel carries mass and sums to 1.
    assert (masses.sum(dim=1) > 1e-6).all()
    torch.testing.assert_close(layout.sum(dim=1), torch.ones(layout.shape[0], *layout.shape[2:]), rtol=0, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(activation_inputs())
def test_region_masses_stay_inside_it(inputs: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
    logits, proportions, region = inputs
    layout, masses = assisted_activation(logits, proportions, region)
    outside = (region == 0).expand_as(masses)
    assert (masses[outside] == 0).all() and (layout[outside] == 0).all()
    inside_pixels = region.sum(dim=(1, 2, 3))
    torch.testing.assert_close(masses.sum(dim=(2, 3)), proportions * inside_pixels[:, None], rtol=1e-5, atol=1e-5)
    sums = layout.sum(dim=1)[region[:, 0] > 0]
    torch.testing.assert_close(sums, torch.ones_like(sums), rtol=0, atol=1e-5)


def test_generator_shapes_sums_and_masses_at_every_level() -> None:
    torch.manual_seed(0)
    config = tiny_config()
    generator = LayoutGenerator(config.layout_network, CLASSES)
    proportions = palettes(3)
    output = generator(torch.randn(3, 8), proportions)
    assert len(output.intermediate_layouts) == len(output.intermediate_masses) == 2
    layouts = [*output.intermediate_layouts, output.layout]
    masses = [*output.intermediate_masses, output.masses]
    for (height, width), layout, mass in zip(LEVELS, layouts, masses, strict=True):
        assert layout.shape == mass.shape == (3, CLASSES, height, width)
        assert (layout >= 0).all()
        torch.testing.assert_close(layout.sum(dim=1), torch.ones(3, height, width), rtol=0, atol=1e-5)
        torch.testing.assert_close(mass.sum(dim=(2, 3)), proportions * height * width, rtol=1e-4, atol=1e-4)
    # The proportions condition the layout: another request gives another layout from the same noise.
    requested = generator(torch.zeros(3, 8), proportions).layout
    other = generator(torch.zeros(3, 8), palettes(3, seed=1)).layout
    assert (other - requested).abs().max() > 1e-3


def test_unconditional_generator_is_a_per_pixel_softmax_that_ignores_proportions() -> None:
    torch.manual_seed(0)
    generator = LayoutGenerator(tiny_config(conditional=False).layout_network, CLASSES)
    assert generator.project.in_features == 8  # noise only, no proportion vector
    captured: list[torch.Tensor] = []
    generator.to_logits[-1].register_forward_hook(lambda module, args, out: captured.append(out.detach()))
    noise = torch.randn(2, 8)
    first = generator(noise, palettes(2, seed=0))
    second = generator(noise, palettes(2, seed=5))
    assert torch.equal(first.layout, second.layout)
    torch.testing.assert_close(first.layout, torch.softmax(captured[0], dim=1), rtol=0, atol=0)
    assert torch.equal(first.masses, first.layout)
    for layout in [*first.intermediate_layouts, first.layout]:
        torch.testing.assert_close(layout.sum(dim=1), torch.ones(2, *layout.shape[2:]))


def test_edit_keeps_the_outside_and_regenerates_the_region() -> None:
    torch.manual_seed(0)
    generator = LayoutGenerator(tiny_config().layout_network, CLASSES)
    labels = torch.randint(0, CLASSES, (2, 16, 32), generator=torch.Generator().manual_seed(1))
    layout = torch.nn.functional.one_hot(labels, CLASSES).permute(0, 3, 1, 2).float()
    region = torch.zeros(2, 1, 16, 32)
    region[:, :, 8:16, 8:24] = 1.0  # aligned to the 4x8 grid: 2x4 pixels at 4x8, 4x8 at 8x16, 8x16 at 16x32
    proportions, noise = palettes(2), torch.randn(2, 8)
    edited = generator.edit(layout, region, proportions, noise)
    outside = (region == 0).expand_as(layout)
    assert torch.equal(edited[outside], layout[outside])
    inside = ~outside
    regenerated = generator(noise, proportions, region)
    assert torch.equal(edited[inside], regenerated.layout[inside])
    assert not torch.equal(edited[inside], layout[inside])
    torch.testing.assert_close(edited.sum(dim=1), torch.ones(2, 16, 32), rtol=0, atol=1e-5)
    # The region's request is carried by the region alone, at every level of the generator.
    for mass, pixels in zip([*regenerated.intermediate_masses, regenerated.masses], (8, 32, 128), strict=True):
        torch.testing.assert_close(mass.sum(dim=(2, 3)), proportions * pixels, rtol=1e-4, atol=1e-4)
    assert (regenerated.masses[outside] == 0).all()


def _halves(height: int = 12, width: int = 20) -> torch.Tensor:
    """One-hot (1, 2, H, W): class 0 in columns 0..9, class 1 in columns 10..19."""
    labels = torch.zeros(1, height, width, dtype=torch.long)
    labels[:, :, width // 2 :] = 1
    return torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float()


def test_soften_layouts_blurs_edges_only() -> None:
    one_hot = _halves()
    assert soften_layouts(one_hot, 0.0) is one_hot
    soft = soften_layouts(one_hot, 1.0)  # radius round(3 * 1) = 3
    assert soft.shape == one_hot.shape
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(1, 12, 20))
    # Columns at least 4 pixels from the edge (the image border is replicated) stay one-hot.
    for column in (*range(0, 7), *range(13, 20)):
        torch.testing.assert_close(soft[..., column], one_hot[..., column], rtol=0, atol=1e-6)
    for column in range(7, 13):
        assert ((soft[..., column] > 0) & (soft[..., column] < 1)).all()
    # Column 9 (last of class 0): 0.5 + 0.5 * (k(-3) + k(-2) + k(-1) + k(0)) / sum k, with k(o) = exp(-o^2 / 2).
    kernel = [math.exp(-0.5 * offset**2) for offset in range(-3, 4)]
    expected = 0.5 + 0.5 * sum(kernel[:4]) / sum(kernel)
    torch.testing.assert_close(soft[0, 0, :, 9], torch.full((12,), expected))
    torch.testing.assert_close(soft[0, 1, :, 9], torch.full((12,), 1.0 - expected))
    # The blur is separable: a vertical edge is blurred the same way along the rows.
    transposed = soften_layouts(_halves().transpose(2, 3).contiguous(), 1.0)
    torch.testing.assert_close(transposed, soft.transpose(2, 3))


def test_critic_scores_each_layout() -> None:
    torch.manual_seed(0)
    config = tiny_config()
    critic = LayoutCritic(config.layout_network, CLASSES, config.height_px, config.width_px)
    layouts = torch.softmax(torch.randn(3, CLASSES, 16, 32), dim=1)
    scores = critic(layouts)
    assert scores.shape == (3,)
    torch.testing.assert_close(critic(layouts[1:2]), scores[1:2])  # no batch statistics: each score is its own
    assert scores.std() > 0


def test_resolution_must_match_the_layout_levels() -> None:
    with pytest.raises(ValidationError, match="height_px"):
        ScenegenConfig.model_validate({**TINY, "height_px": 32, "width_px": 64})
    with pytest.raises(ConfigError, match=r"height_px x width_px: 3 layout resolutions from 4x8 end at 16x32, got 16x64"):
        validate_config({**TINY, "width_px": 64}, ScenegenConfig, "tiny.yaml")
    with pytest.raises(ConfigError, match=r"tiny\.yaml: .*5 stride-2 stages exceed height_px 16"):
        validate_config({**TINY, "layout_network": {**TINY["layout_network"], "critic_channels": [8] * 5}}, ScenegenConfig, "tiny.yaml")
    assert tiny_config(critic_channels=[8] * 4).height_px == 16  # 16 >> 4 = 1 pixel: still valid
    assert ScenegenConfig.model_validate(TINY).levels == 3


def test_balancing_iterations_pull_the_layout_onto_the_request() -> None:
    generator = torch.Generator().manual_seed(3)
    logits = 3.0 * torch.randn(2, 4, 6, 8, generator=generator)
    proportions = torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.1, 0.2, 0.3, 0.4]])
    one, _ = assisted_activation(logits, proportions)
    again, _ = assisted_activation(logits, proportions, iterations=1)
    assert torch.equal(one, again)
    errors = [(assisted_activation(logits, proportions, iterations=k)[0].mean(dim=(2, 3)) - proportions).abs().max().item() for k in (1, 3, 50)]
    assert errors[0] > 0.02  # these masses do not tile, so one iteration misses the request
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-4
    balanced, masses = assisted_activation(logits, proportions, iterations=50)
    assert torch.allclose(balanced.sum(dim=1), torch.ones(2, 6, 8), atol=1e-6)
    assert torch.allclose(masses.sum(dim=(2, 3)), proportions * 48, atol=1e-3)
