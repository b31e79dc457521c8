"""The `drivestack e2e-forecast` job: runs the end-to-end stack, writes the AV2 submission, a BEV plot and the scores.

The stack itself (`run_e2e`) is `pipelines.e2e_forecast`; with `--workers`, `pipelines.e2e_parallel` runs its logs
in parallel Ray tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from forecasting.baselines import ConstantVelocityForecaster
from pipelines.e2e_forecast import STAGES, E2EResult, ground_truth_tracks, load_e2e_config, open_e2e_dataset, reforecast, run_e2e
from pipelines.evaluate_e2e import METRICS, E2EForecastingScores
from scenes.errors import InputError, check_output_path

__all__ = ["baseline_comparison", "plot_result_frame", "run_job"]


def plot_result_frame(result: E2EResult, path: Path) -> Path | None:
    """The BEV plot of the busiest forecast frame of the first log that has forecasts."""
    from pipelines.e2e_plot import busiest_timestamp, plot_forecasts_bev

    for log in result.logs:
        if not log.forecasts or log.tracks is None:
            continue
        timestamp_ns = busiest_timestamp(log.forecasts)
        tracked = dict(zip(log.tracks.timestamps_ns.tolist(), log.tracks.boxes, strict=True))[timestamp_ns]
        frames = {frame.timestamp_ns: frame for frame in log.annotated}
        ego_xy = frames[timestamp_ns].city_SE3_ego.translation[:2] if timestamp_ns in frames else log.forecasts[timestamp_ns].current_xy_m.mean(0)
        ground_truth = ground_truth_tracks(log.annotated) if log.annotated else None
        return plot_forecasts_bev(path, log.forecasts[timestamp_ns], tracked, ego_xy, lane_graph=log.lane_graph, ground_truth=ground_truth)
    return None


def baseline_comparison(learned: E2EForecastingScores, constant_velocity: E2EForecastingScores) -> str:
    """One line: the learned forecaster's mean mAP_F / ADE / FDE against constant velocity's on the same tracks."""
    figures = ", ".join(f"{metric} {learned.mean(metric):.3f} vs {constant_velocity.mean(metric):.3f}" for metric in METRICS)
    return f"learned forecaster vs constant velocity on the same tracks (means over profiles and categories): {figures}"


def run_job(
    *,
    data: str | None,
    split: str | None,
    out: Path,
    evaluate: bool,
    config: Path | None = None,
    plot: Path | None = None,
    console: Any = None,
    workers: int | None = None,
    address: str | None = None,
    skip_bad: bool = False,
) -> E2EResult:
    """`drivestack e2e-forecast`: runs the stack, writes the submission, the BEV plot and, with `evaluate`, the scores.

    With `workers`, the logs are processed in parallel Ray tasks (`address`: an existing Ray cluster) and merged.
    `out` (and `plot`) are checked before any work; a run in which no evaluated timestamp had a sweep to run the
    stages on fails (`InputError`) instead of writing an empty submission.
    """
    from rich.console import Console

    from scenes.submissions.av2_e2e_forecasting import write_submission

    console = console or Console(stderr=True)
    check_output_path(out, directory=False)
    if plot is not None:
        check_output_path(plot, directory=False, option="--plot")
    cfg = load_e2e_config(config)
    dataset = open_e2e_dataset(data, split, cfg, skip_bad=skip_bad)
    if workers is None:
        result = run_e2e(cfg, dataset)
    else:
        from pipelines.e2e_parallel import run_e2e_parallel

        result = run_e2e_parallel(cfg, data, split, workers=workers, address=address, skip_bad=skip_bad)
    source = data[data.index(":") + 1 :] if data and ":" in data else "synth"
    evaluated, forecast = result.evaluated_timestamps, result.forecast_timestamps
    if forecast == 0:
        raise InputError(
            f"{source}: none of the {evaluated} evaluated (2 Hz) timestamps of {len(result.logs)} log(s) had a LiDAR sweep "
            "to run the stack on; nothing to forecast, no submission written"
        )
    console.print(f"{forecast} of {evaluated} evaluated timestamps had a sweep and were forecast", soft_wrap=True)
    write_submission(out, result.submission)
    agents = sum(len(agents) for log in result.submission.values() for agents in log.values())
    keys = sum(len(log) for log in result.submission.values())
    console.print(f"wrote {out}: {len(result.submission)} log(s), {keys} (log, timestamp) keys, {agents} forecast agents", soft_wrap=True)
    stages = ", ".join(f"{stage} {result.timings.mean_ms(stage):.1f} ms/call" for stage in STAGES if result.timings.calls[stage])
    console.print(f"{result.num_sweeps} sweeps processed; {stages}", soft_wrap=True)
    plot_path = plot or out.with_name(f"{out.stem}_bev.png")
    if plot_result_frame(result, plot_path) is not None:
        console.print(f"wrote {plot_path}", soft_wrap=True)
    if evaluate:
        if not result.ground_truth:
            raise InputError(f"{data or 'synth'}: --evaluate: no annotations to build ground truth from")
        scores = result.evaluate(cfg)
        scores.print(console)
        extra: dict[str, Any] = {}
        if cfg.forecaster == "learned":
            baseline = reforecast(cfg, result, ConstantVelocityForecaster()).evaluate(cfg)
            console.print(baseline_comparison(scores, baseline), soft_wrap=True)
            extra["constant_velocity_same_tracks"] = baseline.as_dict()
        json_path = scores.save_json(out.with_name(f"{out.stem}_scores.json"), extra)
        console.print(f"wrote {json_path}", soft_wrap=True)
    return result
