"""The `drivestack` command line (typer + rich).

Every command imports its implementation lazily, so `drivestack --help` stays fast and a plain run never imports Ray.

Errors are reported in one place, `DrivestackGroup.invoke`, for every command: an expected error (a
`scenes.errors.DrivestackError`: bad config, data, checkpoint, option value or output path; or a missing, unreadable
or misplaced file) is one line `error: <file>: <what>` on stderr with exit status 2; any other exception is a bug, one
line `error: unexpected ...` with a hint to rerun with `drivestack --debug ...` and exit status 1; `--debug` (before
the command) shows the full traceback instead. Commands do not catch errors themselves.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer._click.core import Context  # typer 0.29 vendors click as typer._click: its classes, not click's
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer._click.globals import get_current_context
from typer.core import TyperGroup
from typer.exceptions import Abort

from scenes import __version__
from scenes.errors import DrivestackError, InputError, check_output_path

if TYPE_CHECKING:
    from scenes.training.harness import TrainingTask

# Expected errors besides DrivestackError: a file the user named that is missing, unreadable or of the wrong kind.
FILE_ERRORS: tuple[type[OSError], ...] = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
DEBUG_HINT = "rerun as 'drivestack --debug ...' for the traceback"


def error_line(error: BaseException) -> tuple[int, str]:
    """(exit status, one-line message) of an exception raised by a command: 2 for expected errors, 1 for bugs."""
    if isinstance(error, DrivestackError):
        code, message = 2, str(error)
    elif isinstance(error, FILE_ERRORS):
        where = f"{error.filename}" + (f" -> {error.filename2}" if error.filename2 is not None else "")
        code, message = 2, f"{where}: {error.strerror}" if error.filename is not None else str(error)
    else:
        code, message = 1, f"unexpected {type(error).__name__}: {error} ({DEBUG_HINT})"
    return code, " ".join(line.strip() for line in message.splitlines() if line.strip())


def report_error(message: str) -> None:
    """Writes `error: <message>` as one line on stderr, never wrapped (a path stays whole at any terminal width)."""
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()


def _debug_requested() -> bool:
    context = get_current_context(silent=True)
    return bool(context is not None and context.find_root().params.get("debug"))


class DrivestackGroup(TyperGroup):
    """The root group: maps every error raised under it to one line and an exit status (see the module docstring)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except NoArgsIsHelpError:
            raise
        except UsageError as error:
            report_error(f"{error.format_message()} (see '{ctx.command_path} --help')")
            raise typer.Exit(code=2) from None

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, Abort, NoArgsIsHelpError):
            raise
        except UsageError as error:
            where = error.ctx.command_path if error.ctx is not None else ctx.command_path
            report_error(f"{error.format_message()} (see '{where} --help')")
            raise typer.Exit(code=2) from None
        except ClickException as error:
            report_error(error.format_message())
            raise typer.Exit(code=error.exit_code) from None
        except Exception as error:
            if ctx.params.get("debug"):
                raise
            code, message = error_line(error)
            report_error(message)
            raise typer.Exit(code=code) from None


app = typer.Typer(
    name="drivestack",
    cls=DrivestackGroup,
    help="Autonomous-driving perception and forecasting stack: detection, tracking, forecasting, depth, "
    "segmentation and scene generation on AV2, nuScenes, KITTI or the built-in synthetic city.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_short=False,
)
train_app = typer.Typer(help="Train one module of the stack.", no_args_is_help=True)
finetune_app = typer.Typer(help="Sequential finetuning steps of the end-to-end stack.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Score a task's predictions or shipped model on a dataset.", no_args_is_help=True)
predict_app = typer.Typer(help="Run one shipped model on files you give.", no_args_is_help=True)
app.add_typer(train_app, name="train")
app.add_typer(finetune_app, name="finetune")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(predict_app, name="predict")

console = Console(stderr=True)

DataOption = Annotated[
    str,
    typer.Option("--data", help="Dataset as NAME:PATH (av2:, av2-mf:, nuscenes:, kitti:, kitti-object:, kitti-tracking:, cityscapes:) or 'synth'."),
]
SplitOption = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Split folder to read when PATH holds split folders (av2: <PATH>/<split>/<log_id>, cityscapes: "
        "leftImg8bit/<split>); default: every split under PATH (PATH itself when it is a split or log folder). "
        "The synthetic city has no splits.",
    ),
]
SkipBadOption = Annotated[bool, typer.Option("--skip-bad", help="Log and skip bad frames/logs instead of failing.")]
NuScenesVersionOption = Annotated[
    str | None,
    typer.Option("--nuscenes-version", help="nuScenes version folder under PATH (e.g. v1.0-mini, v1.0-synth); default: the only one there."),
]
ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML config (see configs/).")]
WorkersOption = Annotated[int | None, typer.Option("--workers", min=1, help="Run under Ray Train with N workers (no Ray without it).")]
AddressOption = Annotated[str | None, typer.Option("--address", help="Address of an existing Ray cluster (ray://HOST:PORT needs the ray[client] extra).")]
OutOption = Annotated[Path, typer.Option("--out", help="Output file or directory.")]
TrainOutOption = Annotated[
    Path | None,
    typer.Option(
        "--out",
        help="Directory of the checkpoints (resumes from its last.pt); default: runs/<stage>/<config file stem>, runs/<stage>/default without --config.",
    ),
]


class SynthFormat(StrEnum):
    av2 = "av2"
    av2_mf = "av2-mf"
    kitti = "kitti"
    kitti_tracking = "kitti-tracking"
    nuscenes = "nuscenes"
    cityscapes = "cityscapes"


class SynthStyle(StrEnum):
    """The synthetic city's domain styles (`scenes.synth.styles.style_names()`, kept equal by a test)."""

    default = "default"
    downtown = "downtown"
    night = "night"
    fog = "fog"
    desert = "desert"


def _version_callback(show: bool) -> None:
    if show:
        typer.echo(f"drivestack {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="On an error, show the full traceback instead of one line.")] = False,
) -> None:
    """drivestack command line."""


def dataset_options(data: str, *, split: str | None = None, skip_bad: bool = False, nuscenes_version: str | None = None) -> dict[str, Any]:
    """The adapter options of `--split`, `--skip-bad` and `--nuscenes-version` (a split only for a dataset on disk,
    where it is given; a version only for nuscenes:PATH)."""
    options: dict[str, Any] = {"skip_bad": skip_bad}
    if split is not None and data != "synth":
        options["split"] = split
    if nuscenes_version is not None:
        if not data.startswith("nuscenes:"):
            raise InputError(f"--nuscenes-version {nuscenes_version}: only nuscenes:PATH data has versions, got --data {data}")
        options["version"] = nuscenes_version
    return options


def _missing_ray_client_module() -> str | None:
    """The module that `ray://` addresses need and that is not installed (Ray itself, or grpc of the client extra)."""
    for module in ("ray", "grpc"):
        if importlib.util.find_spec(module) is None:
            return module
    return None


def check_ray_options(workers: int | None, address: str | None) -> None:
    """`--address` needs `--workers`; a `ray://` address needs the Ray client extra. Checked before any work."""
    if address is None:
        return
    if workers is None:
        raise InputError(f"--address {address}: connects to a Ray cluster: give --workers N too")
    if address.startswith("ray://"):
        missing = _missing_ray_client_module()
        if missing is not None:
            raise InputError(f"--address {address}: a ray:// address needs the Ray client extra (module {missing!r} is missing): pip install 'ray[client]'")


def default_train_out(stage: str, config: Path | None) -> Path:
    """`runs/<stage>/<config stem>` (`runs/<stage>/default` without a config): two configs never share a folder."""
    return Path("runs") / stage / (config.stem if config is not None else "default")


def _train_out(stage: str, config: Path | None, out: Path | None) -> Path:
    out_dir = out if out is not None else default_train_out(stage, config)
    check_output_path(out_dir, directory=True)
    return out_dir


@app.command("e2e-forecast")
def e2e_forecast(
    data: DataOption = "synth",
    split: SplitOption = None,
    out: OutOption = Path("submission.pkl"),
    evaluate: Annotated[bool, typer.Option("--evaluate", help="Score with the official AV2 evaluator.")] = False,
    workers: WorkersOption = None,
    address: AddressOption = None,
    config: ConfigOption = None,
    plot: Annotated[Path | None, typer.Option("--plot", help="BEV PNG of one frame (default: beside --out).")] = None,
    skip_bad: SkipBadOption = False,
) -> None:
    """Detection -> tracking -> forecasting on LiDAR logs; writes an AV2 E2E forecasting submission."""
    check_ray_options(workers, address)
    from pipelines.e2e_job import run_job

    run_job(
        data=data, split=split, out=out, evaluate=evaluate, config=config, plot=plot, console=console, workers=workers,
        address=address, skip_bad=skip_bad,
    )  # fmt: skip


@app.command("detect")
def detect(
    data: DataOption,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="AV2 detection feather (av2:, synth), nuScenes detection JSON (nuscenes:), or a folder of KITTI object result "
            "files (kitti-object:) or of PointRCNN-format SEQ.txt files (kitti-tracking:).",
        ),
    ],
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="Detector checkpoint instead of the shipped one.")] = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
) -> None:
    """Run the shipped LiDAR detector over a dataset and write the dataset's detection format, for evaluate detection
    and track."""
    from pipelines.detect_job import run_detect

    options = dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version)
    run_detect(data, out, checkpoint=checkpoint, options=options, console=console)


@app.command("track")
def track(
    data: DataOption,
    detections: Annotated[
        Path,
        typer.Option(
            "--detections",
            help="Detections made elsewhere: an AV2 detection feather (av2:PATH), or a folder of SEQ.txt files (kitti-tracking:PATH; "
            "AB3DMOT's PointRCNN files or KITTI tracking-format lines).",
        ),
    ],
    out: OutOption = Path("tracks"),
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", help="Tracker checkpoint (.pt of train/finetune tracking) or configs/tracking YAML; default: the tracker for external detections."
        ),
    ] = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
) -> None:
    """Track detections made elsewhere; writes the dataset's tracking submission format into OUT (AV2: OUT/tracks.pkl;
    KITTI tracking: OUT/SEQ.txt, the label format plus score)."""
    from pipelines.tracking_job import run_track

    run_track(data, detections, out, config=config, options=dataset_options(data, split=split, skip_bad=skip_bad), console=console)


def run_training(command: str, task_factory: Callable[[Any], TrainingTask], dataset: Any, out_dir: Path, workers: int | None, address: str | None) -> Path:
    """Runs a module's training task on the harness in this process or, with `--workers N`, under Ray Train."""
    from scenes.training.launch import train

    where = "in-process" if workers is None else f"on {workers} Ray Train worker(s)" + (f" at {address}" if address else "")
    console.print(f"drivestack {command}: training {where}, checkpoints in {out_dir}", soft_wrap=True)
    try:
        final = train(task_factory, dataset, out_dir, workers=workers, address=address)
    except ValueError as error:  # the harness and launcher report bad settings as ValueError (one line, exit 2)
        if _debug_requested():
            raise
        report_error(error_line(error)[1] if isinstance(error, DrivestackError) else " ".join(str(error).split()))
        raise typer.Exit(code=2) from None
    console.print(f"wrote {final} (metrics per epoch: {out_dir / 'metrics.json'}, curve: {out_dir / 'loss_curve.png'})", soft_wrap=True)
    return final


def _config_source(config: Path | None) -> str:
    return str(config) if config is not None else "the default config"


@train_app.command("detection")
def train_detection(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: TrainOutOption = None,
) -> None:
    """Train the CenterPoint-style LiDAR detector (loss curve: OUT/loss_curve.png, final weights: OUT/detector.pt)."""
    from perception.detection.config import DetectionConfig
    from perception.detection.train import DetectionTask, collect_samples, synth_samples
    from scenes.adapters.registry import open_dataset
    from scenes.config import load_config

    check_ray_options(workers, address)
    out_dir = _train_out("detection", config, out)
    cfg = load_config(config, DetectionConfig) if config is not None else DetectionConfig()
    if data == "synth":
        samples = synth_samples(cfg)
    else:
        dataset = open_dataset(data, **dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version))
        samples = collect_samples(dataset, cfg.model, cfg.synth.frame_stride)
    run_training("train detection", partial(DetectionTask, cfg, config_source=_config_source(config)), samples, out_dir, workers, address)


@train_app.command("tracking")
def train_tracking(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="Directory of the fitted tracker checkpoint; default: runs/tracking/<config file stem>, runs/tracking/default without --config."
        ),
    ] = None,
) -> None:
    """Fit the tracker's parameters (Kalman noise, association gates) on ground-truth tracks (one pass, no workers)."""
    from perception.tracking.config import TrackingConfig
    from perception.tracking.train import fit
    from scenes.adapters.registry import open_dataset
    from scenes.config import load_config

    out_dir = _train_out("tracking", config, out)
    cfg = load_config(config, TrackingConfig) if config is not None else TrackingConfig()
    options = dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version)
    path = fit(cfg, data if data == "synth" else open_dataset(data, **options), out_dir)
    console.print(f"wrote {path}", soft_wrap=True)


@train_app.command("forecasting")
def train_forecasting(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: TrainOutOption = None,
) -> None:
    """Train the CAB multimodal forecaster (plain, CAB, Reweight or RUBiZ objective, see configs/forecasting/)."""
    from forecasting.config import ForecastingConfig
    from forecasting.sources import training_samples
    from forecasting.train import ForecastingTask
    from scenes.config import load_config

    check_ray_options(workers, address)
    out_dir = _train_out("forecasting", config, out)
    cfg = load_config(config, ForecastingConfig) if config is not None else ForecastingConfig()
    samples = training_samples(cfg, data, dataset_options=dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version))
    run_training("train forecasting", partial(ForecastingTask, cfg, config_source=_config_source(config)), samples, out_dir, workers, address)


@train_app.command("depth")
def train_depth(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: TrainOutOption = None,
) -> None:
    """Train LiDARTouch monocular depth with few-beam LiDAR on the synthetic city or KITTI raw drives (kitti:PATH)
    (loss curve: OUT/loss_curve.png, final weights: OUT/depth.pt)."""
    from depth.config import DepthConfig
    from depth.train import DepthTask
    from pipelines.depth_job import depth_samples
    from scenes.config import load_config

    check_ray_options(workers, address)
    out_dir = _train_out("depth", config, out)
    cfg = load_config(config, DepthConfig) if config is not None else DepthConfig()
    samples = depth_samples(cfg, data, dataset_options(data, split=split, skip_bad=skip_bad), evaluation=False, workers=workers)
    run_training("train depth", partial(DepthTask, cfg, config_source=_config_source(config)), samples, out_dir, workers, address)


@train_app.command("segmentation")
def train_segmentation(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: TrainOutOption = None,
    augment: Annotated[
        str | None,
        typer.Option(
            "--augment",
            help="cityscapes:PATH of labelled pairs mixed 1:1 with the source in every batch, such as the scenes of `drivestack generate`.",
        ),
    ] = None,
) -> None:
    """Train MTAF multi-target domain adaptation (source-only, ADVENT, Multi-Dis, MTKT by config): the labelled source
    is the synthetic city's default style (or a Cityscapes-style folder, cityscapes:PATH), the unlabelled targets the
    synthetic night, fog and desert styles (final weights: OUT/segmenter.pt). With --augment, each batch also holds
    as many labelled pairs of that folder as source images (Semantic Palette's augmentation)."""
    from perception.segmentation.config import SegmentationConfig
    from perception.segmentation.train import SegmentationTask
    from pipelines.segmentation_job import segmentation_training_data
    from scenes.config import load_config

    check_ray_options(workers, address)
    out_dir = _train_out("segmentation", config, out)
    cfg = load_config(config, SegmentationConfig) if config is not None else SegmentationConfig()
    samples = segmentation_training_data(cfg, data, split, workers, augment=augment)
    run_training("train segmentation", partial(SegmentationTask, cfg, config_source=_config_source(config)), samples, out_dir, workers, address)


@train_app.command("scenegen")
def train_scenegen(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    workers: WorkersOption = None,
    address: AddressOption = None,
    out: TrainOutOption = None,
) -> None:
    """Train Semantic Palette on the synthetic city's labelled views or a Cityscapes-style folder (cityscapes:PATH): the
    palette estimator, the layout GAN (OUT/layout), SPADE (OUT/image), joint fine-tuning (OUT/joint); generation
    checkpoint: OUT/palette.pt."""
    from pipelines.scenegen_job import scenegen_training_samples
    from scenegen.config import ScenegenConfig
    from scenegen.train import train_scenegen as train_phases
    from scenes.config import load_config

    check_ray_options(workers, address)
    out_dir = _train_out("scenegen", config, out)
    cfg = load_config(config, ScenegenConfig) if config is not None else ScenegenConfig()
    samples = scenegen_training_samples(cfg, data, split, workers)

    def phase(task_factory: Callable[[Any], TrainingTask], dataset: Any, phase_dir: Path) -> Path:
        return run_training(f"train scenegen ({phase_dir.name})", task_factory, dataset, phase_dir, workers, address)

    final = train_phases(cfg, samples, out_dir, phase, _config_source(config))
    console.print(f"wrote {final}", soft_wrap=True)


@finetune_app.command("forecasting")
def finetune_forecasting(
    on_tracks: Annotated[Path | None, typer.Option("--on-tracks", help="Tracker outputs to finetune on.")] = None,
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    out: OutOption = Path("runs/finetune_forecasting"),
) -> None:
    """Finetune the forecaster on tracker outputs matched to ground-truth futures."""
    if config is None:
        raise InputError("--config: required (e.g. configs/pipelines/finetune_forecasting.yaml)")
    from pipelines.sequential_finetune import run_finetune_job

    run_finetune_job(config, data, out, on_tracks=on_tracks, split=split, console=console, skip_bad=skip_bad)


@finetune_app.command("tracking")
def finetune_tracking(
    config: ConfigOption = None,
    data: DataOption = "synth",
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    out: OutOption = Path("runs/finetune_tracking"),
    detections: Annotated[
        Path | None,
        typer.Option("--detections", help="Refit on detections made elsewhere on --data (as drivestack track reads them) instead of the stack's detector."),
    ] = None,
) -> None:
    """Refit the tracker's noise and gates on detector outputs matched to ground truth: the stack's detector on AV2 logs
    or the synthetic training split, or --detections made elsewhere (kitti-tracking:PATH, av2:PATH); writes
    OUT/tracker.pt, usable as tracker_config of e2e-forecast and as track --config."""
    from pipelines.tracking_finetune import run_finetune_tracking

    options = dataset_options(data, split=split, skip_bad=skip_bad)
    run_finetune_tracking(config, data, out, detections=detections, options=options, split=split, console=console, skip_bad=skip_bad)


@app.command("generate")
def generate(
    num: Annotated[int, typer.Option("--num", min=1, help="Number of scenes.")] = 8,
    proportions: Annotated[
        str | None,
        typer.Option(help="Class proportions, e.g. 'road=0.35,sky=0.2,car=0.08'; the other classes share the rest as the palette predicts."),
    ] = None,
    sample_palette: Annotated[bool, typer.Option("--sample-palette", help="Draw whole palettes from the palette estimator instead.")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same scenes).")] = 0,
    checkpoint: Annotated[Path | None, typer.Option("--checkpoint", help="OUT/palette.pt of train scenegen; default: the shipped one.")] = None,
    preview: Annotated[bool, typer.Option("--preview", help="Also write OUT/preview.png, a contact sheet of layouts and images.")] = False,
    out: OutOption = Path("generated"),
) -> None:
    """Generate urban scenes with Semantic Palette as a Cityscapes folder (leftImg8bit/, gtFine/ labelIds and
    labelTrainIds) that cityscapes:OUT reads."""
    from pipelines.scenegen_job import run_generate

    run_generate(num, out, proportions=proportions, sample_palette=sample_palette, seed=seed, checkpoint=checkpoint, preview=preview, console=console)


@app.command("synth")
def synth(
    out: OutOption = Path("synth"),
    logs: Annotated[int, typer.Option("--logs", min=1, help="Number of logs.")] = 1,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Duration of each log.")] = 15.0,
    format: Annotated[SynthFormat, typer.Option("--format", help="On-disk format.")] = SynthFormat.av2,
    style: Annotated[SynthStyle, typer.Option("--style", help="Domain style.")] = SynthStyle.default,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same bytes).")] = 0,
    preview: Annotated[bool, typer.Option("--preview", help="Also write a preview PNG per log.")] = False,
    split: Annotated[str, typer.Option("--split", help="Split folder (av2, av2-mf, cityscapes); nuScenes lists the scenes as split synth_<split>.")] = "train",
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Write into a non-empty --out, replacing each log/scene/sequence this run writes (one rename per item); nothing else under --out is deleted.",
        ),
    ] = False,
    bright_people: Annotated[
        bool, typer.Option("--bright-people", help="People as bright in the LiDAR as on real sweeps (the bright city of the detection configs).")
    ] = False,
    vehicle_paint: Annotated[
        bool, typer.Option("--vehicle-paint", help="Each vehicle with its own paint, from nearly black to bright in the LiDAR, as real vehicles.")
    ] = False,
    pedestrian_groups: Annotated[
        bool, typer.Option("--pedestrian-groups", help="A third of the people walking in groups of two and three, as on real streets.")
    ] = False,
) -> None:
    """Simulate urban driving logs and write them in a real dataset format.

    Each item is written into a temporary folder beside its destination and renamed into place when complete, so an
    interrupted run leaves no partial log. A non-empty --out is refused (exit status 2) unless --overwrite.
    """
    from scenes.synth.writers.export import write_synthetic_dataset

    written = write_synthetic_dataset(
        format.value,
        out,
        logs=logs,
        seconds=seconds,
        style=style.value,
        seed=seed,
        split=split,
        preview=preview,
        overwrite=overwrite,
        bright_people=bright_people,
        vehicle_paint=vehicle_paint,
        pedestrian_groups=pedestrian_groups,
        console=console,
    )
    console.print(f"wrote {len(written)} {format.value} item(s) under {out}")


CheckpointOption = Annotated[Path | None, typer.Option("--checkpoint", help="Checkpoint to score instead of the shipped one.")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Also write the figures as JSON to this file.")]


@evaluate_app.command("depth")
def evaluate_depth(
    data: DataOption = "synth",
    checkpoint: CheckpointOption = None,
    beams: Annotated[int | None, typer.Option("--beams", min=1, help="LiDAR beams kept as input (default: the checkpoint's, 4).")] = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
) -> None:
    """Score LiDARTouch and the no-network baseline (few-beam LiDAR interpolated to every pixel) on KITTI object
    frames (kitti-object:PATH, ground truth = the full 64-beam scan), KITTI raw drives (kitti:PATH) or held-out
    synthetic drives (synth): AbsRel, SqRel, RMSE, RMSElog, delta thresholds, metric and median-scaled."""
    from pipelines.depth_job import run_evaluate_depth

    run_evaluate_depth(data, dataset_options(data, split=split, skip_bad=skip_bad), checkpoint=checkpoint, beams=beams, json_path=json_path, console=console)


@evaluate_app.command("detection")
def evaluate_detection(
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Detections to score instead of running the detector: an AV2 detection feather (av2:PATH, synth) "
            "or a nuScenes detection JSON (nuscenes:PATH).",
        ),
    ] = None,
    data: DataOption = "synth",
    checkpoint: CheckpointOption = None,
    eval_set: Annotated[
        str | None,
        typer.Option("--eval-set", help="nuScenes split to score (e.g. mini_val, synth_val); default: the one split that holds every scene of the database."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the detector's predictions in the dataset's format (AV2 feather, nuScenes JSON).")
    ] = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
) -> None:
    """Score 3D detections with the official evaluators: AV2 (per-category AP, ATE, ASE, AOE, CDS) on the annotated
    LiDAR frames of av2:PATH or of held-out synthetic logs (synth), nuScenes DetectionEval (mAP, NDS, per-class AP) on
    an eval set of nuscenes:PATH. Without --predictions, the shipped detector (or --checkpoint) runs on the data."""
    from pipelines.evaluate_job import run_evaluate_detection

    run_evaluate_detection(
        data, dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version), predictions=predictions,
        checkpoint=checkpoint, eval_set=eval_set, out=out, json_path=json_path, console=console,
    )  # fmt: skip


class ForecasterChoice(StrEnum):
    """The forecasters `evaluate forecasting` runs without --predictions."""

    shipped = "shipped"
    constant_velocity = "constant-velocity"


@evaluate_app.command("forecasting")
def evaluate_forecasting(
    data: DataOption,
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Forecasts to score instead of running a forecaster: an AV2 motion-forecasting challenge parquet (av2-mf:PATH) "
            "or a nuScenes prediction JSON (nuscenes:PATH).",
        ),
    ] = None,
    forecaster: Annotated[
        ForecasterChoice | None,
        typer.Option(
            "--forecaster", help="Forecaster to run without --predictions: the shipped CAB forecaster (or --checkpoint) or constant velocity; default: shipped."
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
) -> None:
    """Score motion forecasts: AV2 motion forecasting (6 s at 10 Hz; minADE, minFDE, miss rate, brier-minFDE at K=6
    and K=1, for the focal track and for focal + scored tracks) with av2's metric functions, or the nuScenes prediction
    challenge (6 s at 2 Hz; MinADE_k, MinFDE_k, MissRate_k) with the devkit."""
    from pipelines.evaluate_job import run_evaluate_forecasting

    run_evaluate_forecasting(
        data, dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version), predictions=predictions,
        forecaster=forecaster.value if forecaster is not None else None, checkpoint=checkpoint, json_path=json_path, console=console,
    )  # fmt: skip


@evaluate_app.command("e2e-forecasting")
def evaluate_e2e_forecasting(
    predictions: Annotated[
        Path | None,
        typer.Option("--predictions", help="AV2 end-to-end forecasting submission pickle to score instead of running the stack (e.g. from e2e-forecast)."),
    ] = None,
    data: DataOption = "synth",
    config: ConfigOption = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
) -> None:
    """Score AV2 end-to-end forecasting (mAP_F, ADE, FDE per category and motion profile) on AV2 sensor logs (av2:PATH)
    or the synthetic split of the e2e config (synth), with the ROI, top-K and range settings of e2e-forecast --evaluate
    under the same --config. Without --predictions, the stack of --config runs on the data."""
    from pipelines.evaluate_job import run_evaluate_e2e_forecasting

    run_evaluate_e2e_forecasting(data, split=split, skip_bad=skip_bad, predictions=predictions, config=config, json_path=json_path, console=console)


@evaluate_app.command("tracking")
def evaluate_tracking(
    data: DataOption = "synth",
    predictions: Annotated[
        Path | None,
        typer.Option(
            "--predictions",
            help="Tracks to score: a folder of KITTI tracking results SEQ.txt (kitti-tracking:PATH), an AV2 tracking pickle "
            "(av2:PATH, synth) or a nuScenes tracking JSON (nuscenes:PATH).",
        ),
    ] = None,
    detections: Annotated[
        Path | None,
        typer.Option("--detections", help="Detections made elsewhere to track and score (as drivestack track reads them)."),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="Tracker checkpoint or configs/tracking YAML; default: the stack's shipped tracker, with --detections the tracker for external detections.",
        ),
    ] = None,
    eval_set: Annotated[
        str | None, typer.Option("--eval-set", help="nuScenes split the submission covers; default: the one split that holds every scene.")
    ] = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
    nuscenes_version: NuScenesVersionOption = None,
) -> None:
    """Score tracks: KITTI tracking (TrackEval HOTA, CLEAR MOT, IDF1 on car and pedestrian; AB3DMOT sAMOTA, AMOTA with
    3D IoU), AV2 or held-out synthetic logs (av2 HOTA, MOTA), nuScenes (AMOTA). Without --predictions, the tracker runs
    on --detections or on the shipped detector's outputs on --data, and is scored."""
    from pipelines.tracking_job import run_evaluate_tracking

    options = dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version)
    run_evaluate_tracking(
        data, predictions=predictions, detections=detections, config=checkpoint, options=options, json_path=json_path, console=console, eval_set=eval_set
    )


@evaluate_app.command("segmentation")
def evaluate_segmentation(
    data: DataOption = "synth",
    checkpoint: CheckpointOption = None,
    json_path: JsonOption = None,
    split: SplitOption = None,
) -> None:
    """Per-class IoU and mIoU of the shipped MTKT segmenter (or --checkpoint) on a Cityscapes-style folder
    (cityscapes:PATH, gtFine labelIds) or on held-out drives of the synthetic target styles (synth)."""
    from pipelines.segmentation_job import run_evaluate_segmentation

    run_evaluate_segmentation(data, split=split, checkpoint=checkpoint, json_path=json_path, console=console)


@predict_app.command("segmentation")
def predict_segmentation(
    image: Annotated[Path, typer.Option("--image", help="Camera image (PNG or JPEG).")],
    out: OutOption = Path("segmentation_prediction"),
    checkpoint: CheckpointOption = None,
) -> None:
    """Semantic segmentation of one image: writes a colour-coded label PNG and an overlay into OUT."""
    from pipelines.segmentation_job import run_predict_segmentation

    run_predict_segmentation(image, out, checkpoint=checkpoint, console=console)


@predict_app.command("depth")
def predict_depth(
    image: Annotated[Path, typer.Option("--image", help="Camera image (KITTI image_2 PNG).")],
    lidar: Annotated[Path, typer.Option("--lidar", help="Velodyne scan (KITTI .bin); its scanlines are found from the elevation angle.")],
    calib: Annotated[Path, typer.Option("--calib", help="KITTI object calibration file (P2, R0_rect, Tr_velo_to_cam).")],
    out: OutOption = Path("depth_prediction"),
    checkpoint: CheckpointOption = None,
    beams: Annotated[int | None, typer.Option("--beams", min=1, help="LiDAR beams kept as input (default: the checkpoint's).")] = None,
) -> None:
    """Metric depth of one frame from its image and a few beams of its scan: writes a coloured depth PNG and a
    KITTI-format 16-bit depth PNG (depth * 256, 0 = none) into OUT."""
    from pipelines.depth_job import run_predict_depth

    run_predict_depth(image, lidar, calib, out, checkpoint=checkpoint, beams=beams, console=console)


@app.command("inspect")
def inspect(
    data: DataOption,
    preview: Annotated[Path | None, typer.Option("--preview", help="Write a BEV preview PNG of one frame.")] = None,
    nuscenes_version: NuScenesVersionOption = None,
    split: SplitOption = None,
    skip_bad: SkipBadOption = False,
) -> None:
    """Summarise a dataset on disk (logs, frames, sensors, categories, time span)."""
    from scenes.adapters.preview import preview_frame, summary_table, write_bev_preview
    from scenes.adapters.registry import open_dataset

    if preview is not None:
        check_output_path(preview, directory=False, option="--preview")
    dataset = open_dataset(data, **dataset_options(data, split=split, skip_bad=skip_bad, nuscenes_version=nuscenes_version))
    Console().print(summary_table(dataset.summary(progress=True)))
    if preview is not None:
        frame, lane_graph = preview_frame(dataset)
        write_bev_preview(frame, lane_graph, preview)
        console.print(f"BEV preview of {frame.log_id} @ {frame.timestamp_ns} written to {preview}", soft_wrap=True)


def main() -> None:
    app(prog_name="drivestack")


if __name__ == "__main__":
    main()
