"""Insight stage: evaluation out of core (metrics, curves, confusion matrices), comparison and
leaderboards, fairness by group, SHAP explanations, and self-contained Bokeh reports, computed
block by block on the workers and merged as sufficient statistics (see :func:`evaluate`,
:func:`compare` and :func:`explain`).

The public names are imported on first use, so that worker processes, which only run the
block tasks, do not import the client side (scikit-learn's estimator checks, Bokeh, MLflow).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from scaleml.insight._errors import (
    InsightError,
    SensitiveFeatureError,
    SignatureMismatchError,
    UnknownMetricError,
)

if TYPE_CHECKING:
    from scaleml.insight._candidates import CandidateSpec, CandidateSpecError
    from scaleml.insight._compare import Comparison, compare
    from scaleml.insight._evaluate import evaluate, evaluate_fitted
    from scaleml.insight._explain import explain
    from scaleml.insight._explain_result import Explanation
    from scaleml.insight._explain_select import Background, ExplainError
    from scaleml.insight._logged import compare_logged, evaluate_logged
    from scaleml.insight._report import write_report
    from scaleml.insight._result import EvaluationResult

_LAZY = {
    "CandidateSpec": "scaleml.insight._candidates",
    "CandidateSpecError": "scaleml.insight._candidates",
    "compare_logged": "scaleml.insight._logged",
    "evaluate_logged": "scaleml.insight._logged",
    "Comparison": "scaleml.insight._compare",
    "compare": "scaleml.insight._compare",
    "EvaluationResult": "scaleml.insight._result",
    "evaluate": "scaleml.insight._evaluate",
    "evaluate_fitted": "scaleml.insight._evaluate",
    "write_report": "scaleml.insight._report",
    "explain": "scaleml.insight._explain",
    "Explanation": "scaleml.insight._explain_result",
    "Background": "scaleml.insight._explain_select",
    "ExplainError": "scaleml.insight._explain_select",
}

__all__ = [
    "Background",
    "CandidateSpec",
    "CandidateSpecError",
    "Comparison",
    "EvaluationResult",
    "ExplainError",
    "Explanation",
    "InsightError",
    "SensitiveFeatureError",
    "SignatureMismatchError",
    "UnknownMetricError",
    "compare",
    "compare_logged",
    "evaluate",
    "evaluate_fitted",
    "evaluate_logged",
    "explain",
    "write_report",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'scaleml.insight' has no attribute {name!r}")
    return getattr(import_module(module), name)
