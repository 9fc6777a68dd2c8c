"""Contracts and provenance logged with every model scaleml trains, and the champion's check.

The incremental training gathers the contract's statistics in its own pass (its tasks profile
the blocks they fit, its last validation the model's predictions): no extra read. Searches and
boosting read their blocks in the searched estimators' own tasks and the placed collections;
for them the contract costs one extra pass over the dataset after training: one task per block
on the cluster, profiles merged on the workers. It is logged as the run's ``contract.json``.
"""

from __future__ import annotations

import logging
from typing import Any

from scaleml.errors import ScalemlError
from scaleml.tracking._runs import RunLogger

log = logging.getLogger("scaleml.tracking")
CONTRACT_FILE = "contract.json"
OUTSIDE_SHARE = 0.001
"""The share of a column's new rows outside the champion's range that is worth a warning."""


def log_contract(
    run: RunLogger, dataset: Any, model: Any, client: Any = None, gathered: Any = None
) -> Any | None:
    """Compute the contract of ``dataset`` (and ``model``'s outputs on its validation blocks)
    and log it to ``run``; return it. ``gathered``: the
    :class:`~scaleml.monitor._pass.TrainingProfiles` the training's pass gathered (then the
    data is not read again). Data that cannot be profiled is logged as a warning and a
    ``scaleml.contract_error`` tag, the training is kept."""
    from scaleml.data import Dataset
    from scaleml.monitor import compute_contract
    from scaleml.monitor._compute import contract_from_training

    if not isinstance(dataset, Dataset):
        return None
    client = client or _current_client()
    try:
        if gathered is not None:
            contract = contract_from_training(gathered, dataset, model, client=client)
        else:
            contract = compute_contract(dataset, model, client=client)
    except ScalemlError as exc:
        log.warning("no contract for run %s: %s", run.run_id, exc)
        run.set_tags({"scaleml.contract_error": str(exc)[:5000]})
        return None
    run.log_dict(contract.to_dict(), CONTRACT_FILE)
    run.set_tags({"scaleml.contract": CONTRACT_FILE})
    return contract


def champion_warnings(new_uri: str, holder_uri: str, settings: Any = None) -> list[str]:
    """How the data behind ``new_uri`` breaks the contract of ``holder_uri`` (empty: it does
    not, or either model has no contract)."""
    from scaleml.monitor import ContractError, contract

    try:
        new, held = contract(new_uri, settings=settings), contract(holder_uri, settings=settings)
    except (ContractError, ScalemlError):
        return []
    out = []
    extra = sorted(set(new.features) - set(held.features))
    missing = sorted(set(held.features) - set(new.features))
    if extra or missing:
        out.append(f"columns differ from the champion's contract: new {extra}, missing {missing}")
    for name, spec in new.features.items():
        bound = held.features.get(name)
        if bound is None or bound.kind != spec.kind:
            continue
        if spec.kind == "numeric":
            below, above = _outside(spec, bound)
            if below + above > OUTSIDE_SHARE:
                out.append(
                    f"column {name!r}: {below + above:.1%} of the rows outside the champion's "
                    f"range [{bound.minimum:g}, {bound.maximum:g}] (new range "
                    f"[{spec.minimum:g}, {spec.maximum:g}])"
                )
        else:
            unknown = sorted(set(map(str, spec.categories)) - set(map(str, bound.categories)))
            if unknown:
                out.append(f"column {name!r}: categories {unknown[:5]} not in the champion's")
    return out


def _outside(spec: Any, bound: Any) -> tuple[float, float]:
    """The shares of ``spec``'s rows below and above ``bound``'s range, from its quantiles."""
    import numpy as np

    probabilities = np.linspace(0.0, 1.0, len(spec.quantiles))
    quantiles = np.asarray(spec.quantiles)
    below = float(np.interp(bound.minimum, quantiles, probabilities, left=0.0, right=1.0))
    above = 1.0 - float(np.interp(bound.maximum, quantiles, probabilities, left=0.0, right=1.0))
    return (below if spec.minimum < bound.minimum else 0.0), (
        above if spec.maximum > bound.maximum else 0.0
    )


def _current_client() -> Any:
    try:
        from distributed import get_client

        return get_client()
    except (ImportError, ValueError):
        return None


def tag_version_provenance(store: Any, name: str, version: str, model_uri: str) -> None:
    """Copy the provenance tags of the run that logged ``model_uri`` (and its id) to the
    model version ``name``/``version``."""
    from mlflow.exceptions import MlflowException

    from scaleml.tracking._artifacts import _run_id
    from scaleml.tracking._provenance import PROVENANCE_TAGS

    try:
        run_id = _run_id(store, model_uri)
        tags = store.get_run(run_id).data.tags
        store.set_model_version_tag(name, version, "scaleml.run_id", run_id)
        for key in PROVENANCE_TAGS:
            if key in tags:
                store.set_model_version_tag(name, version, key, tags[key])
    except (MlflowException, ScalemlError) as exc:
        log.warning("no provenance tags on %s version %s: %s", name, version, exc)
