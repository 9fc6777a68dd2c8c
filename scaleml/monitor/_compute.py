"""Compute a contract out of core: one task per block, profiles merged pairwise on the workers.

Training blocks give the features' and the target's profiles; validation blocks (all blocks
when there are none) give the model's output distribution. One pass over the blocks: only the
merged profiles, a few kilobytes per column, reach the client. The incremental training needs
no such pass: its own tasks profile the blocks they read (:mod:`scaleml.monitor._pass`) and
:func:`contract_from_training` turns what they gathered into the contract.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from scaleml.monitor import _sketch
from scaleml.monitor._contract import Contract, column_from_profile
from scaleml.monitor._errors import ContractError
from scaleml.monitor._pass import OUTPUT as _OUTPUT
from scaleml.monitor._pass import TrainingProfiles
from scaleml.monitor._profile import Profile, merge_frames, profile_frame, profile_values


def compute_contract(
    dataset: Any,
    model: Any = None,
    *,
    client: Any = None,
    blocks: list[int] | None = None,
) -> Contract:
    """The contract of ``dataset`` (a :class:`scaleml.data.Dataset`), with the output
    distribution of the fitted ``model`` on its validation blocks when one is given.

    With a Dask ``client`` each block is read and profiled by a task on the cluster; else here,
    one block at a time. ``blocks`` overrides which blocks are profiled (default: the
    training blocks, or every block when the dataset has none).
    """
    merged, parts = profile_blocks(dataset, model, client=client, blocks=blocks)
    features, target = list(dataset.features), dataset.target
    return contract_from_profiles(merged, features, target, dataset_info(dataset), parts)


def profile_blocks(
    dataset: Any,
    model: Any = None,
    *,
    client: Any = None,
    blocks: list[int] | None = None,
) -> tuple[dict[str, Profile], int]:
    """The merged profiles :func:`compute_contract` reads (``blocks`` profiled, the
    validation blocks scored by ``model``), and how many block profiles were merged."""
    features, target = list(dataset.features), dataset.target
    chosen = blocks if blocks is not None else (list(dataset.train_blocks) or None)
    indices = chosen if chosen is not None else list(range(dataset.n_blocks))
    scored = list(dataset.validation_blocks) or list(range(dataset.n_blocks))
    if model is None:
        scored = []
    jobs = sorted(set(indices) | set(scored))
    args = [
        (dataset.blocks[i], features, target, i in indices, model if i in scored else None)
        for i in jobs
    ]
    if not args:
        raise ContractError("the dataset has no blocks to profile")
    if client is None:
        return merge_frames(*(_profile_block(*a) for a in args)), len(jobs)
    model_future = client.scatter(model, broadcast=False) if model is not None else None
    futures = [
        client.submit(
            _profile_block, b, features, target, profiled,
            model_future if predicted is not None else None, pure=False,
        )
        for b, _, _, profiled, predicted in args
    ]  # fmt: skip
    while len(futures) > 1:
        futures = [
            client.submit(merge_frames, *futures[i : i + 2], pure=False)
            if i + 1 < len(futures)
            else futures[i]
            for i in range(0, len(futures), 2)
        ]
    return futures[0].result(), len(jobs)


def contract_from_training(
    gathered: TrainingProfiles,
    dataset: Any,
    model: Any = None,
    *,
    client: Any = None,
) -> Contract:
    """The contract of ``dataset`` from the profiles its training gathered. When the training
    did not score the fitted ``model`` on validation blocks, the output distribution costs one
    pass over the validation blocks (every block when there are none)."""
    profiles = dict(gathered.data)
    parts = gathered.data_parts
    if gathered.output is not None:
        profiles[_OUTPUT] = gathered.output
        parts = max(parts, gathered.output_parts)
    elif model is not None:
        outputs, scored = profile_blocks(dataset, model, client=client, blocks=[])
        profiles[_OUTPUT] = outputs[_OUTPUT]
        parts = max(parts, scored)
    features, target = list(dataset.features), dataset.target
    return contract_from_profiles(profiles, features, target, dataset_info(dataset), parts)


def contract_from_frame(
    frame: pd.DataFrame,
    features: list[str],
    target: str | None = None,
    predictions: Any = None,
) -> Contract:
    """The contract of an in-memory ``frame`` (and of ``predictions`` as the output)."""
    profiles = profile_frame(frame, [*features, target] if target else list(features))
    if predictions is not None:
        profiles[_OUTPUT] = profile_values(pd.Series(np.asarray(predictions)))
    info = {"source": "dataframe", "n_rows": len(frame), "features": features, "target": target}
    return contract_from_profiles(profiles, features, target, info, 1)


def contract_from_profiles(
    profiles: dict[str, Profile],
    features: list[str],
    target: str | None,
    dataset: dict[str, Any],
    n_parts: int,
) -> Contract:
    """The contract of merged profiles (``n_parts`` block profiles were merged)."""
    columns = {name: column_from_profile(name, profiles[name]) for name in features}
    target_contract = (
        column_from_profile(target, profiles[target]) if target and target in profiles else None
    )
    output = profiles.get(_OUTPUT)
    levels = _sketch.merge_levels(n_parts)
    return Contract(
        columns,
        target_contract,
        column_from_profile("prediction", output) if output is not None else None,
        dataset,
        _sketch.rank_error(levels),
    )


def dataset_info(dataset: Any) -> dict[str, Any]:
    """The dataset's identity, as recorded in a contract."""
    return {
        "source": str(dataset.source),
        "fingerprint": dataset.fingerprint,
        "n_rows": dataset.n_rows,
        "features": list(dataset.features),
        "target": dataset.target,
    }


def _profile_block(
    block: Any, features: list[str], target: str | None, profiled: bool, model: Any
) -> dict[str, Profile]:
    columns = [*features, target] if target else list(features)
    frame = block.read(columns)
    out = profile_frame(frame, columns) if profiled else {}
    if model is not None:
        out[_OUTPUT] = profile_values(pd.Series(_predict(model, frame[features])))
    return out


def _predict(model: Any, frame: pd.DataFrame) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "X has feature names" and the like
        output = np.asarray(model.predict(frame))
    return output.ravel() if output.ndim > 1 and output.shape[1] == 1 else output
