"""CAB: context-aware multimodal motion forecasting."""
