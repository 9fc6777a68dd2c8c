"""Typed errors of the insight stage: each names what to fix."""

from __future__ import annotations

from scaleml.errors import ScalemlError


class InsightError(ScalemlError, ValueError):
    """An evaluation or comparison was asked for with arguments that cannot work."""


class UnknownMetricError(InsightError):
    """A metric name is not one the model's kind has (the message lists those it has)."""


class SensitiveFeatureError(InsightError):
    """A sensitive feature is not a column of the dataset."""


class SignatureMismatchError(InsightError):
    """The model's inputs do not match the dataset's features."""
