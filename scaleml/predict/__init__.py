"""Batch scoring stage: a model's predictions for every row of a dataset, computed block by
block on the workers and written as Parquet (see :func:`predict_dataset`).

It sits after tracking in the flow: the CLI and the coordinator load the model from MLflow
(``scaleml.tracking.load_model``) and hand the fitted model to :func:`predict_dataset`,
which knows nothing of MLflow.
"""

from scaleml.predict._batch import (
    PREDICTION,
    PROBABILITY_PREFIX,
    PredictError,
    PredictionResult,
    check_request,
    model_features,
    predict_dataset,
)

__all__ = [
    "PREDICTION",
    "PROBABILITY_PREFIX",
    "PredictError",
    "PredictionResult",
    "check_request",
    "model_features",
    "predict_dataset",
]
