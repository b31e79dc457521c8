"""CAB: context-aware multimodal motion forecasting (Ben-Younes et al., arXiv 2109.08048)."""

from forecasting.baselines import ConstantVelocityForecaster
from forecasting.forecaster import Forecaster

__all__ = ["ConstantVelocityForecaster", "Forecaster"]
