"""The ``predict`` job kind: batch scoring of a dataset with a registered model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scaleml.coordinator.runners import make_dataset

if TYPE_CHECKING:
    from scaleml.coordinator.runners import JobContext
    from scaleml.coordinator.specs import PredictSpec


def run_predict(spec: PredictSpec, context: JobContext) -> dict[str, Any]:
    """Run a :class:`~scaleml.coordinator.specs.PredictSpec`: the model's predictions for
    every row of the dataset, written as Parquet block by block on the workers."""
    from scaleml.predict import model_features, predict_dataset
    from scaleml.tracking import load_model

    model = load_model(spec.model, settings=context.settings).get_raw_model()
    dataset = make_dataset(
        spec.dataset.model_copy(
            update={"features": spec.dataset.features or model_features(model), "target": None}
        )
    )
    context.check()
    result = predict_dataset(
        model,
        dataset,
        spec.output,
        keep=spec.keep,
        probabilities=spec.probabilities,
        client=context.client,
        overwrite=spec.overwrite,
        on_block_done=lambda done, total: context.progress(done / total, f"{done}/{total} blocks"),
    )
    return {
        "model_uri": spec.model,
        "output": str(result.output),
        "rows": result.rows,
        "files": len(result.files),
        "columns": result.columns,
    }
