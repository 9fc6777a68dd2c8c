"""scaleml: scale-out machine learning on a Dask cluster, tracked in MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scaleml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
