"""The shared language of drivestack: records, geometry, categories, adapters and the synthetic city."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("drivestack")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"
