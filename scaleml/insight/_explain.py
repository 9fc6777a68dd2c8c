"""``explain``: SHAP values of a model over a dataset, computed block by block on the workers.

The explainer (with its model, and its background when it needs one) is sent once to each
worker; each block is read, explained and summed where it is, and only sums and a bounded
sample of rows come back, so the client's and the workers' memory stay flat whatever the
dataset's size. A background (feature means and a few rows) is drawn from the training blocks
in one pass on the workers when the model needs one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from distributed import Client, as_completed, get_client

from scaleml.data import Dataset
from scaleml.insight._explain_result import Explanation
from scaleml.insight._explain_select import (
    Background,
    ExplainError,
    additivity_tolerance,
    make_explainer,
    needs_background,
)
from scaleml.insight._explain_tasks import background_block, explain_block

Part = Literal["all", "train", "validation"]
DEFAULT_SAMPLE = 1000
DEFAULT_BACKGROUND_ROWS = 100


def explain(
    model: Any,
    dataset: Dataset,
    *,
    sample: int = DEFAULT_SAMPLE,
    part: Part = "all",
    background: Background | pd.DataFrame | None = None,
    background_rows: int = DEFAULT_BACKGROUND_ROWS,
    client: Client | None = None,
    seed: int = 0,
    settings: Any = None,
    on_block_done: Callable[[int, int], object] | None = None,
) -> Explanation:
    """Explain ``model`` on ``dataset`` with SHAP values computed on the cluster.

    XGBoost and LightGBM models are explained by their own exact TreeSHAP
    (``pred_contribs``/``pred_contrib``, on the margin); scikit-learn tree ensembles by
    ``shap.TreeExplainer`` (probabilities for forests, margins for gradient boosting); linear
    models by exact linear SHAP against the training mean (on the decision function); any
    other model by shap's exact explainer (up to 10 features) or permutation explainer over a
    background of ``background_rows`` training rows (on ``predict_proba`` or ``predict``), on
    the sampled rows only. Every explained row is checked for additivity: base value + sum of
    contributions = the model's output in the space explained (``Explanation.output``).

    Args:
        model: a fitted model (scikit-learn API, XGBoost, LightGBM) or a model URI
            (``models:/name@alias``, ``runs:/...``) loaded through ``scaleml.tracking``.
        dataset: the rows to explain; its features must hold the model's.
        sample: rows whose per-row values are kept (for plots), drawn across the blocks.
        part: ``"all"`` rows, or the dataset's ``"train"`` or ``"validation"`` blocks.
        background: the background of linear and model-agnostic explainers (a
            :class:`Background` or a DataFrame of rows); default drawn from the training
            blocks (the one logged with the model, for a URI, when there is one).
        background_rows: rows of a drawn background.
        client: the Dask client; the current one when omitted.
        seed: seeds the sample, the background and permutation explainers.
        settings: scaleml settings, for a model URI.
        on_block_done: called with ``(blocks_done, blocks_total)``.

    Raises:
        ExplainError: bad arguments, a model feature missing from the dataset, or an
            explanation that fails its additivity check.
        DatasetError: bad data (its subclasses name the file, column and row).
    """
    if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
        raise ExplainError(f"sample must be an integer >= 0, got {sample!r}")
    if not isinstance(background_rows, int) or background_rows < 1:
        raise ExplainError(f"background_rows must be an integer >= 1, got {background_rows!r}")
    if isinstance(model, str):
        model, logged = load_model_and_background(model, settings)
        background = background if background is not None else logged
    features = check_features(model, dataset)
    blocks = _blocks(dataset, part)
    client = client or _current_client()
    started = time.perf_counter()
    if isinstance(background, pd.DataFrame):
        background = Background.from_frame(background[features])
    if background is None and needs_background(model):
        background = compute_background(
            client, dataset, features, rows=background_rows, seed=seed, model=model
        )
    explainer = make_explainer(model, features, background, seed=seed)
    sample_only = explainer.kind == "agnostic"
    quotas = _quotas([dataset.blocks[i] for i in blocks], sample)
    scattered = client.scatter(explainer, broadcast=True, hash=False)
    futures = [
        client.submit(
            explain_block,
            scattered,
            dataset.blocks[index],
            features,
            dataset.target,
            quota=quota,
            seed=seed * 1_000_003 + index,
            sample_only=sample_only,
            pure=False,
        )
        for index, quota in zip(blocks, quotas, strict=True)
    ]
    parts = []
    for done, future in enumerate(as_completed(futures), 1):
        parts.append((futures.index(future), future.result()))
        if on_block_done is not None:
            on_block_done(done, len(futures))
    parts = [part for _, part in sorted(parts, key=lambda item: item[0])]
    result = _merge(parts, explainer, features, background, sample)
    result.seconds = time.perf_counter() - started
    result.dataset_rows = sum(_block_rows(dataset.blocks[i]) or 0 for i in blocks) or sum(
        p["n"] for p in parts
    )
    return result


def check_features(model: Any, dataset: Dataset) -> list[str]:
    """The model's features (its own names when it knows them, else the dataset's), all of
    which the dataset must hold."""
    from scaleml.predict import model_features

    known = model_features(model)
    if known is None:
        return list(dataset.features)
    available = set(dataset.source_columns)
    missing = [name for name in known if name not in available]
    if missing:
        raise ExplainError(
            f"the model's feature column {missing[0]!r} is not in the dataset; the model "
            f"takes {known}"
        )
    return known


def compute_background(
    client: Client,
    dataset: Dataset,
    features: list[str],
    *,
    rows: int = DEFAULT_BACKGROUND_ROWS,
    seed: int = 0,
    model: Any = None,
) -> Background:
    """The feature means over the training blocks (every block without any) and ``rows``
    sampled training rows, in one pass on the workers."""
    indices = list(dataset.train_blocks) or list(range(dataset.n_blocks))
    blocks = [dataset.blocks[i] for i in indices]
    quotas = _quotas(blocks, rows)
    allow_nan = type(model).__module__.split(".")[0] in ("xgboost", "lightgbm")
    futures = [
        client.submit(
            background_block,
            block,
            features,
            quota=quota,
            seed=seed * 7_919 + index,
            allow_nan=allow_nan,
            pure=False,
        )
        for block, quota, index in zip(blocks, quotas, indices, strict=True)
    ]
    parts = client.gather(futures)
    total = np.sum([p["sum"] for p in parts], axis=0)
    count = np.sum([p["count"] for p in parts], axis=0)
    sampled = pd.concat([p["rows"] for p in parts], ignore_index=True).head(rows)
    mean = total / np.maximum(count, 1)
    return Background(list(features), mean, sampled, int(sum(p["n"] for p in parts)))


def load_model_and_background(uri: str, settings: Any = None) -> tuple[Any, Background | None]:
    """The model behind ``uri`` (its own flavor's object) and the background logged with it
    (None when there is none)."""
    from scaleml.tracking import load_model

    loaded = load_model(uri, settings=settings)
    raw = loaded.get_raw_model() if hasattr(loaded, "get_raw_model") else loaded
    try:
        from scaleml.tracking._explain import load_background
    except ImportError:  # pragma: no cover - tracking without explanation logging
        return raw, None
    return raw, load_background(uri, settings=settings)


def _blocks(dataset: Dataset, part: Part) -> list[int]:
    if part == "all":
        return list(range(dataset.n_blocks))
    if part == "train":
        chosen = list(dataset.train_blocks)
    elif part == "validation":
        chosen = list(dataset.validation_blocks)
    else:
        raise ExplainError(f"part must be 'all', 'train' or 'validation', got {part!r}")
    if not chosen:
        raise ExplainError(f"the dataset has no {part} blocks")
    return chosen


def _block_rows(block: Any) -> int | None:
    return getattr(block, "n_rows", None)


def _quotas(blocks: list[Any], total: int) -> list[int]:
    """Rows to sample from each block, ``total`` in all (fewer when the blocks hold fewer):
    proportional to the blocks' rows when known, else even (largest remainders first)."""
    if total <= 0 or not blocks:
        return [0] * len(blocks)
    rows = [_block_rows(b) for b in blocks]
    if not all(r is not None for r in rows) or sum(rows) == 0:  # type: ignore[arg-type]
        rows = [1] * len(blocks)
    whole = sum(rows)  # type: ignore[arg-type]
    shares = [total * r / whole for r in rows]  # type: ignore[operator]
    quotas = [math.floor(s) for s in shares]
    by_remainder = sorted(range(len(blocks)), key=lambda i: quotas[i] - shares[i])
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    return quotas


def _merge(
    parts: list[dict[str, Any]],
    explainer: Any,
    features: list[str],
    background: Background | None,
    sample: int,
) -> Explanation:
    done = [p for p in parts if p["n"] > 0]
    if not done:
        raise ExplainError("the dataset has no rows to explain")
    n = sum(p["n"] for p in done)
    k = len(explainer.output_names)
    tolerance = additivity_tolerance(explainer.kind)
    max_error = max(p["max_error"] for p in done)
    scale = max(1.0, max(p["max_output"] for p in done))
    if max_error > tolerance * scale:
        raise ExplainError(
            f"additivity check failed: base value + sum of contributions differs from the "
            f"model's {explainer.output} by up to {max_error:.3g} (allowed {tolerance * scale:.3g})"
        )
    targets = [p["target"] for p in done]
    predictions = [p["prediction"] for p in done]
    values = np.concatenate([p["values"] for p in done])[:sample]
    return Explanation(
        features=list(features),
        output_names=list(explainer.output_names),
        output=explainer.output,
        explainer=explainer.kind,
        n_rows=n,
        base_values=np.asarray(done[0]["base"], dtype=np.float64).reshape(k),
        mean_abs=np.sum([p["sum_abs"] for p in done], axis=0) / n,
        mean=np.sum([p["sum"] for p in done], axis=0) / n,
        sample_values=values,
        sample_data=pd.concat([p["data"] for p in done], ignore_index=True).head(sample),
        sample_output=np.concatenate([p["output"] for p in done])[:sample],
        sample_target=None if any(t is None for t in targets) else np.concatenate(targets)[:sample],
        sample_prediction=(
            None if any(p is None for p in predictions) else np.concatenate(predictions)[:sample]
        ),
        additivity_max_error=max_error,
        additivity_tolerance=tolerance,
        seconds=0.0,
        background=background,
    )


def _current_client() -> Client:
    try:
        return get_client()
    except ValueError:
        raise ExplainError(
            "no Dask client: pass client=, or open one with scaleml.cluster.connect()"
        ) from None
