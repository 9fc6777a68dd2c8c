"""Drift against a contract: bounded running histograms over a sliding window, and scores.

A :class:`DriftWindow` keeps, for one model version, a fixed set of bins per feature and for
the predictions: the contract's quantile bins (for PSI), a fine even grid around the training
range (for the Wasserstein distance) and the training categories (for Jensen-Shannon). The
window is ``slots`` sub-windows of ``window_rows / slots`` rows each; when the newest is full
the oldest is dropped, so memory is fixed by the bins, whatever the traffic.

Scores (evidently's and NannyML's choices for large samples): PSI on the contract's bins
(thresholds 0.1 / 0.25), the Wasserstein distance divided by the training standard deviation
(numeric), the Jensen-Shannon distance (base 2, in [0, 1]; categorical), and for classifiers
the predicted class balance against the one on the validation blocks.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from scaleml.monitor._contract import ColumnContract, Contract

FINE_BINS = 128
_EPSILON = 1e-4
NO_CHANGE, MODERATE, SIGNIFICANT = "no change", "moderate", "significant"


@dataclass(frozen=True)
class Thresholds:
    """``(moderate, significant)`` limits of each score."""

    psi: tuple[float, float] = (0.1, 0.25)
    wasserstein: tuple[float, float] = (0.1, 0.2)
    jensen_shannon: tuple[float, float] = (0.1, 0.2)

    def status(self, metric: str, value: float) -> str:
        """``no change``, ``moderate`` or ``significant`` for ``value`` of ``metric``."""
        moderate, significant = getattr(self, metric)
        if not np.isfinite(value) or value < moderate:
            return NO_CHANGE
        return SIGNIFICANT if value >= significant else MODERATE


class _Column:
    """The bins of one column and the reference shares in them."""

    def __init__(self, spec: ColumnContract) -> None:
        self.spec = spec
        self.numeric = spec.kind == "numeric"
        if self.numeric:
            self.inner = spec.interior_edges
            self.reference = np.asarray(spec.proportions, dtype=np.float64)
            low, high = float(spec.minimum), float(spec.maximum)
            span = (high - low) or max(abs(low), 1.0)
            self.grid = np.linspace(low - span / 2, high + span / 2, FINE_BINS + 1)
            probabilities = np.linspace(0.0, 1.0, len(spec.quantiles))
            cdf = np.interp(self.grid, spec.quantiles, probabilities, left=0.0, right=1.0)
            self.fine_reference = np.diff(np.concatenate([[0.0], cdf, [1.0]]))
            width = self.grid[1] - self.grid[0]
            self.centres = np.concatenate(
                [[self.grid[0] - width / 2], (self.grid[:-1] + self.grid[1:]) / 2,
                 [self.grid[-1] + width / 2]]
            )  # fmt: skip
            self.size = len(self.reference) + FINE_BINS + 2
        else:
            self.categories = list(spec.categories)
            self.reference = np.asarray([*spec.proportions, 0.0], dtype=np.float64)
            self.size = len(self.categories) + 1  # the last bin: values never seen in training
            self._lookup = {value: i for i, value in enumerate(self.categories)}
            numbers = all(isinstance(c, int | float) for c in self.categories)
            self._numbers = np.asarray(self.categories) if numbers else None

    def counts(self, values: np.ndarray) -> np.ndarray:
        """The bin counts of ``values`` (one vector of ``size``)."""
        if self.numeric:
            values = np.asarray(values, dtype=np.float64)
            values = values[~np.isnan(values)]
            psi_bins = np.searchsorted(self.inner, values, side="left")
            fine = np.searchsorted(self.grid, values, side="right")
            return np.concatenate(
                [
                    np.bincount(psi_bins, minlength=len(self.reference)),
                    np.bincount(fine, minlength=FINE_BINS + 2),
                ]
            )
        n = len(self.categories)
        if self._numbers is not None and np.asarray(values).dtype.kind in "iufb":
            values = np.asarray(values)
            position = np.clip(np.searchsorted(self._numbers, values), 0, max(n - 1, 0))
            hit = self._numbers[position] == values if n else np.zeros(len(values), bool)
            index = np.where(hit, position, n)
        else:
            index = np.fromiter((self._lookup.get(v, n) for v in values), np.int64, len(values))
        return np.bincount(np.asarray(index, dtype=np.int64), minlength=self.size)

    def scores(self, counts: np.ndarray) -> dict[str, float]:
        """This column's drift scores for window ``counts``."""
        if self.numeric:
            psi_counts = counts[: len(self.reference)]
            fine = counts[len(self.reference) :]
            if psi_counts.sum() == 0:
                return {}
            out = {"psi": psi(self.reference, psi_counts / psi_counts.sum())}
            out["wasserstein"] = _wasserstein(
                self.centres, self.fine_reference, fine / fine.sum(), self.spec.std
            )
            return out
        if counts.sum() == 0:
            return {}
        return {"jensen_shannon": jensen_shannon(self.reference, counts / counts.sum())}


def _concatenate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return parts[0]
    names = [n for n in parts[0] if all(n in p for p in parts)]
    return {name: np.concatenate([p[name] for p in parts]) for name in names}


def psi(expected: np.ndarray, actual: np.ndarray) -> float:
    """The population stability index of two share vectors (shares floored at 1e-4)."""
    e = np.clip(expected, _EPSILON, None)
    a = np.clip(actual, _EPSILON, None)
    return float(np.sum((a - e) * np.log(a / e)))


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """The Jensen-Shannon distance (base 2: 0 same, 1 disjoint) of two share vectors."""
    p = p / p.sum() if p.sum() else p
    q = q / q.sum() if q.sum() else q
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        left = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        right = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max((left + right) / 2, 0.0)))


def _wasserstein(centres: np.ndarray, p: np.ndarray, q: np.ndarray, std: float | None) -> float:
    """The 1-Wasserstein distance of two histograms on the same bins, in training sds."""
    gaps = np.diff(centres)
    distance = float(np.sum(np.abs(np.cumsum(p)[:-1] - np.cumsum(q)[:-1]) * gaps))
    return distance / std if std else distance


class DriftWindow:
    """Running histograms of a model version's features and predictions over the last
    ``window_rows`` rows (in ``slots`` steps), scored against ``contract``.

    Thread-safe: :meth:`observe` is called by the batcher, :meth:`report` by the routes.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        window_rows: int = 10_000,
        slots: int = 10,
        thresholds: Thresholds | None = None,
    ) -> None:
        if window_rows < slots or slots < 1:
            raise ValueError(f"window_rows ({window_rows}) must be at least slots ({slots})")
        self.contract = contract
        self.window_rows = window_rows
        self.slot_rows = window_rows // slots
        self.thresholds = thresholds or Thresholds()
        self.columns = {name: _Column(spec) for name, spec in contract.features.items()}
        self.output = _Column(contract.output) if contract.output is not None else None
        self._slots: deque[dict[str, np.ndarray]] = deque(maxlen=slots)
        self._slot_sizes: deque[int] = deque(maxlen=slots)
        self._current = self._empty()
        self._current_rows = 0
        self._total = self._empty()
        self.rows_seen = 0
        self.flush_rows = min(512, self.slot_rows)
        self._pending: list[tuple[dict[str, np.ndarray], np.ndarray | None]] = []
        self._pending_rows = 0
        self._lock = threading.Lock()

    def _empty(self) -> dict[str, np.ndarray]:
        out = {name: np.zeros(c.size, dtype=np.int64) for name, c in self.columns.items()}
        if self.output is not None:
            out["\0prediction"] = np.zeros(self.output.size, dtype=np.int64)
        return out

    def observe(self, columns: dict[str, np.ndarray], predictions: Any = None) -> None:
        """Add a batch: feature arrays by name (unknown names ignored) and its predictions.

        Small batches are held (at most ``flush_rows`` rows) and counted together: the NumPy
        calls per column cost the same for 1 row as for 500."""
        n = len(next(iter(columns.values()))) if columns else 0
        output = None
        if self.output is not None and predictions is not None:
            output = np.asarray(predictions)
            output = output if output.ndim == 1 and len(output) == n else None
        with self._lock:
            self._pending.append((columns, output))
            self._pending_rows += n
            if self._pending_rows < self.flush_rows:
                return
            pending, self._pending, self._pending_rows = self._pending, [], 0
        self._count(pending)

    def flush(self) -> None:
        """Count the batches held by :meth:`observe`."""
        with self._lock:
            pending, self._pending, self._pending_rows = self._pending, [], 0
        if pending:
            self._count(pending)

    def _count(self, pending: list[tuple[dict[str, np.ndarray], np.ndarray | None]]) -> None:
        columns = _concatenate([c for c, _ in pending])
        counts = {
            name: self.columns[name].counts(values)
            for name, values in columns.items()
            if name in self.columns
        }
        n = sum(len(next(iter(c.values()))) for c, _ in pending if c)
        outputs = [o for _, o in pending if o is not None]
        if self.output is not None and outputs:
            counts["\0prediction"] = self.output.counts(
                outputs[0] if len(outputs) == 1 else np.concatenate(outputs)
            )
        with self._lock:
            for name, part in counts.items():
                self._current[name] += part
                self._total[name] += part
            self._current_rows += n
            self.rows_seen += n
            if self._current_rows >= self.slot_rows:
                if len(self._slots) == self._slots.maxlen:
                    oldest = self._slots[0]
                    for name, part in oldest.items():
                        self._total[name] -= part
                self._slots.append(self._current)
                self._slot_sizes.append(self._current_rows)
                self._current = self._empty()
                self._current_rows = 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the window's counts."""
        arrays = [self._current, self._total, *self._slots]
        return sum(a.nbytes for counts in arrays for a in counts.values())

    def report(self) -> dict[str, Any]:
        """Window size, rows seen, each feature's scores and status, and prediction drift."""
        self.flush()
        with self._lock:
            totals = {name: counts.copy() for name, counts in self._total.items()}
            rows_in_window = sum(self._slot_sizes) + self._current_rows
        features = {}
        for name, column in self.columns.items():
            scores = column.scores(totals[name])
            features[name] = self._scored(scores)
        out: dict[str, Any] = {
            "window_rows": self.window_rows,
            "rows_seen": self.rows_seen,
            "rows_in_window": rows_in_window,
            "thresholds": {
                "psi": list(self.thresholds.psi),
                "wasserstein": list(self.thresholds.wasserstein),
                "jensen_shannon": list(self.thresholds.jensen_shannon),
            },
            "features": features,
        }
        if self.output is not None:
            counts = totals["\0prediction"]
            prediction = self._scored(self.output.scores(counts))
            if not self.output.numeric and counts.sum():
                shares = counts / counts.sum()
                prediction["class_balance"] = {
                    str(c): {"reference": float(r), "live": float(s)}
                    for c, r, s in zip(
                        self.output.categories, self.output.reference, shares, strict=False
                    )
                }
            out["prediction"] = prediction
        return out

    def _scored(self, scores: dict[str, float]) -> dict[str, Any]:
        statuses = {m: self.thresholds.status(m, v) for m, v in scores.items()}
        order = [NO_CHANGE, MODERATE, SIGNIFICANT]
        worst = max(statuses.values(), key=order.index) if statuses else NO_CHANGE
        return {"scores": scores, "status": worst}
