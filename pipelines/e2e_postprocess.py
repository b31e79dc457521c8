"""Post-processing of forecasts from the winning AV2 E2E forecasting entry (Valeo4Cast): the static mode.

Objects of static categories (bollards, cones, signs...) do not move, but a learned forecaster fed noisy tracks gives
them small drifts that cost false positives in the "linear" profile. With the static mode on, every mode of such an
agent becomes its current position held over the horizon (the mode scores are kept).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

import numpy as np

from scenes.categories import CATEGORY_ID, STATIC_CATEGORIES
from scenes.records import Forecasts

__all__ = ["apply_static_mode"]


def apply_static_mode(forecasts: Forecasts, static_categories: Collection[str] = STATIC_CATEGORIES) -> Forecasts:
    """`forecasts` with the trajectories of static-category agents replaced by their current position."""
    ids = np.array([CATEGORY_ID[name] for name in static_categories], dtype=np.int64)
    static = np.isin(forecasts.category, ids)
    if not static.any():
        return forecasts
    trajectories = forecasts.trajectories_m.copy()
    trajectories[static] = forecasts.current_xy_m[static, None, None, :]
    return replace(forecasts, trajectories_m=trajectories)
