"""The explanation batcher of a loaded model version: requests for SHAP contributions are
gathered into batches with the same limits as predictions (``gateway_max_batch_size``,
``gateway_max_wait_ms``, ``gateway_max_queue``, the handle's capacity) and explained by the
backend where that version's predictions run."""

from __future__ import annotations

from typing import Any

import numpy as np

from scaleml.config import Settings
from scaleml.gateway._batcher import Batcher
from scaleml.gateway._contract import Rows


def explain_batcher(
    handle: Any, schema: Any, settings: Settings, metrics: Any, model: str
) -> Batcher[Rows, Any]:
    """A :class:`Batcher` of :class:`Rows` whose results are each request's slice of the
    batch's explanation (``values`` of its rows, and the shared base values and names)."""
    names = schema.names

    async def explain(parts: list[Rows]) -> list[dict[str, Any]]:
        present = [n for n in names if all(n in p.columns for p in parts)]
        if len(parts) == 1:
            arrays = [parts[0].columns[n] for n in present]
        else:
            arrays = [np.concatenate([p.columns[n] for p in parts]) for n in present]
        result = await handle.explain(present, arrays)
        total = sum(p.n for p in parts)
        if len(result["values"]) != total:
            raise RuntimeError(f"the explainer returned {len(result['values'])} rows for {total}")
        pieces, start = [], 0
        for part in parts:
            pieces.append({**result, "values": result["values"][start : start + part.n]})
            start += part.n
        return pieces

    return Batcher(
        explain,
        max_batch_size=settings.gateway_max_batch_size,
        max_wait_ms=settings.gateway_max_wait_ms,
        max_queue=settings.gateway_max_queue,
        max_inflight=handle.capacity,
        on_batch=metrics.explain_batch_recorder(model),
    )
