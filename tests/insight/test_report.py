"""The evaluation report in headless Chromium: Bokeh's document has its roots, every plot's
canvas is drawn, no JavaScript errors, no network (Bokeh's JavaScript is inlined)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bokeh.plotting import figure
from sklearn.linear_model import LogisticRegression

from scaleml.data import Dataset
from tests.insight.conftest import FEATURES

# Canvases inside Bokeh's shadow roots, and how many of their pixels are not blank.
_CANVASES = """() => {
  const found = [];
  const walk = (root) => {
    for (const element of root.querySelectorAll('*')) {
      if (element.tagName === 'CANVAS') found.push(element);
      if (element.shadowRoot) walk(element.shadowRoot);
    }
  };
  walk(document);
  return found.filter((c) => c.width > 0 && c.height > 0).map((c) => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let inked = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) inked++;
    }
    return inked;
  });
}"""


def test_report_renders_its_plots_offline_without_errors(
    insight_data: dict[str, Path], client: Any, browser: Any, tmp_path: Path
) -> None:
    from scaleml.insight import evaluate

    dataset = Dataset(str(insight_data["binary"]), target="target", features=FEATURES)
    rows = dataset.read_block(dataset.validation_blocks[0])
    model = LogisticRegression().fit(rows[FEATURES].to_numpy(), rows["target"])
    result = evaluate(model, dataset, client=client, sensitive_features=["group"])
    result.history = {"epochs": {"val_accuracy": [[1, 0.7], [2, 0.8], [3, 0.84]]}}
    extra = figure(title="extra section", width=300, height=200)
    extra.line([0, 1], [0, 1])
    path = result.report(tmp_path / "report.html", sections=[("Explanations", extra)])

    page_text = path.read_text()
    assert "cdn.bokeh.org" not in page_text and "<script src=" not in page_text  # offline

    page = browser.open(path.as_uri())
    page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0")
    page.wait_for_timeout(1000)
    roots = page.evaluate("() => Bokeh.documents[0].roots().length")
    assert roots >= 1
    inked = page.evaluate(_CANVASES)
    # header, confusion, ROC, PR, calibration, gain, lift, thresholds, learning, 2 fairness
    # bars and the extra section: at least 11 plots, each drawn.
    assert sum(count > 500 for count in inked) >= 11, inked
    for text in ("Evaluation of LogisticRegression", "Curves", "Fairness by group", "Explanations"):
        assert page.get_by_text(text, exact=False).count() >= 1, text
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    assert browser.errors == []
    page.close()
