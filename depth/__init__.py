"""LiDARTouch: self-supervised monocular depth with few-beam LiDAR."""
