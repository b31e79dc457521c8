"""AB3DMOT-style multi-object tracking."""
