"""Semantic Palette: class-proportion-conditioned scene generation."""
