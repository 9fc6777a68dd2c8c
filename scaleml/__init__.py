"""scaleml: scale-out machine learning on a Dask cluster, tracked in MLflow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("scaleml")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["Client", "__version__"]


def __getattr__(name: str) -> object:
    # The client is imported on first use: ``import scaleml`` stays light on workers.
    if name == "Client":
        from scaleml.client import Client

        return Client
    raise AttributeError(f"module 'scaleml' has no attribute {name!r}")
