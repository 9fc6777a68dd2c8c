"""``scaleml demo``: the whole flow on one machine, from generated data to a loaded model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.config import Settings, get_settings
from scaleml.data import Dataset, write_synthetic
from scaleml.tracking import Tracker, load_model, train_and_log

DEMO_MODEL = "scaleml-demo"
DEMO_FEATURES = 20
DEMO_BLOCK_ROWS = 100_000


def run_demo(
    *,
    rows: int = 3_000_000,
    epochs: int = 3,
    settings: Settings | None = None,
    echo: Callable[[str], object] = print,
) -> dict[str, object]:
    """Run the demo and return what it produced (paths, run id, model version, scores)."""
    settings = settings or get_settings()
    path = settings.data_dir / f"demo-classification-{rows}"
    if path.exists():
        echo(f"[1/4] dataset: reusing {path}")
    else:
        echo(f"[1/4] dataset: writing {rows:,} rows x {DEMO_FEATURES} features to {path}")
        write_synthetic(
            path, rows=rows, features=DEMO_FEATURES, block_rows=DEMO_BLOCK_ROWS, random_state=0
        )
    dataset = Dataset(str(path), target="target")
    tracker = Tracker(settings)
    with connect(settings, announce=echo) as client:
        echo(
            f"[2/4] training SGDClassifier on {dataset.n_rows:,} rows in {dataset.n_blocks} "
            f"blocks, {epochs} epochs, on {len(client.scheduler_info()['workers'])} workers"
        )
        tracked = train_and_log(
            SGDClassifier(loss="log_loss", alpha=1e-4, random_state=0),
            dataset,
            tracker=tracker,
            client=client,
            epochs=epochs,
            random_state=0,
            prefetch=settings.prefetch_blocks,
            register_as=DEMO_MODEL,
            on_epoch_end=lambda r: echo(
                f"      epoch {r.epoch}: accuracy {r.scores.get('accuracy', float('nan')):.4f}, "
                f"log_loss {r.scores.get('log_loss', float('nan')):.4f} ({r.seconds:.1f}s)"
            ),
        )
        dashboard = client.dashboard_link
    result = tracked.result
    echo(
        f"[3/4] logged run {tracked.run_id}; registered models:/{DEMO_MODEL}@champion "
        f"(version {tracked.registered_version}); {result.rows_per_second:,.0f} rows/s"
    )
    model = load_model(f"models:/{DEMO_MODEL}@champion", settings=settings)
    sample = dataset.read_block(dataset.validation_blocks[0]).head(5)
    predictions = np.asarray(model.predict(sample[dataset.features]))
    echo(f"[4/4] models:/{DEMO_MODEL}@champion loaded back with mlflow.pyfunc:")
    for actual, predicted in zip(sample[dataset.target], predictions, strict=True):
        echo(f"      target {actual} -> predicted {predicted}")
    echo("")
    echo(f"Dask dashboard (while a cluster runs): {dashboard}")
    echo(f"MLflow UI: mlflow ui --backend-store-uri {tracker.tracking_uri}")
    return {
        "data": str(path),
        "run_id": tracked.run_id,
        "model_version": tracked.registered_version,
        "scores": result.final_scores,
        "predictions": predictions.tolist(),
    }
