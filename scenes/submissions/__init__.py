"""Writers of official submission formats (AV2 detection/tracking/E2E forecasting, nuScenes JSON) from records."""
