"""MTAF's losses on the one-optimizer harness: gradient isolation, every method trains, MTKT's student and warm-up."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from perception.segmentation.config import Method, SegmentationConfig
from perception.segmentation.discriminators import SOURCE_LABEL, TARGET_LABEL, Discriminator, DiscriminatorPair, adversarial_bce, weighted_self_information
from perception.segmentation.mtaf import MTAFModel, discriminator_names
from scenes.training.frozen import frozen_call

TARGETS = ("night", "fog", "desert")


def tiny_config(method: Method, targets: tuple[str, ...] = TARGETS, **loss: Any) -> SegmentationConfig:
    network = {"stem_width": 8, "stage_widths": (8, 8, 16, 16), "blocks_per_stage": (1, 1, 1, 1), "height_px": 64, "width_px": 64, "loss_stride": 1}
    return SegmentationConfig(method=method, network=network, data={"target_styles": targets}, loss=loss)


def main_discriminator(model: MTAFModel, name: str) -> Discriminator:
    pair = model.discriminators[name]
    assert isinstance(pair, DiscriminatorPair)
    return pair.main


def tiny_batch(config: SegmentationConfig, batch: int = 2) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    size = (config.network.height_px, config.network.width_px)
    source = torch.rand(batch, 3, *size, generator=generator)
    # labels that depend on the image, so the CE can drop: class = brightest channel's index in 0..2, 255 in a corner
    labels = source.argmax(dim=1)
    labels[:, :4, :4] = 255
    targets = len(config.data.target_styles) if config.uses_targets else 0
    return source, labels, torch.rand(targets, batch, 3, *size, generator=generator)


def upsampled(logits: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(logits, (64, 64), mode="bilinear", align_corners=False)


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [parameter.grad for parameter in module.parameters()]


def test_adversarial_term_leaves_the_discriminator_and_discriminator_term_the_segmenter() -> None:
    torch.manual_seed(0)
    model = MTAFModel(tiny_config("advent", ("night",)))
    pair = model.discriminators["source_vs_target"]
    assert isinstance(pair, DiscriminatorPair)
    maps = weighted_self_information(upsampled(model.segmenter(torch.rand(2, 3, 64, 64))[0].main))
    adversarial = adversarial_bce(frozen_call(pair.main, maps), SOURCE_LABEL)
    adversarial.backward()
    assert all(grad is None for grad in grads(pair))
    assert any(grad is not None and grad.abs().sum() > 0 for grad in grads(model.segmenter.main_heads))
    model.zero_grad(set_to_none=True)
    maps = weighted_self_information(upsampled(model.segmenter(torch.rand(2, 3, 64, 64))[0].main))
    adversarial_bce(pair.main(maps.detach()), SOURCE_LABEL).backward()
    assert all(grad is None for grad in grads(model.segmenter))
    assert all(grad is not None for grad in grads(pair.main))


def test_folded_loss_equals_the_two_separate_updates() -> None:
    """The one-backward loss gives the discriminator exactly the gradient of its own term, the segmenter that of its
    terms: zeroing the discriminator weight changes no segmenter gradient."""
    torch.manual_seed(0)
    config = tiny_config("advent", ("night",))
    model = MTAFModel(config)
    batch = tiny_batch(config)
    model(*batch)[0].backward()
    segmenter_grads = [grad.clone() for grad in grads(model.segmenter) if grad is not None]
    model.zero_grad(set_to_none=True)
    model.steps_done.zero_()
    heavy = MTAFModel(tiny_config("advent", ("night",), discriminator=100.0))
    heavy.load_state_dict(model.state_dict())
    heavy(*batch)[0].backward()
    for before, after in zip(segmenter_grads, [grad for grad in grads(heavy.segmenter) if grad is not None], strict=True):
        torch.testing.assert_close(before, after)


@pytest.mark.parametrize(
    ("method", "targets"),
    [("source_only", ()), ("advent", ("night",)), ("advent_merged", TARGETS), ("multi_dis", ("night", "fog")), ("multi_dis", TARGETS), ("mtkt", TARGETS)],
)
def test_every_method_has_a_finite_loss_and_learns_the_source(method: Method, targets: tuple[str, ...]) -> None:
    torch.manual_seed(0)
    config = tiny_config(method, targets)
    model = MTAFModel(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    batch = tiny_batch(config)
    ce_key = "teacher_seg_main" if method == "mtkt" else "seg_main"
    history = []
    for _ in range(6):
        loss, parts = model(*batch)
        assert torch.isfinite(loss)
        history.append(float(parts[ce_key]))
        optimizer.zero_grad()
        loss.backward()
        assert all(parameter.grad is not None for parameter in model.parameters())  # DDP: every parameter used
        optimizer.step()
    assert history[-1] < history[0]
    assert int(model.steps_done) == 6


def test_multi_dis_discriminators() -> None:
    assert discriminator_names(tiny_config("multi_dis", ("night", "fog"))) == ("source_vs_night", "source_vs_fog", "target_vs_target")
    assert discriminator_names(tiny_config("multi_dis"))[3:] == ("others_vs_night", "others_vs_fog", "others_vs_desert")
    assert discriminator_names(tiny_config("mtkt")) == ("source_vs_night", "source_vs_fog", "source_vs_desert")
    assert discriminator_names(tiny_config("multi_dis", target_vs_target=False)) == ("source_vs_night", "source_vs_fog", "source_vs_desert")


def student_grads(model: MTAFModel) -> list[torch.Tensor]:
    heads = [model.segmenter.main_heads[0], model.segmenter.aux_heads[0]]
    return [grad for head in heads for grad in grads(head) if grad is not None]


@pytest.mark.parametrize("extra_source", [0, 2])
def test_mtkt_student_waits_for_the_warmup_then_only_distils(extra_source: int) -> None:
    """`extra_source` labelled images beyond the 2 per target (augmentation pairs): the KL still reads each target's rows."""
    torch.manual_seed(0)
    config = tiny_config("mtkt", distillation_warmup_steps=1)
    model = MTAFModel(config)
    source, labels, targets = tiny_batch(config)
    more, more_labels, _ = tiny_batch(config, extra_source)
    batch = (torch.cat([source, more.flip(0)]), torch.cat([labels, more_labels.flip(0)]), targets)
    sources = 2 + extra_source
    model(*batch)[0].backward()  # step 0: before the warm-up ends
    assert all(float(grad.abs().sum()) == 0.0 for grad in student_grads(model))
    model.zero_grad(set_to_none=True)
    loss, parts = model(*batch)  # step 1: distilling
    loss.backward()
    assert any(float(grad.abs().sum()) > 0 for grad in student_grads(model))
    assert "seg_main" not in parts and {"kl_main", "kl_aux", "teacher_seg_main"} <= set(parts)
    # the student's gradient is the KL's alone: the same as that of the weighted KL computed by hand
    with torch.no_grad():
        reference = student_grads(model)
    model.zero_grad(set_to_none=True)
    images = torch.cat([batch[0], batch[2].flatten(0, 1)])
    heads = model.segmenter(images)
    kl = torch.zeros(())
    for index in range(3):
        rows = slice(sources + 2 * index, sources + 2 * (index + 1))
        for level, weight in (("main", config.loss.distillation_main), ("aux", config.loss.distillation_aux_factor * config.loss.distillation_main / 3)):
            teacher = upsampled(getattr(heads[index + 1], level)[rows]).detach().log_softmax(dim=1)
            student = upsampled(getattr(heads[0], level)[rows]).log_softmax(dim=1)
            classes = student.shape[1]
            kl = kl + weight * torch.nn.functional.kl_div(student, teacher, log_target=True, reduction="none").sum(dim=1).mean() / classes
    kl.backward()
    for expected, got in zip(student_grads(model), reference, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("into_backbone", [True, False])
def test_mtkt_distillation_reaches_the_backbone_only_when_asked(into_backbone: bool) -> None:
    """With every other weight at 0 the loss is the KL alone: the backbone gets its gradient iff `into_backbone`; the
    student head gets the same gradient either way, and the forward pass does not change."""
    torch.manual_seed(0)
    zeros: dict[str, Any] = {"seg_main": 0.0, "seg_aux": 0.0, "adversarial_main": 0.0, "adversarial_aux": 0.0}
    config = tiny_config("mtkt", **zeros, distillation_into_backbone=into_backbone)
    model = MTAFModel(config)
    batch = tiny_batch(config)
    loss, _ = model(*batch)
    loss.backward()
    backbone = [model.segmenter.stem, model.segmenter.layer1, model.segmenter.layer2, model.segmenter.layer3, model.segmenter.layer4]
    backbone_grad = sum(float(grad.abs().sum()) for stage in backbone for grad in grads(stage) if grad is not None)
    assert (backbone_grad > 0) == into_backbone
    other = MTAFModel(tiny_config("mtkt", **zeros, distillation_into_backbone=not into_backbone))
    other.load_state_dict(model.state_dict())
    other_loss, _ = other(*batch)
    other_loss.backward()
    torch.testing.assert_close(other_loss, loss)
    for got, expected in zip(student_grads(other), student_grads(model), strict=True):
        torch.testing.assert_close(got, expected)


def test_mtkt_teacher_cross_entropy_mean_is_the_sum_over_the_number_of_targets() -> None:
    """With only the cross-entropy on (besides the discriminators' own terms, which never reach the segmenter),
    "mean" gives the segmenter's loss and every backbone gradient of "sum" divided by T (3)."""
    zeros: dict[str, Any] = {"adversarial_main": 0.0, "adversarial_aux": 0.0, "distillation_main": 0.0}
    results = {}
    for reduction in ("sum", "mean"):
        torch.manual_seed(0)
        model = MTAFModel(tiny_config("mtkt", **zeros, mtkt_teacher_cross_entropy=reduction))
        loss, parts = model(*tiny_batch(model.config))
        loss.backward()
        backbone = [grad.clone() for grad in grads(model.segmenter.layer1) if grad is not None]
        results[reduction] = (loss - parts["dis_main"] - parts["dis_aux"], parts["teacher_seg_main"], backbone)
    (sum_loss, sum_part, sum_grads), (mean_loss, mean_part, mean_grads) = results["sum"], results["mean"]
    torch.testing.assert_close(mean_loss, sum_loss / len(TARGETS))
    torch.testing.assert_close(mean_part, sum_part)  # the logged parts stay unweighted
    assert sum_grads and all(float(grad.abs().sum()) > 0 for grad in sum_grads)
    for mean_grad, sum_grad in zip(mean_grads, sum_grads, strict=True):
        torch.testing.assert_close(mean_grad, sum_grad / len(TARGETS))


@pytest.mark.parametrize("targets", [("night", "fog"), TARGETS])
def test_multi_dis_without_target_vs_target_drops_exactly_those_terms(targets: tuple[str, ...]) -> None:
    """Same weights and batch: the full model's adversarial loss is the ablated one plus its target-vs-target terms,
    computed here by hand (2 targets: one pair, the segmenter gets the flipped labels; 3: each target to label 0)."""
    torch.manual_seed(0)
    full = MTAFModel(tiny_config("multi_dis", targets))
    ablated = MTAFModel(tiny_config("multi_dis", targets, target_vs_target=False))
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing and unexpected and all(".target_vs_target." in key or ".others_vs_" in key for key in unexpected)
    source, labels, target_images = tiny_batch(full.config)
    _, full_parts = full(source, labels, target_images)
    _, ablated_parts = ablated(source, labels, target_images)
    with torch.no_grad():
        logits = full.segmenter(torch.cat([source, target_images.flatten(0, 1)]))[0].main
        per_target = weighted_self_information(upsampled(logits))[source.shape[0] :].unflatten(0, (len(targets), -1))
        extra: torch.Tensor | int
        if len(targets) == 2:
            pair = main_discriminator(full, "target_vs_target")
            extra = adversarial_bce(pair(per_target[0]), TARGET_LABEL) + adversarial_bce(pair(per_target[1]), SOURCE_LABEL)
        else:
            extra = sum(adversarial_bce(main_discriminator(full, f"others_vs_{style}")(per_target[i]), SOURCE_LABEL) for i, style in enumerate(targets))
    torch.testing.assert_close(ablated_parts["seg_main"], full_parts["seg_main"])
    torch.testing.assert_close(full_parts["adv_main"], ablated_parts["adv_main"] + extra)
