"""LiDAR and camera perception: detection, tracking, segmentation."""
