"""The worker side of batch scoring: read one block, predict it, write it as one Parquet file."""

from __future__ import annotations

import os
import uuid
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from scaleml.data._checks import check_frame, check_xy

PREDICTION = "prediction"
PROBABILITY_PREFIX = "probability_"


def predict_block(
    model: Any,
    block: Any,
    features: list[str],
    keep: list[str],
    path: str,
    *,
    probabilities: bool,
    missing_features: bool,
) -> int:
    """Predict ``block`` with ``model`` and write ``keep`` columns, the prediction (and the
    class probabilities) to the Parquet file ``path``, through a temporary name; return the
    number of rows written."""
    frame = block.read(list(dict.fromkeys([*keep, *features])))
    x = frame[features]
    if missing_features:  # XGBoost / LightGBM take NaN as a missing value
        check_frame(block, frame, features, None)
    else:
        check_xy(block, x.to_numpy(dtype=np.float64), None, features, None)
    output = {name: frame[name].to_numpy() for name in keep}
    output[PREDICTION] = np.asarray(model.predict(x))
    if probabilities:
        proba = np.asarray(model.predict_proba(x))
        for position, label in enumerate(getattr(model, "classes_", range(proba.shape[1]))):
            output[f"{PROBABILITY_PREFIX}{_label(label)}"] = proba[:, position]
    table = pa.Table.from_pandas(pd.DataFrame(output), preserve_index=False)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        pq.write_table(table, temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise
    return table.num_rows


def _label(label: Any) -> str:
    value = label.item() if hasattr(label, "item") else label
    return str(value)
