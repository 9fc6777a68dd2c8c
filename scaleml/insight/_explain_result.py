"""``Explanation``: what ``explain`` returns — global importances over every explained row,
and the per-row SHAP values of a bounded sample (for plots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from scaleml.insight._explain_select import Background

OUTPUT_MEANINGS = {
    "margin": "the model's raw margin (log-odds for binary, per-class scores for multiclass "
    "XGBoost/LightGBM, the decision function for linear classifiers)",
    "probability": "the predicted probability of each class",
    "prediction": "the predicted value",
}


@dataclass
class Explanation:
    """SHAP explanations of a model over a dataset.

    Shapes: ``k`` outputs (one for regressors and binary margins, one per class otherwise),
    ``f`` features, ``m`` sampled rows. ``base_values + sample_values.sum(axis=2)`` equals
    ``sample_output`` (the model's output in the ``output`` space) on every row, up to
    ``additivity_max_error``.
    """

    features: list[str]
    output_names: list[str]
    output: str
    """The space explained: ``margin``, ``probability`` or ``prediction`` (OUTPUT_MEANINGS)."""
    explainer: str
    """``xgboost`` / ``lightgbm`` (native TreeSHAP), ``tree`` (shap.TreeExplainer),
    ``linear`` (exact linear SHAP) or ``agnostic`` (shap's exact/permutation explainer)."""
    n_rows: int
    """Rows the global statistics are over (every row, or the sample for ``agnostic``)."""
    base_values: np.ndarray
    mean_abs: np.ndarray
    """Mean |SHAP value| per output and feature, ``(k, f)``."""
    mean: np.ndarray
    """Mean SHAP value per output and feature, ``(k, f)``."""
    sample_values: np.ndarray
    sample_data: pd.DataFrame
    sample_output: np.ndarray
    sample_target: np.ndarray | None
    sample_prediction: np.ndarray | None
    additivity_max_error: float
    additivity_tolerance: float
    seconds: float
    background: Background | None = None
    dataset_rows: int = 0
    """Rows of the explained part of the dataset."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        """Rows explained per second of wall time."""
        return self.n_rows / self.seconds if self.seconds > 0 else 0.0

    @property
    def values(self) -> np.ndarray:
        """The sample's SHAP values in shap's layout: ``(m, f)`` for one output, else
        ``(m, f, k)``."""
        if len(self.output_names) == 1:
            return self.sample_values[:, 0, :]
        return np.transpose(self.sample_values, (0, 2, 1))

    @property
    def global_importance(self) -> np.ndarray:
        """Mean |SHAP value| per feature, averaged over the outputs, ``(f,)``."""
        return self.mean_abs.mean(axis=0)

    def importances(self) -> pd.DataFrame:
        """One row per feature, most important first: ``mean_abs_shap`` (averaged over the
        outputs), and for several outputs ``mean_abs_shap[<output>]`` per output."""
        table = pd.DataFrame({"feature": self.features, "mean_abs_shap": self.global_importance})
        if len(self.output_names) > 1:
            for position, name in enumerate(self.output_names):
                table[f"mean_abs_shap[{name}]"] = self.mean_abs[position]
        table = table.sort_values("mean_abs_shap", ascending=False, kind="stable")
        return table.reset_index(drop=True)

    def top_features(self, n: int = 5) -> list[str]:
        """The ``n`` features of largest mean |SHAP value|."""
        return list(self.importances()["feature"][:n])

    def output_index(self, output: str | int | None = None) -> int:
        """The position of an output (a name or index); default the last one (the positive
        class of a binary classifier)."""
        if output is None:
            return len(self.output_names) - 1
        if isinstance(output, int):
            return output
        return self.output_names.index(str(output))

    def to_shap(self, output: str | int | None = None) -> Any:
        """The sample as a ``shap.Explanation`` of one output, for shap's own plots."""
        import shap

        index = self.output_index(output)
        return shap.Explanation(
            values=self.sample_values[:, index, :],
            base_values=np.full(len(self.sample_values), self.base_values[index]),
            data=self.sample_data.to_numpy(dtype=np.float64),
            feature_names=list(self.features),
        )

    def summary(self) -> dict[str, Any]:
        """A JSON-able summary: explainer, output space, rows, base values, importances."""
        return {
            "explainer": self.explainer,
            "output": self.output,
            "output_meaning": OUTPUT_MEANINGS.get(self.output, self.output),
            "outputs": list(self.output_names),
            "features": list(self.features),
            "n_rows": int(self.n_rows),
            "dataset_rows": int(self.dataset_rows),
            "sample_rows": len(self.sample_values),
            "base_values": [float(v) for v in self.base_values],
            "mean_abs_shap": {
                name: {f: float(v) for f, v in zip(self.features, row, strict=True)}
                for name, row in zip(self.output_names, self.mean_abs, strict=True)
            },
            "additivity_max_error": float(self.additivity_max_error),
            "additivity_tolerance": float(self.additivity_tolerance),
            "seconds": float(self.seconds),
        }
