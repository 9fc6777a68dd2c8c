"""Explanations in MLflow: global SHAP importances as metrics and a table, the summary, the
plots and the report, and the background a model is explained against later (its feature
means and a few training rows as data, never a pickled explainer), all in the model's run."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from scaleml.config import Settings
from scaleml.errors import TrackingError
from scaleml.tracking._runs import RunLogger, configure

if TYPE_CHECKING:
    from scaleml.insight import Background, Explanation

ARTIFACT_DIR = "explain"
BACKGROUND_JSON = f"{ARTIFACT_DIR}/background.json"
BACKGROUND_ROWS = f"{ARTIFACT_DIR}/background.parquet"
METRIC_PREFIX = "shap_mean_abs"
_METRIC_SAFE = re.compile(r"[^A-Za-z0-9_\-. /]")


def metric_name(*parts: str) -> str:
    """``shap_mean_abs.<part>...`` with characters MLflow refuses in names replaced by ``_``."""
    return ".".join([METRIC_PREFIX, *(_METRIC_SAFE.sub("_", p)[:200] for p in parts)])


def explanation_metrics(explanation: Explanation) -> dict[str, float]:
    """Mean |SHAP| per feature (averaged over outputs), and per output when there are
    several, as MLflow metric names and values."""
    metrics = {
        metric_name(feature): float(value)
        for feature, value in zip(explanation.features, explanation.global_importance, strict=True)
    }
    if len(explanation.output_names) > 1:
        for output, row in zip(explanation.output_names, explanation.mean_abs, strict=True):
            for feature, value in zip(explanation.features, row, strict=True):
                metrics[metric_name(output, feature)] = float(value)
    return metrics


def log_explanation(
    run: RunLogger, explanation: Explanation, *, plots: bool = True, report: bool = True
) -> list[str]:
    """Log ``explanation`` to ``run``: importances as metrics and as a table
    (``explain/importances.json``), the summary (``explain/summary.json``), the background
    (``explain/background.json`` and ``.parquet``), shap's PNG plots and the HTML report
    (``explain/report.html``). Returns the artifact paths written."""
    run.log_metrics(explanation_metrics(explanation))
    run.set_tags(
        {
            "scaleml.explainer": explanation.explainer,
            "scaleml.explained_output": explanation.output,
        }
    )
    client = run.client
    written = [f"{ARTIFACT_DIR}/importances.json", f"{ARTIFACT_DIR}/summary.json"]
    client.log_table(run.run_id, explanation.importances(), written[0])
    client.log_dict(run.run_id, explanation.summary(), written[1])
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / ARTIFACT_DIR
        folder.mkdir()
        if explanation.background is not None:
            _write_background(explanation.background, folder)
        if plots:
            from scaleml.insight._shap_plots import write_pngs

            write_pngs(explanation, folder)
        if report:
            from scaleml.insight._explain_report import write_report

            write_report(explanation, folder / "report.html")
        client.log_artifacts(run.run_id, str(folder), ARTIFACT_DIR)
        written += [f"{ARTIFACT_DIR}/{p.name}" for p in sorted(folder.iterdir())]
    return written


def _write_background(background: Background, folder: Path) -> None:
    (folder / "background.json").write_text(json.dumps(background.to_dict()))
    background.rows.to_parquet(folder / "background.parquet", index=False)


def model_run_id(model_uri: str, *, settings: Settings | None = None) -> str:
    """The run that logged the model behind ``model_uri``."""
    configure(settings)
    try:
        run_id = mlflow.models.get_model_info(model_uri).run_id
    except MlflowException as exc:
        raise TrackingError(f"cannot read model {model_uri}: {exc.message}") from exc
    if not run_id:
        raise TrackingError(f"model {model_uri} was not logged by a run")
    return run_id


def load_background(model_uri: str, *, settings: Settings | None = None) -> Background | None:
    """The background logged with the model behind ``model_uri`` (None when none was)."""
    from scaleml.insight import Background

    client = configure(settings)
    run_id = model_run_id(model_uri, settings=settings)
    with tempfile.TemporaryDirectory() as scratch:
        try:
            summary_path = client.download_artifacts(run_id, BACKGROUND_JSON, scratch)
            rows_path = client.download_artifacts(run_id, BACKGROUND_ROWS, scratch)
        except (MlflowException, OSError):
            return None
        summary: dict[str, Any] = json.loads(Path(summary_path).read_text())
        rows = pd.read_parquet(rows_path)
    return Background(
        list(summary["features"]),
        np.asarray(summary["mean"], dtype=np.float64),
        rows,
        int(summary["n_rows"]),
    )


def explain_and_log(
    model_uri: str,
    dataset: Any,
    *,
    settings: Settings | None = None,
    client: Any = None,
    plots: bool = True,
    report: bool = True,
    **options: Any,
) -> tuple[Explanation, str]:
    """Explain the model behind ``model_uri`` on ``dataset`` (``scaleml.insight.explain``) and
    log the explanation to the model's run; return it and the run id."""
    from scaleml.insight import explain
    from scaleml.tracking._runs import Tracker

    explanation = explain(model_uri, dataset, client=client, settings=settings, **options)
    tracker = Tracker(settings)
    run_id = model_run_id(model_uri, settings=settings)
    log_explanation(RunLogger(tracker.client, run_id), explanation, plots=plots, report=report)
    return explanation, run_id


def explain_final_model(
    run: RunLogger, model: Any, data: Any, settings: Settings, client: Any = None
) -> None:
    """Explain a training's, search's or boosting's final ``model`` on the validation blocks
    of ``data`` (every block without any; a bounded sample of ``settings.explain_sample`` rows)
    and log it to ``run``. Off when the setting is 0 or ``data`` is not a ``Dataset``. An
    explanation that fails is noted in the ``scaleml.explain_error`` tag: the training stands.
    """
    from scaleml.data import Dataset

    if settings.explain_sample <= 0 or not isinstance(data, Dataset):
        return
    try:
        from distributed import get_client

        from scaleml.insight import explain

        client = client or get_client()
        part = "validation" if data.validation_blocks else "all"
        explanation = explain(model, data, sample=settings.explain_sample, part=part, client=client)
        log_explanation(
            run, explanation, plots=settings.explain_plots, report=settings.explain_plots
        )
    except Exception as exc:
        run.set_tags({"scaleml.explain_error": f"{type(exc).__name__}: {exc}"[:5000]})
