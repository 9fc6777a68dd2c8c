"""``compare``: one pass over the data (each block read once, by one task), a leaderboard in
the order of separately computed scores, and its report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from distributed import get_task_stream
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from scaleml.data import Dataset
from scaleml.insight import InsightError, SignatureMismatchError, compare
from tests.insight.conftest import FEATURES


def test_compare_reads_each_block_once_and_ranks_like_scikit_learn(
    logged_models: dict[str, Any], client: Any, tmp_path: Path
) -> None:
    dataset: Dataset = logged_models["binary"]
    train = dataset.read_block(dataset.train_blocks[0])
    x, y = train[FEATURES].to_numpy(), train["target"]
    models = {
        "logistic": LogisticRegression().fit(x, y),
        "tree-2": DecisionTreeClassifier(max_depth=2, random_state=0).fit(x, y),
        "tree-12": DecisionTreeClassifier(max_depth=12, random_state=0).fit(x, y),
        "prior": DummyClassifier().fit(x, y),
        "sgd (MLflow)": logged_models["tracked"].model_uri,
    }
    with get_task_stream(client) as stream:
        comparison = compare(
            models,
            dataset,
            split="all",
            sort_by="f1",
            client=client,
            settings=logged_models["settings"],
        )
    block_tasks = [t for t in stream.data if t["key"].startswith("insight-evaluate-block")]
    assert len(block_tasks) == dataset.n_blocks  # every block read once, for five models

    rows = pd.concat(dataset.iter_blocks())
    fitted = {name: m for name, m in models.items() if not isinstance(m, str)}
    expected = {
        name: skm.f1_score(rows["target"], m.predict(rows[FEATURES].to_numpy()))
        for name, m in fitted.items()
    }
    board = comparison.leaderboard
    ranked = [r["name"] for r in board if r["name"] in expected]
    assert ranked == sorted(expected, key=expected.get, reverse=True)
    for r in board:
        if r["name"] in expected:
            assert r["f1"] == pytest.approx(expected[r["name"]], abs=1e-9)
    assert [r["rank"] for r in board] == [1, 2, 3, 4, 5]
    assert comparison.rows == dataset.n_rows

    page = comparison.report(tmp_path / "compare.html")
    assert "Leaderboard" in page.read_text()


def test_compare_bad_input(logged_models: dict[str, Any], client: Any) -> None:
    dataset: Dataset = logged_models["binary"]
    rows = dataset.read_block(0)
    model = LogisticRegression().fit(rows[FEATURES].to_numpy(), rows["target"])
    with pytest.raises(InsightError, match="one kind"):
        compare([model, logged_models["ridge_uri"]], dataset, settings=logged_models["settings"])
    narrow = LogisticRegression().fit(rows[FEATURES[:2]].to_numpy(), rows["target"])
    with pytest.raises(SignatureMismatchError, match="model 'narrow'"):
        compare({"ok": model, "narrow": narrow}, dataset, client=client)
