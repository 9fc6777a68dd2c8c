"""The result of an evaluation: metrics, curves, fairness, history; JSON and a report."""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class EvaluationResult:
    """One model evaluated on some rows of a dataset.

    Attributes:
        name: the model's name in reports and leaderboards.
        kind: ``"classifier"`` or ``"regressor"``.
        metrics: metric name → value (scikit-learn's names; see :func:`evaluate`).
        per_class: class label → precision, recall, F1, Jaccard, support (classifiers).
        curves: the curves (``roc``, ``precision_recall``, ``calibration``, ``lift_gain``,
            ``thresholds``, ``confusion_matrix`` ...; ``residuals``, ``predicted_vs_actual``).
        fairness: by-group metrics, differences, ratios (with ``sensitive_features``), or None.
        history: learning curves (``{"epochs": {...}, "trials": {...}}``) when known.
        dataset: the dataset's source, fingerprint, rows and blocks evaluated.
        model_uri: the MLflow URI the model came from, when it came from one.
        seconds: wall time of the pass over the data.
    """

    name: str
    kind: str
    metrics: dict[str, float]
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    fairness: dict[str, Any] | None = None
    history: dict[str, Any] = field(default_factory=dict)
    dataset: dict[str, Any] = field(default_factory=dict)
    model_uri: str | None = None
    seconds: float = 0.0
    rows: int = 0

    @property
    def confusion_matrix(self) -> np.ndarray:
        """Counts, true labels in rows and predictions in columns (classifiers)."""
        return np.asarray(self.curves.get("confusion_matrix", []), dtype=np.int64)

    @property
    def rows_per_second(self) -> float:
        """Rows evaluated per second of wall time."""
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Everything as JSON-able data (NaN and infinity become null)."""
        return _finite(asdict(self))

    def to_json(self, *, curves: bool = True) -> str:
        """The result as JSON text; without ``curves`` only the figures (``metrics.json``)."""
        data = self.to_dict()
        if not curves:
            data.pop("curves")
        return json.dumps(data, indent=2)

    def report(self, path: str | Path, *, sections: list[Any] | None = None) -> Path:
        """Write the self-contained HTML report to ``path`` (see :func:`write_report`)."""
        from scaleml.insight._report import write_report

        return write_report(self, path, sections=sections)


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _finite(value.item())
    return value
