"""The ``validate`` job kind: a dataset checked against a model's contract on the cluster."""

from __future__ import annotations

from typing import Any


def run_validate(spec: Any, context: Any) -> dict[str, Any]:
    """Run a :class:`~scaleml.coordinator.specs.ValidateSpec`; the result is the drift report
    (rows, violations per column, each feature's scores and status, the drifted features).
    The dataset's target column, when it holds the contract's, is left out of the check."""
    from scaleml.coordinator.runners import make_dataset
    from scaleml.monitor import contract, validate

    found = contract(spec.model, settings=context.settings)
    options: dict[str, Any] = {"validation_fraction": 0.0}
    target = spec.dataset.target or found.dataset.get("target")
    if spec.dataset.target is None and target:
        probe = make_dataset(spec.dataset.model_copy(update=options))
        if target not in probe.columns:
            target = None
    dataset = make_dataset(spec.dataset.model_copy(update={**options, "target": target}))
    context.check()
    result = validate(
        spec.model,
        dataset,
        client=context.client,
        report=spec.report,
        settings=context.settings,
        on_block_done=lambda done, total: context.progress(done / total, f"{done}/{total} blocks"),
    )
    return {"model_uri": spec.model, "report": spec.report, **result.to_dict()}
