"""Training on the harness, the checkpoint round trip through `Segmenter`, and the synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from perception.segmentation.config import SegmentationConfig
from perception.segmentation.data import SegmentationSample, TrainingData, synth_samples, synth_target_eval_samples
from perception.segmentation.evaluate import evaluate_domains
from perception.segmentation.mtaf import MTAFModel
from perception.segmentation.segmenter import Segmenter
from perception.segmentation.train import SegmentationTask
from scenes.errors import InputError
from scenes.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from scenes.training.harness import fit

NETWORK = {"stem_width": 8, "stage_widths": (8, 8, 16, 16), "blocks_per_stage": (1, 1, 1, 1), "height_px": 64, "width_px": 64, "loss_stride": 1}


def random_samples(count: int, domain: str, labelled: bool, seed: int) -> list[SegmentationSample]:
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
        labels = (image.argmax(axis=2)).astype(np.uint8) if labelled else None
        samples.append(SegmentationSample(image, labels, domain))
    return samples


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SegmentationConfig, Path]:
    config = SegmentationConfig(method="mtkt", network=NETWORK, data={"target_styles": ("night", "fog")}, train={"epochs": 1, "batch_size": 2})
    data = TrainingData(random_samples(4, "default", True, 0), {"night": random_samples(3, "night", False, 1), "fog": random_samples(3, "fog", False, 2)})
    task = SegmentationTask(config, data)
    batch = task.make_batch(np.array([0, 3]), 0, torch.device("cpu"))
    assert batch.source_images.shape == (2, 3, 64, 64) and batch.target_images.shape == (2, 2, 3, 64, 64)
    assert batch.source_labels.dtype == torch.int64
    again = task.make_batch(np.array([0, 3]), 0, torch.device("cpu"))
    torch.testing.assert_close(batch.target_images, again.target_images)  # seeded by (seed, epoch, index)
    return config, fit(task, tmp_path_factory.mktemp("mtkt"), show_progress=False)


def test_segmenter_round_trip(trained: tuple[SegmentationConfig, Path]) -> None:
    config, path = trained
    segmenter = Segmenter.from_checkpoint(path)
    assert segmenter.config == config and segmenter.net.num_heads == 3
    payload = load_checkpoint(path, "segmentation")
    student = {key: value for key, value in payload["state_dict"].items() if key.startswith("segmenter.main_heads.0.")}
    torch.testing.assert_close(next(segmenter.net.main_heads[0].parameters()), student["segmenter.main_heads.0.branches.0.weight"])
    images = np.random.default_rng(3).integers(0, 256, (2, 50, 90, 3), dtype=np.uint8)
    labels = segmenter.predict(images)
    assert labels.shape == (2, 50, 90) and labels.dtype == np.uint8 and labels.max() < 7
    scores = evaluate_domains(segmenter, {"a": random_samples(2, "a", True, 4), "b": random_samples(2, "b", True, 5)})
    assert set(scores) == {"a", "b", "mean"} and set(scores["mean"].to_dict()["iou"]) == set(segmenter.class_names)


def test_wrong_checkpoints_name_the_file(trained: tuple[SegmentationConfig, Path], tmp_path: Path) -> None:
    _, path = trained
    payload = load_checkpoint(path)
    bad_config = save_checkpoint(tmp_path / "bad_config.pt", stage="segmentation", state_dict=payload["state_dict"], config={"method": "nope"})
    with pytest.raises(CheckpointError, match="bad_config.pt"):
        Segmenter.from_checkpoint(bad_config)
    other = dict(payload["config"], classes="cityscapes19")
    bad_weights = save_checkpoint(tmp_path / "bad_weights.pt", stage="segmentation", state_dict=payload["state_dict"], config=other)
    with pytest.raises(CheckpointError, match="bad_weights.pt.*do not fit"):
        Segmenter.from_checkpoint(bad_weights)
    with pytest.raises(CheckpointError, match="expected a segmentation checkpoint"):
        Segmenter.from_checkpoint(save_checkpoint(tmp_path / "depth.pt", stage="depth", state_dict={}, config={}))


def test_synthetic_samples_are_labelled_only_when_asked() -> None:
    config = SegmentationConfig(network={"height_px": 48, "width_px": 64, "loss_stride": 1}, data={"seconds": 0.4, "rate_hz": 5.0, "frame_stride": 1})
    source = synth_samples(config, "default", 0, 1, labelled=True)
    target = synth_samples(config, "night", 1, 1, labelled=False)
    assert source and target
    assert source[0].image.shape == (48, 64, 3) and source[0].labels is not None and source[0].labels.shape == (48, 64)
    assert set(np.unique(source[0].labels).tolist()) <= {0, 1, 2, 3, 4, 5, 6, 255}
    assert target[0].labels is None and target[0].domain == "night"


def test_held_out_drives_of_a_style_do_not_depend_on_the_other_targets() -> None:
    tiny = {"network": {"height_px": 48, "width_px": 64, "loss_stride": 1}}
    both = SegmentationConfig(**tiny, data={"seconds": 0.4, "rate_hz": 5.0, "target_styles": ("night", "fog")})
    alone = SegmentationConfig(**tiny, data={"seconds": 0.4, "rate_hz": 5.0, "target_styles": ("fog",)})
    with_night, fog_only = synth_target_eval_samples(both, 2000, 1), synth_target_eval_samples(alone, 2000, 1)
    assert list(with_night) == ["night", "fog"] and list(fog_only) == ["fog"]
    for first, second in zip(with_night["fog"], fog_only["fog"], strict=True):
        np.testing.assert_array_equal(first.image, second.image)
        assert first.labels is not None and second.labels is not None
        np.testing.assert_array_equal(first.labels, second.labels)
    night_labels, fog_labels = with_night["night"][0].labels, with_night["fog"][0].labels
    assert night_labels is not None and fog_labels is not None
    assert not np.array_equal(night_labels, fog_labels)  # another drive, not a restyle


@pytest.mark.parametrize("name", ["source_only_synth", "mtkt_synth"])
def test_shipped_checkpoints_are_small_and_load(name: str) -> None:
    from perception.segmentation.segmenter import SHIPPED_CHECKPOINT

    path = SHIPPED_CHECKPOINT.parent / f"{name}.pt"
    assert path.stat().st_size <= 5 * 1024 * 1024
    segmenter = Segmenter.from_checkpoint(path)
    assert segmenter.config.classes == "super7" and segmenter.config.data.target_styles == ("night", "fog", "desert")
    labels = segmenter.predict(np.zeros((1, 96, 160, 3), dtype=np.uint8))
    assert labels.shape == (1, 96, 160) and labels.max() < 7


def test_augmentation_pairs_join_the_source_one_to_one() -> None:
    config = SegmentationConfig(method="mtkt", network=NETWORK, data={"target_styles": ("night", "fog")}, train={"epochs": 1, "batch_size": 2})
    source, targets = random_samples(4, "default", True, 0), {"night": random_samples(3, "night", False, 1), "fog": random_samples(3, "fog", False, 2)}
    # every pair is uniform grey labelled 5, so a drawn pair is recognisable whichever way it is flipped or jittered
    pairs = [SegmentationSample(np.full((64, 64, 3), 128, dtype=np.uint8), np.full((64, 64), 5, dtype=np.uint8), "generated") for _ in range(3)]
    plain = SegmentationTask(config, TrainingData(source, targets))
    mixed = SegmentationTask(config, TrainingData(source, targets, pairs))
    indices = np.array([1, 2])
    without, with_pairs = (task.make_batch(indices, 4, torch.device("cpu")) for task in (plain, mixed))
    assert with_pairs.source_images.shape == (4, 3, 64, 64) and with_pairs.source_labels.shape == (4, 64, 64)
    torch.testing.assert_close(with_pairs.source_images[:2], without.source_images)  # the source batch is unchanged
    torch.testing.assert_close(with_pairs.target_images, without.target_images)
    assert bool((with_pairs.source_labels[2:] == 5).all())
    grey = with_pairs.source_images[2:]
    assert float((grey - grey.mean(dim=(2, 3), keepdim=True)).abs().max()) < 1e-6  # uniform after jitter
    torch.testing.assert_close(mixed.make_batch(indices, 4, torch.device("cpu")).source_images, with_pairs.source_images)
    # MTKT's losses take 2B labelled images against B images per target
    loss, parts = mixed.loss(mixed.build_model(), with_pairs)
    assert torch.isfinite(loss) and {"teacher_seg_main", "kl_main"} <= set(parts)
    unlabelled = [SegmentationSample(pairs[0].image, None, "generated")]
    with pytest.raises(InputError, match="run.yaml: 1 augmentation samples have no labels"):
        SegmentationTask(config, TrainingData(source, targets, unlabelled), config_source="run.yaml")


def test_discriminators_train_at_their_own_learning_rate(tmp_path: Path) -> None:
    source, targets = random_samples(2, "default", True, 0), {"night": random_samples(2, "night", False, 1), "fog": random_samples(2, "fog", False, 2)}
    train = {"epochs": 1, "batch_size": 2, "learning_rate": 1e-3, "discriminator_lr_factor": 0.1}
    config = SegmentationConfig(method="multi_dis", network=NETWORK, data={"target_styles": ("night", "fog")}, train=train)
    task = SegmentationTask(config, TrainingData(source, targets))
    model = task.build_model()
    groups = task.parameter_groups(model)
    assert groups is not None and [group.lr_factor for group in groups] == [1.0, 0.1]
    assert {id(p) for group in groups for p in group.parameters} == {id(p) for p in model.parameters()}
    assert {id(p) for p in groups[1].parameters} == {id(p) for p in model.discriminators.parameters()}
    # the learning rate reaches AdamW: the resumable state holds both groups' peaks
    final = fit(task, tmp_path, show_progress=False)
    state = load_checkpoint(tmp_path / "last.pt")
    peaks = [group["initial_lr_max"] for group in state["optimizer"]["param_groups"]]
    assert peaks == pytest.approx([1e-3, 1e-4]) and final.exists()
    source_only = SegmentationConfig(network=NETWORK, data={"target_styles": ()}, train=train)
    assert SegmentationTask(source_only, TrainingData(source, {})).parameter_groups(MTAFModel(source_only)) is None
