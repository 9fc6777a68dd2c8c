"""``scaleml demo``: the whole flow on one machine, from generated data to served predictions.

Steps: write (or reuse) a synthetic dataset; train an ``SGDClassifier`` incrementally on a local
cluster and register it as ``scaleml-demo@champion``; run a Hyperband search over the same
model's space and move the champion alias to its best model when that beats the trained one;
load the champion back with ``mlflow.pyfunc``; serve it through the gateway and send it a few
HTTP requests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import SGDClassifier

from scaleml.cluster import connect
from scaleml.config import Settings, get_settings
from scaleml.data import Dataset, write_synthetic
from scaleml.search import make_search
from scaleml.tracking import (
    Tracker,
    load_model,
    register_and_promote,
    search_and_log,
    train_and_log,
)

DEMO_MODEL = "scaleml-demo"
DEMO_FEATURES = 20
DEMO_BLOCK_ROWS = 100_000
DEMO_SPACE: dict[str, Any] = {
    "alpha": {"distribution": "loguniform", "low": 1e-6, "high": 1e-1},
    "l1_ratio": {"distribution": "uniform", "low": 0.0, "high": 1.0},
    "penalty": ["l2", "elasticnet"],
    "average": [True, False],
}
_STEPS = 7


def run_demo(
    *,
    rows: int = 3_000_000,
    epochs: int = 3,
    max_iter: int = 27,
    serve: bool = False,
    settings: Settings | None = None,
    echo: Callable[[str], object] = print,
) -> dict[str, object]:
    """Run the demo and return what it produced (paths, runs, champion version, answers).

    Args:
        rows: rows of the generated dataset (reused when it exists).
        epochs: epochs of the incremental training.
        max_iter: Hyperband's ``max_iter`` (partial_fit calls of its longest-trained model).
        serve: keep the gateway running until interrupted (Ctrl-C) after the demo requests.
        settings: scaleml settings; read from the environment when omitted.
        echo: where the demo's lines go.
    """
    settings = settings or get_settings()
    dataset = _demo_dataset(settings, rows, echo)
    tracker = Tracker(settings)
    with connect(settings, announce=echo) as client:
        workers = len(client.scheduler_info()["workers"])
        echo(
            f"[2/{_STEPS}] training SGDClassifier on {dataset.n_rows:,} rows in "
            f"{dataset.n_blocks} blocks, {epochs} epochs, on {workers} workers"
        )
        trained = _train(dataset, tracker, client, epochs, settings, echo)
        echo(f"[3/{_STEPS}] Hyperband search (max_iter={max_iter}) over {sorted(DEMO_SPACE)}")
        searched = _search(dataset, tracker, client, max_iter, echo)
        champion, version = _crown(trained, searched, dataset, tracker, client, echo)
        report = _insight(trained, searched, dataset, settings, client, echo)
        dashboard = client.dashboard_link

        model = load_model(f"models:/{DEMO_MODEL}@champion", settings=settings)
        sample = dataset.read_block(dataset.validation_blocks[0]).head(5)
        features = sample[dataset.features]
        predictions = np.asarray(model.predict(features))
        echo(f"[6/{_STEPS}] models:/{DEMO_MODEL}@champion loaded back with mlflow.pyfunc:")
        for actual, predicted in zip(sample[dataset.target], predictions, strict=True):
            echo(f"      target {actual} -> predicted {predicted}")
        from scaleml.insight._explain_demo import explain_champion

        top_features = explain_champion(
            f"models:/{DEMO_MODEL}@champion", dataset, settings, client, echo
        )

        answers = _serve(features, settings, client, serve, echo)
    echo("")
    echo(f"Dask dashboard (while a cluster runs): {dashboard}")
    echo(f"MLflow UI: mlflow ui --backend-store-uri {tracker.tracking_uri}")
    return {
        "data": str(dataset.source),
        "run_id": trained.run_id,
        "search_run_id": searched.run_id,
        "champion": champion,
        "model_version": version,
        "scores": trained.result.final_scores,
        "predictions": predictions.tolist(),
        "report": str(report),
        "served_predictions": answers,
        "top_features": top_features,
    }


def _demo_dataset(settings: Settings, rows: int, echo: Callable[[str], object]) -> Dataset:
    path = settings.data_dir / f"demo-classification-{rows}"
    if path.exists():
        echo(f"[1/{_STEPS}] dataset: reusing {path}")
    else:
        echo(f"[1/{_STEPS}] dataset: writing {rows:,} rows x {DEMO_FEATURES} features to {path}")
        block_rows = min(DEMO_BLOCK_ROWS, max(1_000, rows // 10))
        write_synthetic(
            path, rows=rows, features=DEMO_FEATURES, block_rows=block_rows, random_state=0
        )
    return Dataset(str(path), target="target")


def _train(
    dataset: Dataset,
    tracker: Tracker,
    client: Any,
    epochs: int,
    settings: Settings,
    echo: Callable[[str], object],
) -> Any:
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
    echo(
        f"      run {tracked.run_id}; registered models:/{DEMO_MODEL} version "
        f"{tracked.registered_version}; {tracked.result.rows_per_second:,.0f} rows/s"
    )
    return tracked


def _search(
    dataset: Dataset, tracker: Tracker, client: Any, max_iter: int, echo: Callable[[str], object]
) -> Any:
    search = make_search(
        "hyperband",
        SGDClassifier(loss="log_loss", tol=1e-3, random_state=0),
        DEMO_SPACE,
        max_iter=max_iter,
        random_state=0,
    )
    tracked = search_and_log(
        search,
        dataset,
        tracker=tracker,
        client=client,
        fit_params={"classes": dataset.classes(client).tolist()},
        run_name="demo-hyperband",
        dataset=dataset,
    )
    fitted = tracked.search
    echo(
        f"      {fitted.metadata_['n_models']} models, "
        f"{fitted.metadata_['partial_fit_calls']} partial_fit calls; "
        f"best accuracy {tracked.best_score:.4f} (run {tracked.run_id})"
    )
    return tracked


def _crown(
    trained: Any,
    searched: Any,
    dataset: Dataset,
    tracker: Tracker,
    client: Any,
    echo: Callable[[str], object],
) -> tuple[str, str]:
    """Print the leaderboard; register the search's best model and let the promotion gate move
    the champion alias to it when it scores at least as well as the trained one on the same
    validation blocks. Returns the champion's name and registered version."""
    results = searched.search.cv_results_
    trained_accuracy = trained.result.final_scores["accuracy"]
    board = [(trained_accuracy, "incremental training", "")]
    for i in np.argsort(-np.asarray(results["test_score"]))[:4]:
        params = json.dumps(_plain(results["params"][i]), sort_keys=True)
        board.append((float(results["test_score"][i]), f"hyperband model {i}", params))
    board.sort(key=lambda line: -line[0])
    echo(f"[4/{_STEPS}] leaderboard (accuracy on the same validation blocks):")
    for rank, (accuracy, name, params) in enumerate(board, start=1):
        echo(f"      {rank}. {accuracy:.4f}  {name}  {params}".rstrip())
    promotion = register_and_promote(
        searched.model_uri,
        DEMO_MODEL,
        model=searched.search.best_estimator_,
        data=dataset,
        tracker=tracker,
        client=client,
    )
    for line in promotion.lines():
        echo(f"      {line}")
    if promotion.promoted:
        return "hyperband", promotion.version
    return "incremental training", str(promotion.holder_version)


def _insight(
    trained: Any,
    searched: Any,
    dataset: Dataset,
    settings: Settings,
    client: Any,
    echo: Callable[[str], object],
) -> Path:
    """Compare the search's best model with the incremental one in one pass over the
    validation blocks (scaleml.insight), log the comparison run, write the report."""
    from scaleml.insight import compare_logged

    echo(f"[5/{_STEPS}] insight: the champion against the incremental model, one pass")
    report = Path(settings.data_dir) / "demo-insight-report.html"
    comparison = compare_logged(
        {"hyperband best": searched.model_uri, "incremental training": trained.model_uri},
        dataset,
        settings=settings,
        client=client,
        sort_by="roc_auc",
        report_path=report,
    )
    for row in comparison.leaderboard:
        shown = "  ".join(
            f"{k} {row[k]:.4f}" for k in ("roc_auc", "accuracy", "f1_macro", "log_loss") if row[k]
        )
        echo(f"      {row['rank']}. {row['name']}: {shown}")
    echo(f"      report: {report}")
    return report


def _serve(
    features: Any, settings: Settings, client: Any, keep: bool, echo: Callable[[str], object]
) -> list[Any]:
    import httpx

    from scaleml.gateway import serve_in_background

    model = f"{DEMO_MODEL}@champion"
    port = settings.gateway_port if keep else 0
    with serve_in_background([model], settings=settings, client=client, port=port) as gateway:
        payload = {"dataframe_split": features.to_dict(orient="split", index=False)}
        echo(f"[7/{_STEPS}] serving models:/{model} at {gateway.url} (batches on the workers)")
        answers = []
        with httpx.Client(base_url=gateway.url, timeout=30) as http:
            for row in range(len(features)):
                one = {"dataframe_split": features.iloc[[row]].to_dict("split", index=False)}
                reply = http.post("/invocations", json=one)
                reply.raise_for_status()
                answers.append(reply.json()["predictions"][0])
            echo(f"      POST /invocations, one row at a time: {answers}")
            reply = http.post("/invocations", json=payload)
            reply.raise_for_status()
            echo(f"      POST /invocations, {len(features)} rows at once: {reply.json()}")
            from scaleml.insight._explain_demo import explain_curl, explain_over_http

            explain_over_http(http, features, echo)
            echo("      " + explain_curl(features, gateway.url))
        example = features.iloc[[0]].round(4).to_dict("split", index=False)
        body = json.dumps({"dataframe_split": example})
        curl = "curl -s URL/invocations -H 'Content-Type: application/json' -d '" + body + "'"
        if keep:
            echo("      serving until interrupted (Ctrl-C); try:")
            echo("      " + curl.replace("URL", gateway.url, 1))
            gateway.wait()
    if not keep:
        echo(f"      to keep serving: scaleml demo --serve, or scaleml serve --model {model}; then")
        echo("      " + curl.replace("URL", f"http://127.0.0.1:{settings.gateway_port}", 1))
    return answers


def _plain(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in params.items()}
