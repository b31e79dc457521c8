"""`python -m benchmarks [NAME ...]`: run the speed benchmarks, print one table, write benchmarks/results/*.json."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from benchmarks.harness import run_area
from scenes.io import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _discover() -> list[str]:
    return sorted(path.stem.removeprefix("bench_") for path in Path(__file__).resolve().parent.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("areas", nargs="*", help=f"benchmark areas to run (default: all of {_discover()})")
    args = parser.parse_args(argv)
    areas = args.areas or _discover()
    unknown = sorted(set(areas) - set(_discover()))
    if unknown:
        parser.error(f"unknown benchmark areas {unknown}; available: {_discover()}")
    table = Table(title="drivestack benchmarks")
    for column in ("area", "benchmark", "median", "throughput", "peak RSS", "target"):
        table.add_column(column, justify="left" if column in ("area", "benchmark", "target") else "right")
    failed = []
    context = multiprocessing.get_context("spawn")
    for area in areas:
        queue = context.Queue()
        process = context.Process(target=run_area, args=(area, queue))
        process.start()
        process.join()
        if process.exitcode != 0 or queue.empty():
            failed.append(area)
            continue
        results = queue.get()
        atomic_write_text(RESULTS_DIR / f"{area}.json", json.dumps(results, indent=2))
        for result in results:
            throughput = "" if result["throughput"] is None else f"{result['throughput']:.4g} {result['unit']}"
            table.add_row(
                area,
                result["name"],
                f"{result['median_s'] * 1e3:.3f} ms",
                throughput,
                f"{result['peak_rss_mb']:.0f} MiB",
                result["target"],
            )
    Console(width=160).print(table)
    if failed:
        print(f"benchmark areas failed: {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
