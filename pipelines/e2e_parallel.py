"""End-to-end forecasting with the logs processed in parallel Ray tasks, merged into one submission.

Each task opens the dataset itself (only the `--data` spec, the split and the config travel), processes one log with
`pipelines.e2e_forecast.run_e2e`, and returns that log's result; `merge_results` joins them in the dataset's log order,
so the merged submission, ground truth and regions of interest equal those of the sequential run.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from pipelines.e2e_forecast import E2EForecastConfig, E2EResult, StageTimings, open_e2e_dataset, run_e2e
from scenes.parallel import map_logs
from scenes.submissions.av2_e2e_forecasting import ForecastSequences, Sequences


def run_one_log(cfg: E2EForecastConfig, data: str | None, split: str | None, skip_bad: bool, index: int) -> E2EResult:
    """The end-to-end result of the `index`-th log of the dataset (opened here, on the worker)."""
    dataset = open_e2e_dataset(data, split, cfg, skip_bad=skip_bad)
    return run_e2e(cfg, dataset, progress=False, log_ids=[dataset.logs()[index]])


def merge_results(cfg: E2EForecastConfig, results: Sequence[E2EResult]) -> E2EResult:
    """One result from per-log results (in log order): submissions, ground truth, ROIs, logs and timings joined."""
    submission: ForecastSequences = {}
    ground_truth: Sequences = {}
    rois: dict[str, Any] = {}
    timings = StageTimings()
    for result in results:
        duplicated = submission.keys() & result.submission.keys()
        if duplicated:
            raise ValueError(f"merge_results: log {sorted(duplicated)[0]} was processed twice")
        submission.update(result.submission)
        ground_truth.update(result.ground_truth)
        rois.update(result.rois or {})
        for stage, seconds in result.timings.seconds.items():
            timings.seconds[stage] += seconds
            timings.calls[stage] += result.timings.calls[stage]
    use_rois = cfg.roi_filter and ground_truth and all(log_id in rois for log_id in ground_truth)
    logs = tuple(log for result in results for log in result.logs)
    sweeps = sum(result.num_sweeps for result in results)
    return E2EResult(submission, ground_truth, rois if use_rois else None, logs, timings, sweeps)


def run_e2e_parallel(
    cfg: E2EForecastConfig, data: str | None, split: str | None, *, workers: int, address: str | None = None, skip_bad: bool = False
) -> E2EResult:
    """`run_e2e` over every log of `--data`, as at most `workers` parallel Ray tasks (one per log)."""
    count = len(open_e2e_dataset(data, split, cfg, skip_bad=skip_bad).logs())
    task = functools.partial(run_one_log, cfg, data, split, skip_bad)
    return merge_results(cfg, map_logs(task, list(range(count)), workers, address, description="end-to-end logs"))
