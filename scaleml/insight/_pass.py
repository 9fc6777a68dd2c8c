"""One pass over a dataset's blocks on the cluster: every block read once by one task, every
model predicted on it, statistics merged on the client as tasks finish."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from distributed import Client, as_completed, get_client
from sklearn.base import is_classifier, is_regressor

from scaleml.insight._errors import InsightError, SignatureMismatchError
from scaleml.insight._stats import DEFAULT_BINS
from scaleml.insight._tasks import ModelPlan, evaluate_block


def plan_for(model: Any, features: list[str], bins: int = DEFAULT_BINS) -> ModelPlan:
    """How tasks should call ``model``; checks it can predict the dataset's ``features``.

    Raises:
        InsightError: the model has no ``predict`` or is neither classifier nor regressor.
        SignatureMismatchError: its feature names or count differ from ``features``.
    """
    if not hasattr(model, "predict"):
        raise InsightError(f"the model ({type(model).__name__}) has no predict method")
    check_features(model, features)
    names = _feature_names(model)
    library = type(model).__module__.split(".")[0]
    common = {
        "frame_input": names is not None,
        "missing_features": library in ("xgboost", "lightgbm"),
    }
    if is_classifier(model) or hasattr(model, "classes_"):
        classes = getattr(model, "classes_", None)
        if classes is None:
            raise InsightError(f"the classifier ({type(model).__name__}) is not fitted")
        return ModelPlan(
            "classifier",
            tuple(np.asarray(classes).tolist()),
            has_proba=_has_proba(model),
            bins=bins,
            **common,
        )
    if is_regressor(model):
        return ModelPlan("regressor", **common)
    raise InsightError(
        f"the model ({type(model).__name__}) is neither a classifier nor a regressor; "
        "only those can be evaluated"
    )


def check_features(model: Any, features: list[str], expected: list[str] | None = None) -> None:
    """Raise :class:`SignatureMismatchError` if the model's inputs (its fitted feature names,
    ``expected`` from its MLflow signature, or its feature count) differ from ``features``."""
    names = expected or _feature_names(model)
    if names is not None and list(names) != list(features):
        missing = [n for n in names if n not in set(features)]
        extra = [n for n in features if n not in set(names)]
        detail = f"missing {missing[:10]}" if missing else f"unexpected {extra[:10]}"
        if not missing and not extra:
            detail = "same columns in another order"
        raise SignatureMismatchError(
            f"the model's inputs do not match the dataset's features ({detail}); the model "
            f"takes {len(names)} column(s), the dataset has {len(features)}: pass --features"
        )
    count = getattr(model, "n_features_in_", None)
    if count is not None and int(count) != len(features):
        raise SignatureMismatchError(
            f"the model takes {int(count)} feature(s) and the dataset has {len(features)}: "
            "pass the features the model was trained on"
        )


def run_pass(
    models: list[Any],
    plans: list[ModelPlan],
    blocks: list[Any],
    features: list[str],
    target: str,
    sensitive: list[str],
    *,
    client: Client | None = None,
    on_block_done: Callable[[int, int], object] | None = None,
) -> list[dict[Any, Any]]:
    """Evaluate every model on every block (one task per block); return each model's merged
    ``{ALL: stats, group: stats}``. Models go to each worker once (broadcast)."""
    client = client or _current_client()
    scattered = [client.scatter(model, broadcast=True, hash=False) for model in models]
    futures = [
        client.submit(
            evaluate_block,
            scattered,
            plans,
            block,
            features,
            target,
            sensitive,
            seed,
            pure=False,
            key=f"insight-evaluate-block-{_token()}-{seed}",
        )
        for seed, block in enumerate(blocks)
    ]
    merged: list[dict[Any, Any]] = [{} for _ in models]
    try:
        for done, future in enumerate(as_completed(futures), 1):
            for total, part in zip(merged, future.result(), strict=True):
                for key, stats in part.items():
                    if key in total:
                        total[key].add(stats)
                    else:
                        total[key] = stats
            future.release()
            if on_block_done is not None:
                on_block_done(done, len(futures))
    finally:
        for future in futures:
            future.release()
    return merged


def _token() -> str:
    import uuid

    return uuid.uuid4().hex[:10]


def _feature_names(model: Any) -> list[str] | None:
    for attribute in ("feature_names_in_", "feature_name_"):
        names = getattr(model, attribute, None)
        if names is not None:
            return [str(name) for name in names]
    return None


def _has_proba(model: Any) -> bool:
    try:
        return hasattr(model, "predict_proba")
    except Exception:
        return False


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise InsightError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None
