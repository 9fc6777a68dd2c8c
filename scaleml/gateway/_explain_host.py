"""Explanations where predictions run (the gateway's local backend, or a worker's
:class:`~scaleml.gateway._host.ModelHost`): the model's explainer from ``scaleml.insight``,
built once per loaded version with the background logged with the model in MLflow."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from scaleml.config import Settings


class ExplainUnavailable(ValueError):
    """This model version cannot be explained by the gateway (the message says how to fix)."""


def build_explainer(model: Any, uri: str, names: list[str], settings: Settings) -> Any:
    """The explainer of the pyfunc ``model`` loaded from ``uri``.

    Raises:
        ExplainUnavailable: the model needs a background and none was logged with it.
    """
    from scaleml.insight._explain_select import ExplainError, make_explainer, needs_background
    from scaleml.predict import model_features

    raw = model.get_raw_model() if hasattr(model, "get_raw_model") else model
    features = model_features(raw) or list(names)
    background = None
    if needs_background(raw):
        from scaleml.tracking._explain import load_background

        background = load_background(uri, settings=settings)
        if background is None:
            raise ExplainUnavailable(
                f"{uri} has no explanation background logged: run 'scaleml explain --model "
                f"{uri} --data ... --target ...' once to log one"
            )
    try:
        return make_explainer(raw, features, background)
    except ExplainError as exc:
        raise ExplainUnavailable(str(exc)) from None


def explain_batch(explainer: Any, names: Sequence[str], arrays: Sequence[np.ndarray]) -> dict:
    """Explain one batch given as column names and arrays."""
    frame = pd.DataFrame(dict(zip(names, arrays, strict=True)), columns=list(names))
    features = explainer_features(explainer, list(names))
    values, base = explainer.contributions(frame[features])
    return {
        "values": values,
        "base": base,
        "features": features,
        "outputs": list(explainer.output_names),
        "output": explainer.output,
    }


def explainer_features(explainer: Any, names: list[str]) -> list[str]:
    """The features the explainer's model takes, in its order."""
    from scaleml.predict import model_features

    return model_features(explainer.model) or names
