"""The ``scaleml`` command line: one module per command (group), registered on import.

Bad input ends with one line on standard error, ``error: ...``, and exit code 2.
"""

import scaleml.cli._boost  # registers `scaleml boost`
import scaleml.cli._compare  # registers `scaleml compare`
import scaleml.cli._evaluate  # registers `scaleml evaluate`
import scaleml.cli._explain  # registers `scaleml explain`
import scaleml.cli._models  # registers `scaleml models`
import scaleml.cli._predict  # registers `scaleml predict`
import scaleml.cli._validate  # noqa: F401  (registers `scaleml validate`)
from scaleml.cli import _data, _demo, _jobs, _search, _serve, _train  # noqa: F401  (registers the commands)
from scaleml.cli._app import EXIT_USAGE, cli, main

__all__ = ["EXIT_USAGE", "cli", "main"]
