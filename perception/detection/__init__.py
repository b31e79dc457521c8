"""CenterPoint-style LiDAR 3D detection."""
