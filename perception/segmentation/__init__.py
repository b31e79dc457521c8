"""MTAF multi-target unsupervised domain adaptation for semantic segmentation."""
