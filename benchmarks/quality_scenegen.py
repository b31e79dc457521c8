"""Semantic Palette quality: control, realism of the generated palettes and layouts, and augmentation.

Reproduce benchmarks/results/quality_scenegen.json with:

    .venv/bin/python -m benchmarks.quality_scenegen

It uses (or, when missing, trains) the generation checkpoint of `drivestack train scenegen --config configs/scenegen/palette_synth.yaml --data
synth --out runs/scenegen/palette_synth` (the shipped checkpoint is a copy of it), and
trains (resumably, under `--runs`) what it compares against:

- **control**: for each held-out layout (drives of seed `data.validation_seed`, never trained on), its proportions of
  the classes covering at least 2% of it are requested (the others left to the palette estimator) and one scene is
  generated; the error is the mean |requested - realised| over the named classes of the argmax layout. Also with
  the whole held-out palette requested (every class named);
- **FSD** (Fréchet distance between Gaussians of class-proportion vectors) of layouts generated from palettes the
  estimator samples, against the held-out layouts, next to the paper's baseline: the same layout generator trained
  the same steps without proportions and without assisted activation (`layout_network.conditional: false`);
- **semantic fidelity**: mIoU (7 super-classes) of the shipped MTAF segmenter on generated images against their
  layouts, and on real held-out images for reference; the Fréchet distance on that segmenter's encoder features
  between generated and held-out images (and between two real splits, for scale), in place of FID;
- **augmentation**: a segmenter (DeepLab-v2 of the segmentation module, source-only, 64x128, 7 classes) trained on
  the generator's training views alone, and on the same views with generated pairs mixed 1:1 in every batch (as the
  official segmenter training; `drivestack train segmentation --augment`), the same `--augment-steps` steps of 8 real
  views (plus 8 generated ones); the generated pool is as large as the number of generated slots (steps x 8 scenes
  from sampled palettes, each slot drawing one at random), standing in for the official on-the-fly generation.
  Scored on held-out drives of the same style (seed 2000); 3 segmenter seeds.

The small-set experiment (about 100 labelled images, and a generator trained on them alone):

    .venv/bin/python -m benchmarks.quality_scenegen --config configs/scenegen/palette_small_synth.yaml --augmentation-only

trains Semantic Palette on the 96 views of `palette_small_synth.yaml` (under `--runs`), then segmenters on those 96
views alone and with generated pairs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

import numpy as np
from rich.console import Console
from rich.table import Table

from perception.segmentation.classes import ClassTable
from perception.segmentation.config import SegmentationConfig
from perception.segmentation.data import SegmentationSample, TrainingData
from perception.segmentation.evaluate import evaluate_samples
from perception.segmentation.segmenter import SHIPPED_CHECKPOINT as SEGMENTER_CHECKPOINT
from perception.segmentation.segmenter import Segmenter
from perception.segmentation.train import SegmentationTask
from scenegen.config import ScenegenConfig
from scenegen.data import CLASS_NAMES, LayoutSample, cityscapes_samples, proportions_of, synth_samples, training_samples
from scenegen.generator import SceneGenerator
from scenegen.metrics import control_error, feature_frechet_distance, fsd, semantic_fidelity, train_ids_to_classes
from scenegen.palette import PaletteEstimator
from scenegen.train import FINAL, LayoutTask, train_scenegen
from scenes.config import load_config
from scenes.io import atomic_write_text
from scenes.training.checkpoint import load_checkpoint
from scenes.training.harness import fit
from scenes.training.launch import train

REPO: Final = Path(__file__).resolve().parents[1]
CONFIG: Final = REPO / "configs" / "scenegen" / "palette_synth.yaml"
SEGMENTATION_CONFIG: Final = REPO / "configs" / "segmentation" / "source_only_synth.yaml"
RESULTS: Final = REPO / "benchmarks" / "results" / "quality_scenegen.json"
NAMED_MIN_SHARE: Final = 0.02
AUGMENT_SEEDS: Final = (0, 1, 2)
AUGMENT_STEPS: Final = 720
AUGMENT_ARMS: Final = ("real only", "real + generated")
AUGMENT_BATCH: Final = 8  # real views per step; the augmented arm adds as many generated ones
AUGMENT_EVAL_SEED: Final = 2000
AUGMENT_EVAL_LOGS: Final = 8
GENERATION_SEED: Final = 7
CITYSCAPES: Final = REPO.parent / "shared" / "data" / "cityscapes"


def _control(generator: SceneGenerator, held_out: list[LayoutSample]) -> dict[str, Any]:
    """Control errors with the generation setting of the checkpoint and with the paper's single assisted activation."""
    truth = proportions_of(np.stack([sample.labels for sample in held_out]), len(CLASS_NAMES))
    named = truth >= NAMED_MIN_SHARE
    rng = np.random.default_rng(GENERATION_SEED)
    partial = np.stack([generator.complete({CLASS_NAMES[c]: float(truth[i, c]) for c in np.flatnonzero(named[i])}, rng) for i in range(len(truth))])
    configured = generator.iterations
    result: dict[str, Any] = {"named_classes_per_layout": float(named.sum(axis=1).mean()), "generation_balancing_iterations": configured}
    for label, iterations in (("", configured), ("paper_activation_", 1)):
        generator.iterations = iterations
        realised = proportions_of(generator.generate(partial, GENERATION_SEED).labels, len(CLASS_NAMES))
        full_realised = proportions_of(generator.generate(truth.astype(np.float32), GENERATION_SEED).labels, len(CLASS_NAMES))
        result[f"{label}named_classes_error"] = control_error(partial, realised, named)
        result[f"{label}full_palette_error"] = control_error(truth, full_realised)
    generator.iterations = configured
    return result


def _real_image(generator: SceneGenerator, config: ScenegenConfig, held_props: np.ndarray) -> dict[str, Any]:
    """The real Cityscapes sample: how typical its palette is under the estimator (percentile of its log-likelihood
    among the held-out synthetic layouts'), and the control error when its palette is requested."""
    if not CITYSCAPES.is_dir():
        return {}
    real = cityscapes_samples(CITYSCAPES, config)
    props = proportions_of(np.stack([sample.labels for sample in real]), len(CLASS_NAMES))
    held_ll = generator.palette.log_likelihood(held_props)
    real_ll = generator.palette.log_likelihood(props)
    realised = proportions_of(generator.generate(props.astype(np.float32), GENERATION_SEED).labels, len(CLASS_NAMES))
    return {
        "images": len(real),
        "palette": {name: round(float(share), 4) for name, share in zip(CLASS_NAMES, props[0], strict=True) if share > 0},
        "log_likelihood_percentile_among_held_out": [float((held_ll < value).mean()) for value in real_ll],
        "control_error_present_classes": control_error(props, realised, props > 0),
    }


def _unconditional_layouts(config: ScenegenConfig, samples: list[LayoutSample], palette: PaletteEstimator, runs: Path, count: int) -> np.ndarray:
    """Argmax layouts of the baseline layout generator (no proportions, per-pixel softmax), trained like the shipped one."""
    import torch

    baseline = config.model_copy(update={"layout_network": config.layout_network.model_copy(update={"conditional": False})})
    out = runs / "unconditional_layout"
    print(f"training the unconditional layout baseline into {out}", flush=True)
    final = fit(LayoutTask(baseline, samples, palette, config_source=f"{CONFIG.name} + conditional: false"), out)
    model = LayoutTask(baseline, samples, palette).build_model()
    model.load_state_dict(load_checkpoint(final)["state_dict"])
    model.eval()
    generator = torch.Generator().manual_seed(GENERATION_SEED)
    with torch.inference_mode():
        noise = torch.randn(count, baseline.layout_network.latent_dim, generator=generator)
        layouts = model.generator(noise, torch.zeros(count, len(CLASS_NAMES))).layout
    return layouts.argmax(dim=1).numpy().astype(np.uint8)


def _segmentation_samples(images: np.ndarray, labels: np.ndarray, table: ClassTable) -> list[SegmentationSample]:
    classes = train_ids_to_classes(labels, table)
    return [SegmentationSample(image, label, "default") for image, label in zip(images, classes, strict=True)]


def _augmentation(
    config: ScenegenConfig, samples: list[LayoutSample], generator: SceneGenerator, held_out: list[LayoutSample], out_root: Path, steps: int
) -> dict[str, Any]:
    base = load_config(SEGMENTATION_CONFIG, SegmentationConfig)
    overrides = {"network": base.network.model_copy(update={"height_px": config.height_px, "width_px": config.width_px})}
    segmentation = base.model_copy(update=overrides)
    real = _segmentation_samples(np.stack([s.image for s in samples]), np.stack([s.labels for s in samples]), segmentation.classes)
    epochs = max(1, round(steps * AUGMENT_BATCH / len(real)))
    print(f"generating {steps * AUGMENT_BATCH} scenes for the augmented segmenters", flush=True)
    palettes = generator.sample_palettes(steps * AUGMENT_BATCH, np.random.default_rng(GENERATION_SEED))
    generated_scenes = generator.generate(palettes, GENERATION_SEED)
    generated = _segmentation_samples(generated_scenes.images, generated_scenes.labels, segmentation.classes)
    test = _segmentation_samples(np.stack([s.image for s in held_out]), np.stack([s.labels for s in held_out]), segmentation.classes)
    rows: dict[str, Any] = {name: [] for name in AUGMENT_ARMS}
    for seed in AUGMENT_SEEDS:
        for name, pairs in zip(AUGMENT_ARMS, ([], generated), strict=True):
            train_config = segmentation.train.model_copy(update={"seed": seed, "epochs": epochs, "batch_size": AUGMENT_BATCH})
            cfg = segmentation.model_copy(update={"train": train_config})
            out = out_root / f"{name.replace(' ', '_').replace('+', 'plus')}_seed{seed}"
            print(f"training the segmenter ({name}, seed {seed}, {epochs} epochs) into {out}", flush=True)
            final = fit(SegmentationTask(cfg, TrainingData(real, {}, pairs), config_source=f"augmentation {name} seed {seed}"), out)
            scores = evaluate_samples(Segmenter.from_checkpoint(final), test)
            rows[name].append((float(scores.miou), dict(zip(scores.class_names, scores.iou.tolist(), strict=True))))
    result: dict[str, Any] = {"epochs": epochs, "generated_pairs": len(generated)}
    for name, values in rows.items():
        mious = [miou for miou, _ in values]
        per_class = {cls: _mean_defined([iou[cls] for _, iou in values]) for cls in values[0][1]}
        result[name] = {"miou_per_seed": mious, "mean": float(np.mean(mious)), "std": float(np.std(mious)), "iou_mean_over_seeds": per_class}
    return result


def _mean_defined(values: list[float]) -> float | None:
    """Mean of the defined (not NaN) values; None when there is none (a class absent from every evaluation)."""
    defined = [value for value in values if not np.isnan(value)]
    return round(float(np.mean(defined)), 4) if defined else None


def _print_augmentation(augmentation: dict[str, Any], title: str) -> None:
    table = Table(title=title)
    table.add_column("segmenter trained on")
    table.add_column("mIoU (%), held-out drives", justify="right")
    for name in AUGMENT_ARMS:
        row = augmentation[name]
        per_seed = ", ".join(f"{100 * value:.1f}" for value in row["miou_per_seed"])
        table.add_row(name, f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f} ({per_seed})")
    Console(width=120).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=Path, default=REPO / "runs" / "scenegen")
    parser.add_argument("--config", type=Path, default=CONFIG, help="scenegen config: its training views are the 'real' set")
    parser.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/quality_scenegen[_<config stem>].json")
    parser.add_argument("--augmentation-only", action="store_true", help="skip control, FSD and fidelity")
    parser.add_argument("--augment-steps", type=int, default=AUGMENT_STEPS, help="segmenter steps (of 8 real views) in both arms")
    args = parser.parse_args(argv)
    config_path = args.config.resolve()
    config = load_config(config_path, ScenegenConfig)
    out_path = args.out or (RESULTS if config_path == CONFIG else RESULTS.with_name(f"quality_scenegen_{config_path.stem}.json"))
    samples = training_samples(config)
    run = args.runs / config_path.stem
    checkpoint = (
        run / FINAL if (run / FINAL).is_file() else train_scenegen(config, samples, run, lambda factory, data, out: train(factory, data, out), config_path.name)
    )
    generator = SceneGenerator.from_checkpoint(checkpoint)
    augment_held_out = synth_samples(config, AUGMENT_EVAL_SEED, AUGMENT_EVAL_LOGS)
    augment_root = args.runs / ("augmentation" if config_path == CONFIG else f"augmentation_{config_path.stem}")
    augmentation = _augmentation(config, samples, generator, augment_held_out, augment_root, args.augment_steps)
    augmentation_result = {
        "eval_seed": AUGMENT_EVAL_SEED, "eval_logs": AUGMENT_EVAL_LOGS, "segmenter_seeds": list(AUGMENT_SEEDS), "real_views": len(samples),
        "steps": args.augment_steps, **augmentation,
    }  # fmt: skip
    if args.augmentation_only:
        _print_augmentation(augmentation, f"Semantic Palette augmentation, {len(samples)} real views ({config_path.name})")
        atomic_write_text(out_path, json.dumps({"config": config_path.name, "augmentation": augmentation_result}, indent=2) + "\n")
        print(f"wrote {out_path}")
        return 0
    held_out = synth_samples(config, config.data.validation_seed, config.data.validation_logs)
    held_labels = np.stack([sample.labels for sample in held_out])
    held_props = proportions_of(held_labels, len(CLASS_NAMES))

    control = _control(generator, held_out)
    sampled = generator.generate(generator.sample_palettes(len(held_out), np.random.default_rng(GENERATION_SEED)), GENERATION_SEED)
    unconditional = _unconditional_layouts(config, samples, generator.palette, args.runs, len(held_out))
    training_props = proportions_of(np.stack([sample.labels for sample in samples]), len(CLASS_NAMES))
    realism = {
        "fsd_palette_samples": fsd(held_props, sampled.requested),
        "fsd_generated_layouts": fsd(held_props, proportions_of(sampled.labels, len(CLASS_NAMES))),
        "fsd_unconditional_layouts": fsd(held_props, proportions_of(unconditional, len(CLASS_NAMES))),
        "fsd_training_layouts": fsd(held_props, training_props),
    }
    segmenter = Segmenter.from_checkpoint(SEGMENTER_CHECKPOINT)
    held_images = np.stack([sample.image for sample in held_out])
    training_images = np.stack([sample.image for sample in samples])
    fidelity = {
        "generated_miou": semantic_fidelity(segmenter, sampled.images, sampled.labels)["miou"],
        "real_miou": semantic_fidelity(segmenter, held_images, held_labels)["miou"],
        "feature_fd_generated_vs_held_out": feature_frechet_distance(segmenter, held_images, sampled.images),
        "feature_fd_training_vs_held_out": feature_frechet_distance(segmenter, held_images, training_images),
    }
    real_image = _real_image(generator, config, held_props)

    console = Console(width=120)
    table = Table(title="Semantic Palette on the synthetic city (64x128, held-out drives)")
    table.add_column("measure")
    table.add_column("value", justify="right")
    iterations = control["generation_balancing_iterations"]
    table.add_row(f"control error, named classes (>= 2%), {iterations} balancing iterations", f"{control['named_classes_error']:.4f}")
    table.add_row(f"control error, whole palette requested, {iterations} balancing iterations", f"{control['full_palette_error']:.4f}")
    table.add_row("control error, named classes, the paper's activation", f"{control['paper_activation_named_classes_error']:.4f}")
    table.add_row("control error, whole palette, the paper's activation", f"{control['paper_activation_full_palette_error']:.4f}")
    for key, value in realism.items():
        table.add_row(key.replace("_", " "), f"{value:.4f}")
    table.add_row("semantic fidelity mIoU, generated (%)", f"{100 * fidelity['generated_miou']:.1f}")
    table.add_row("semantic fidelity mIoU, real (%)", f"{100 * fidelity['real_miou']:.1f}")
    table.add_row("encoder-feature FD, generated vs held-out", f"{fidelity['feature_fd_generated_vs_held_out']:.2f}")
    table.add_row("encoder-feature FD, training vs held-out", f"{fidelity['feature_fd_training_vs_held_out']:.2f}")
    for name in AUGMENT_ARMS:
        row = augmentation[name]
        per_seed = ", ".join(f"{100 * value:.1f}" for value in row["miou_per_seed"])
        table.add_row(f"augmentation mIoU (%), {name}", f"{100 * row['mean']:.1f} ± {100 * row['std']:.1f} ({per_seed})")
    if real_image:
        percentile = real_image["log_likelihood_percentile_among_held_out"][0]
        table.add_row("real Cityscapes image: palette likelihood percentile", f"{100 * percentile:.0f}%")
        table.add_row("real Cityscapes image: control error (its palette)", f"{real_image['control_error_present_classes']:.4f}")
    console.print(table)
    result = {
        "checkpoint": str(checkpoint.relative_to(REPO)) if checkpoint.is_relative_to(REPO) else str(checkpoint),
        "held_out": {"seed": config.data.validation_seed, "logs": config.data.validation_logs, "layouts": len(held_out)},
        "training_layouts": len(samples),
        "control": control,
        "realism": realism,
        "semantic_fidelity": fidelity,
        "real_cityscapes_image": real_image,
        "augmentation": augmentation_result,
    }
    atomic_write_text(out_path, json.dumps(result, indent=2) + "\n")
    print(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
