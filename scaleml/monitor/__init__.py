"""Monitor stage: data contracts from the training data, drift scores, provenance, model cards.

``contract(model_uri)`` reads the contract logged with a model (``contract.json``, versioned);
``compute_contract`` computes one out of core; ``DriftWindow`` keeps bounded running
histograms of live data and scores them against a contract.
"""

from __future__ import annotations

from typing import Any

from scaleml.monitor._contract import FORMAT_VERSION, ColumnContract, Contract
from scaleml.monitor._drift import (
    MODERATE,
    NO_CHANGE,
    SIGNIFICANT,
    DriftWindow,
    Thresholds,
    jensen_shannon,
    psi,
)
from scaleml.monitor._errors import ContractError, ContractViolation

CONTRACT_FILE = "contract.json"

__all__ = [
    "CONTRACT_FILE",
    "FORMAT_VERSION",
    "MODERATE",
    "NO_CHANGE",
    "SIGNIFICANT",
    "ColumnContract",
    "Contract",
    "ContractError",
    "ContractViolation",
    "DriftWindow",
    "Thresholds",
    "compute_contract",
    "contract",
    "contract_from_frame",
    "jensen_shannon",
    "psi",
    "validate",
]


def compute_contract(dataset: Any, model: Any = None, **options: Any) -> Contract:
    """See :func:`scaleml.monitor._compute.compute_contract`."""
    from scaleml.monitor._compute import compute_contract as compute

    return compute(dataset, model, **options)


def contract_from_frame(frame: Any, features: list[str], **options: Any) -> Contract:
    """See :func:`scaleml.monitor._compute.contract_from_frame`."""
    from scaleml.monitor._compute import contract_from_frame as from_frame

    return from_frame(frame, features, **options)


def contract(model_uri: str, *, settings: Any = None) -> Contract:
    """The contract logged with the model at ``model_uri`` (``models:/name/3``,
    ``models:/name@champion``, ``models:/m-...``, ``runs:/<run>/model``).

    Raises :class:`ContractError` when the model has no contract or it comes from a newer
    scaleml.
    """
    from scaleml.tracking._artifacts import model_run_id, read_json_artifact

    run_id = model_run_id(model_uri, settings=settings)
    document = read_json_artifact(run_id, CONTRACT_FILE, settings=settings)
    if document is None:
        raise ContractError(
            f"the model {model_uri} has no {CONTRACT_FILE} (logged before contracts existed, "
            "or not by scaleml): train it again to get one"
        )
    return Contract.from_dict(document)


def validate(
    model_uri: str,
    data: Any,
    *,
    client: Any = None,
    report: Any = None,
    settings: Any = None,
    on_block_done: Any = None,
) -> Any:
    """Check the dataset ``data`` (a path or URL, or a :class:`scaleml.data.Dataset`) against
    the contract of the model at ``model_uri``, on the cluster when a ``client`` is given;
    return the :class:`~scaleml.monitor._validate.Validation` and write a Bokeh page to
    ``report`` when given. Thresholds come from ``settings``."""
    from scaleml.config import get_settings
    from scaleml.monitor._validate import validate_dataset

    settings = settings or get_settings()
    found = contract(model_uri, settings=settings)
    dataset = _open(data, found)
    thresholds = Thresholds(
        tuple(settings.drift_psi_thresholds),
        tuple(settings.drift_wasserstein_thresholds),
        tuple(settings.drift_js_thresholds),
    )
    validation = validate_dataset(
        found, dataset, client=client, thresholds=thresholds, on_block_done=on_block_done
    )
    if report is not None:
        from scaleml.monitor._report import write_report

        write_report(found, validation, report, f"Drift of {dataset.source} against {model_uri}")
    return validation


def _open(data: Any, found: Contract) -> Any:
    from scaleml.data import Dataset

    if isinstance(data, Dataset):
        return data
    probe = Dataset(str(data), target=None, validation_fraction=0.0)
    target = found.dataset.get("target")
    if target and target in probe.columns:
        return Dataset(str(data), target=target, validation_fraction=0.0)
    return probe
