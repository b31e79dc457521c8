"""Per-epoch metrics of a training run: `metrics.json` and the loss-curve PNG beside the checkpoints."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from scenes.errors import InputError
from scenes.io import atomic_write, atomic_write_text

METRICS_FILENAME: Final = "metrics.json"
CURVE_FILENAME: Final = "loss_curve.png"


def read_history(out_dir: Path) -> list[dict[str, float]]:
    """The per-epoch metrics written by a run in `out_dir` ([] when there are none yet)."""
    path = Path(out_dir) / METRICS_FILENAME
    try:
        history = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, json.JSONDecodeError) as error:
        raise InputError(f"{path}: cannot read the metrics history ({error})") from None
    if not isinstance(history, list) or not all(isinstance(row, dict) for row in history):
        raise InputError(f"{path}: the metrics history must be a list of mappings")
    return history


def write_history(out_dir: Path, history: Sequence[dict[str, float]], title: str) -> None:
    """`metrics.json` and one panel per metric against the epoch in `loss_curve.png`, both written atomically."""
    atomic_write_text(out_dir / METRICS_FILENAME, json.dumps(list(history), indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({name for row in history for name in row if name != "epoch"})
    if not names:
        return
    figure, axes = plt.subplots(len(names), 1, figsize=(6, 1.8 * len(names) + 0.6), squeeze=False, sharex=True)
    for axis, name in zip(axes[:, 0], names, strict=True):
        rows = [row for row in history if name in row]
        axis.plot([row.get("epoch", index) for index, row in enumerate(rows)], [row[name] for row in rows], marker="o")
        axis.set_ylabel(name, fontsize=8)
        axis.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("epoch")
    figure.tight_layout()
    with atomic_write(out_dir / CURVE_FILENAME) as temporary:
        figure.savefig(temporary, format="png", dpi=90)
    plt.close(figure)
