"""Typed exceptions shared by every stage.

Every error a user can cause by bad input derives from :class:`ScalemlError`, so the CLI can
turn it into one line and exit code 2, and the HTTP services into a 4xx naming the field.
"""


class ScalemlError(Exception):
    """Base class of errors caused by bad input or configuration."""


class ConfigError(ScalemlError, ValueError):
    """A setting has an invalid value."""


class DatasetError(ScalemlError, ValueError):
    """A dataset cannot be read as asked: missing path, missing column, wrong dtype."""


class EstimatorSpecError(ScalemlError, ValueError):
    """An estimator spec names a class outside the allow-list or an unknown parameter."""


class TrainingError(ScalemlError, ValueError):
    """Training was asked for with arguments that cannot work (e.g. no training blocks)."""


class TrackingError(ScalemlError, RuntimeError):
    """MLflow refused an operation (unknown run, model or alias)."""


class SearchSpaceError(ScalemlError, ValueError):
    """A search space, search method or search option is invalid (the message names it)."""


_TASK_NOTE = "scaleml: raised by a model's own partial_fit or score in a search task"


def mark_model_error(exc: BaseException) -> None:
    """Note on ``exc`` that a search's model raised it (its candidate's values are the cause,
    not scaleml), so the CLI can report it as bad input; the exception stays what it was."""
    if _TASK_NOTE not in getattr(exc, "__notes__", ()):
        exc.add_note(_TASK_NOTE)


def is_model_error(exc: BaseException) -> bool:
    """Whether :func:`mark_model_error` marked ``exc``."""
    return _TASK_NOTE in getattr(exc, "__notes__", ())
