"""Pipelines wiring stages together, the drivestack CLI and distributed execution."""
