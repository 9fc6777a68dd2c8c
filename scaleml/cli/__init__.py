"""The ``scaleml`` command line: one module per command (group), registered on import.

Bad input ends with one line on standard error, ``error: ...``, and exit code 2.
"""

from scaleml.cli import _data, _demo, _jobs, _search, _serve, _train  # noqa: F401  (registers the commands)
from scaleml.cli._app import EXIT_USAGE, cli, main

__all__ = ["EXIT_USAGE", "cli", "main"]
