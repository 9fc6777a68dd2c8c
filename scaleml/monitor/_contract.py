"""A data contract: what the training data, its target and the model's outputs looked like.

Built from merged :class:`~scaleml.monitor._profile.Profile` objects (one pass over the blocks,
on the workers), stored as a versioned JSON document (``contract.json``), read back with
:meth:`Contract.from_dict`, checked against batches of columns (vectorised: one comparison
per column and bound) and turned into a pandera schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import scaleml
from scaleml.monitor import _sketch
from scaleml.monitor._errors import ContractError, ContractViolation
from scaleml.monitor._profile import Profile

_SCALAR_ROWS = 4
FORMAT = "scaleml-contract"
FORMAT_VERSION = 1
QUANTILE_PROBABILITIES = np.round(np.linspace(0.0, 1.0, 101), 2)
HISTOGRAM_PROBABILITIES = np.round(np.linspace(0.0, 1.0, 21), 2)
"""The reference histogram's edges are the data's quantiles at these probabilities."""


@dataclass(frozen=True)
class ColumnContract:
    """What one column looked like in the training data.

    ``kind`` is ``numeric`` (range, quantiles, a histogram on fixed bins cut at the quantiles)
    or ``categorical`` (the categories and their shares).
    """

    name: str
    dtype: str
    kind: str
    rows: int
    nulls: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    quantiles: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    proportions: list[float] = field(default_factory=list)
    categories: list[Any] = field(default_factory=list)

    @property
    def interior_edges(self) -> np.ndarray:
        """The histogram's inner edges: bin ``i`` holds values in ``(edge[i-1], edge[i]]``."""
        return np.asarray(self.edges[1:-1], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """This column as JSON-able data."""
        out: dict[str, Any] = {
            "dtype": self.dtype,
            "kind": self.kind,
            "rows": self.rows,
            "nulls": self.nulls,
        }
        if self.kind == "numeric":
            out.update(min=self.minimum, max=self.maximum, mean=self.mean, std=self.std)
            out["quantiles"] = {
                "probabilities": QUANTILE_PROBABILITIES.tolist(),
                "values": self.quantiles,
            }
            out["histogram"] = {"edges": self.edges, "proportions": self.proportions}
        else:
            out["categories"] = {"values": self.categories, "proportions": self.proportions}
        return out

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> ColumnContract:
        """Read one column back."""
        try:
            if data["kind"] == "numeric":
                return cls(
                    name,
                    data["dtype"],
                    "numeric",
                    int(data["rows"]),
                    int(data["nulls"]),
                    data["min"],
                    data["max"],
                    data.get("mean"),
                    data.get("std"),
                    list(data["quantiles"]["values"]),
                    list(data["histogram"]["edges"]),
                    list(data["histogram"]["proportions"]),
                )
            return cls(
                name,
                data["dtype"],
                "categorical",
                int(data["rows"]),
                int(data["nulls"]),
                proportions=list(data["categories"]["proportions"]),
                categories=list(data["categories"]["values"]),
            )
        except (KeyError, TypeError) as exc:
            raise ContractError(f"contract column {name!r} is malformed: missing {exc}") from None


def column_from_profile(name: str, profile: Profile) -> ColumnContract:
    """The contract of a column from its merged profile."""
    categorical = profile.counts is not None and (
        not profile.numeric or (len(profile.counts) <= 20 and _whole(profile.counts))
    )
    if categorical or profile.sketch is None:
        counts = profile.counts or {}
        total = sum(counts.values()) or 1
        values = sorted(counts, key=_sort_key)
        shares = [counts[v] / total for v in values]
        return ColumnContract(
            name, profile.dtype, "categorical", profile.rows, profile.nulls,
            categories=values, proportions=shares,
        )  # fmt: skip
    count = profile.rows - profile.nulls
    mean = profile.total / count if count else None
    variance = profile.squares / count - mean**2 if count and mean is not None else None
    std = float(np.sqrt(max(variance, 0.0))) if variance is not None else None
    quantiles = profile.sketch.quantiles(QUANTILE_PROBABILITIES)
    if count:  # the exact extremes, not the sketch's nearest points
        quantiles[0], quantiles[-1] = profile.minimum, profile.maximum
    edges = profile.sketch.quantiles(HISTOGRAM_PROBABILITIES)
    if count:  # the exact extremes, the sketch's quantiles in between
        edges = np.concatenate([[profile.minimum], edges[1:-1], [profile.maximum]])
    edges = np.unique(edges)
    proportions = _histogram_from_sketch(profile.sketch, edges)
    return ColumnContract(
        name, profile.dtype, "numeric", profile.rows, profile.nulls,
        profile.minimum, profile.maximum, mean, std,
        [float(v) for v in quantiles], [float(e) for e in edges], proportions,
    )  # fmt: skip


def _histogram_from_sketch(sketch: _sketch.QuantileSketch, edges: np.ndarray) -> list[float]:
    inner = edges[1:-1]
    cdf = np.concatenate([[0.0], sketch.cdf(inner), [1.0]])
    return [float(p) for p in np.diff(cdf)]


@dataclass(frozen=True)
class Contract:
    """A model's data contract: features, target, outputs, provenance of the data."""

    features: dict[str, ColumnContract]
    target: ColumnContract | None = None
    output: ColumnContract | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    rank_error: float = 0.0
    scaleml_version: str = scaleml.__version__
    _category_sets: dict[str, set[Any]] = field(default_factory=dict, compare=False, repr=False)
    _bounds: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = field(
        default_factory=dict, compare=False, repr=False
    )

    # -- JSON ----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The versioned JSON document (``contract.json``)."""
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "scaleml_version": self.scaleml_version,
            "dataset": self.dataset,
            "sketch": {"kind": "ranked-points", "k": _sketch.DEFAULT_K,
                       "rank_error": self.rank_error},
            "features": {name: c.to_dict() for name, c in self.features.items()},
            "target": None if self.target is None else
            {"name": self.target.name, **self.target.to_dict()},
            "output": None if self.output is None else self.output.to_dict(),
        }  # fmt: skip

    def to_json(self) -> str:
        """:meth:`to_dict` as indented JSON text."""
        return json.dumps(self.to_dict(), indent=1, default=_json_default)

    @classmethod
    def from_dict(cls, data: Any) -> Contract:
        """Read a contract document; :class:`ContractError` when it is not one, or comes from
        a newer scaleml than this one."""
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ContractError("not a scaleml contract (no 'format': 'scaleml-contract')")
        version = data.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ContractError(
                f"the contract has format version {version!r} (written by scaleml "
                f"{data.get('scaleml_version', '?')}); this scaleml {scaleml.__version__} reads "
                f"up to version {FORMAT_VERSION}: upgrade scaleml"
            )
        features = data.get("features")
        if not isinstance(features, dict) or not features:
            raise ContractError("the contract lists no features")
        target = data.get("target")
        return cls(
            {name: ColumnContract.from_dict(name, spec) for name, spec in features.items()},
            ColumnContract.from_dict(target["name"], target) if target else None,
            ColumnContract.from_dict("prediction", data["output"]) if data.get("output") else None,
            dict(data.get("dataset") or {}),
            float((data.get("sketch") or {}).get("rank_error", 0.0)),
            str(data.get("scaleml_version", "?")),
        )

    # -- checks --------------------------------------------------------------------------
    def check_columns(self, names: list[str] | tuple[str, ...]) -> None:
        """:class:`ContractError` unless ``names`` are the contract's features (any order)."""
        given, expected = set(names), set(self.features)
        if given != expected:
            extra, missing = sorted(given - expected), sorted(expected - given)
            parts = [f"columns not in the contract: {extra}"] if extra else []
            parts += [f"contract columns missing: {missing}"] if missing else []
            raise ContractError(f"the data does not match the model's contract: {'; '.join(parts)}")

    def violations(self, columns: dict[str, np.ndarray]) -> dict[str, tuple[int, int, Any, str]]:
        """Per column of ``columns`` that breaks the contract: ``(count, first row, its value,
        the bound)``; columns the contract does not know are ignored. Vectorised: a few NumPy
        comparisons per column."""
        found: dict[str, tuple[int, int, Any, str]] = {}
        if len(next(iter(columns.values()), ())) <= _SCALAR_ROWS:
            return self._scalar_violations(columns)
        if self._all_in_range(columns):
            return {}
        for name, values in columns.items():
            spec = self.features.get(name)
            if spec is None:
                continue
            if spec.kind == "numeric":
                if values.dtype.kind not in "iufb":
                    continue
                low = values < spec.minimum
                high = values > spec.maximum
                bad = low | high
                if bad.any():
                    rows = np.flatnonzero(bad)
                    row = int(rows[0])
                    bound = f"minimum {spec.minimum:g}" if low[row] else f"maximum {spec.maximum:g}"
                    found[name] = (len(rows), row, values[row].item(), bound)
            else:
                kind = object if values.dtype.kind == "O" else None
                known = np.isin(values, np.asarray(spec.categories, dtype=kind))
                present = ~_isnull(values)
                bad = ~known & present
                if bad.any():
                    rows = np.flatnonzero(bad)
                    row = int(rows[0])
                    value = values[row]
                    found[name] = (len(rows), row, _plain(value), "one of the training categories")
        return found

    def _all_in_range(self, columns: dict[str, np.ndarray]) -> bool:
        """Whether every column is numeric, known and within its range: one stacked
        comparison for the whole batch, the common case."""
        names = tuple(columns)
        bounds = self._bounds.get(names)
        if bounds is None:
            specs = [self.features.get(n) for n in names]
            if not all(s is not None and s.kind == "numeric" for s in specs):
                return False
            bounds = (
                np.asarray([[s.minimum] for s in specs], dtype=np.float64),
                np.asarray([[s.maximum] for s in specs], dtype=np.float64),
            )
            self._bounds[names] = bounds
        if any(values.dtype.kind not in "iuf" for values in columns.values()):
            return False
        block = np.stack(list(columns.values()))
        return not ((block < bounds[0]) | (block > bounds[1])).any()

    def _scalar_violations(
        self, columns: dict[str, np.ndarray]
    ) -> dict[str, tuple[int, int, Any, str]]:
        """:meth:`violations` of a few rows with Python comparisons (NumPy calls cost more
        than the work for a row or two)."""
        found: dict[str, tuple[int, int, Any, str]] = {}
        for name, values in columns.items():
            spec = self.features.get(name)
            if spec is None:
                continue
            rows = []
            bound = ""
            if spec.kind == "numeric":
                if values.dtype.kind not in "iufb":
                    continue
                low, high = spec.minimum, spec.maximum
                for row, value in enumerate(values.tolist()):
                    if value < low or value > high:
                        rows.append((row, value))
                        bound = bound or (
                            f"minimum {low:g}" if value < low else f"maximum {high:g}"
                        )
            else:
                known = self._category_sets.get(name)
                if known is None:
                    known = self._category_sets[name] = set(spec.categories)
                for row, value in enumerate(values.tolist()):
                    if value is not None and value == value and value not in known:
                        rows.append((row, value))
                bound = "one of the training categories"
            if rows:
                found[name] = (len(rows), rows[0][0], rows[0][1], bound)
        return found

    def enforce(self, columns: dict[str, np.ndarray]) -> None:
        """Raise :class:`ContractViolation` naming the first violation of ``columns``."""
        found = self.violations(columns)
        if not found:
            return
        name, (count, row, value, bound) = min(found.items(), key=lambda item: item[1][1])
        more = f" ({count} rows break it)" if count > 1 else ""
        raise ContractViolation(
            f"row {row}, column {name!r}: value {value!r} is outside the model's contract "
            f"({bound}){more}",
            row=row,
            column=name,
            value=value,
            bound=bound,
        )

    def to_pandera(self) -> Any:
        """A ``pandera.pandas.DataFrameSchema`` of the features: range checks for numeric
        columns, allowed values for categorical ones, nullable as in the training data."""
        import pandera.pandas as pa

        columns = {}
        for name, spec in self.features.items():
            if spec.kind == "numeric":
                checks = [pa.Check.in_range(spec.minimum, spec.maximum)]
            else:
                checks = [pa.Check.isin(spec.categories)]
            columns[name] = pa.Column(checks=checks, nullable=spec.nulls > 0, required=True)
        return pa.DataFrameSchema(columns, name="scaleml contract")

    def summary(self) -> list[str]:
        """One line per feature, target and output: kind, range or categories."""
        lines = []
        for spec in [*self.features.values(), self.target, self.output]:
            if spec is None:
                continue
            role = (
                "target" if spec is self.target else "output" if spec is self.output else "feature"
            )
            if spec.kind == "numeric":
                lines.append(
                    f"{role:<8} {spec.name:<20} numeric  [{spec.minimum:.4g}, {spec.maximum:.4g}]"
                    f" median {spec.quantiles[50]:.4g}  nulls {spec.nulls}"
                )
            else:
                shares = ", ".join(
                    f"{c}: {p:.1%}" for c, p in zip(spec.categories, spec.proportions, strict=True)
                )
                lines.append(f"{role:<8} {spec.name:<20} categorical  {shares[:80]}")
        return lines


def _whole(counts: dict[Any, int]) -> bool:
    return all(isinstance(v, int | bool | str) for v in counts)


def _sort_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


def _isnull(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind == "f":
        return np.isnan(values)
    if values.dtype.kind == "O":
        return np.asarray([v is None for v in values], dtype=bool)
    return np.zeros(len(values), dtype=bool)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
