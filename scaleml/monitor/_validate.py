"""Check a dataset of any size against a model's contract, on the cluster.

One task per block counts the rows outside the contract per column (with the first one found)
and profiles the block; profiles merge pairwise on the workers. The drift scores are the
gateway's: PSI on the contract's bins and the Wasserstein distance in training standard
deviations for numeric features, the Jensen-Shannon distance for categorical ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from scaleml.monitor._contract import QUANTILE_PROBABILITIES, ColumnContract, Contract
from scaleml.monitor._drift import Thresholds, jensen_shannon, psi
from scaleml.monitor._errors import ContractError
from scaleml.monitor._profile import Profile, merge_frames, profile_frame


@dataclass
class Validation:
    """What :func:`validate_dataset` found."""

    rows: int
    violations: dict[str, dict[str, Any]]
    """Per column breaking the contract: ``rows`` outside it, and the ``first`` one
    (block, row, value, bound)."""
    features: dict[str, dict[str, Any]]
    """Per feature: ``scores`` and ``status``."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    observed: dict[str, ColumnContract] = field(default_factory=dict)

    @property
    def drifted(self) -> list[str]:
        """Features whose status is not ``no change``."""
        return [n for n, e in self.features.items() if e["status"] != "no change"]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report."""
        return {
            "rows": self.rows,
            "violations": self.violations,
            "features": self.features,
            "drifted": self.drifted,
        }

    def lines(self) -> list[str]:
        """The report as text, one line per feature."""
        out = [f"{self.rows:,} rows checked against the contract"]
        for name, entry in self.features.items():
            scores = "  ".join(f"{k} {v:.3f}" for k, v in entry["scores"].items())
            broken = self.violations.get(name)
            outside = f"  {broken['rows']:,} rows outside the contract" if broken else ""
            out.append(f"  {name:<20} {entry['status']:<12} {scores}{outside}")
        drifted = self.drifted
        out.append(f"drifted: {', '.join(drifted)}" if drifted else "no drift")
        return out


def validate_dataset(
    contract: Contract,
    dataset: Any,
    *,
    client: Any = None,
    thresholds: Thresholds | None = None,
    on_block_done: Any = None,
) -> Validation:
    """Check every block of ``dataset`` (a :class:`scaleml.data.Dataset`) against
    ``contract``; :class:`ContractError` when its feature columns are not the contract's."""
    contract.check_columns(list(dataset.features))
    features = list(contract.features)
    thresholds = thresholds or Thresholds()
    blocks = list(dataset.blocks)
    if client is None:
        parts = []
        for done, (index, block) in enumerate(enumerate(blocks), 1):
            parts.append(_check_block(block, index, contract, features))
            if on_block_done is not None:
                on_block_done(done, len(blocks))
        merged = _merge_checks(*parts)
    else:
        from distributed import as_completed

        futures = [
            client.submit(_check_block, b, i, contract, features, pure=False)
            for i, b in enumerate(blocks)
        ]
        for done, future in enumerate(as_completed(futures), 1):
            if future.status == "error":
                future.result()
            if on_block_done is not None:
                on_block_done(done, len(blocks))
        while len(futures) > 1:
            futures = [
                client.submit(_merge_checks, *futures[i : i + 2], pure=False)
                if i + 1 < len(futures)
                else futures[i]
                for i in range(0, len(futures), 2)
            ]
        merged = futures[0].result()
    profiles, violations = merged
    from scaleml.monitor._contract import column_from_profile

    observed = {name: column_from_profile(name, profiles[name]) for name in features}
    scored = {}
    for name in features:
        scores = column_scores(contract.features[name], profiles[name])
        statuses = [thresholds.status(m, v) for m, v in scores.items()]
        order = ["no change", "moderate", "significant"]
        worst = max(statuses, key=order.index) if statuses else "no change"
        scored[name] = {"scores": scores, "status": worst}
    rows = profiles[features[0]].rows if features else 0
    return Validation(rows, violations, scored, thresholds, observed)


def column_scores(reference: ColumnContract, profile: Profile) -> dict[str, float]:
    """Drift scores of a column's profile against its contract."""
    if reference.kind == "numeric":
        if profile.sketch is None or not len(profile.sketch.values):
            raise ContractError(f"column {reference.name!r} holds no numbers; the contract does")
        inner = reference.interior_edges
        cdf = np.concatenate([[0.0], profile.sketch.cdf(inner), [1.0]])
        shares = np.diff(cdf)
        live = profile.sketch.quantiles(QUANTILE_PROBABILITIES)
        distance = float(np.mean(np.abs(live - np.asarray(reference.quantiles))))
        std = reference.std or 1.0
        return {
            "psi": psi(np.asarray(reference.proportions), shares),
            "wasserstein": distance / std,
        }
    counts = profile.counts or {}
    total = sum(counts.values()) or 1
    known = [counts.get(c, 0) / total for c in reference.categories]
    other = 1.0 - sum(known)
    return {
        "jensen_shannon": jensen_shannon(
            np.asarray([*reference.proportions, 0.0]), np.asarray([*known, max(other, 0.0)])
        )
    }


def _check_block(
    block: Any, index: int, contract: Contract, features: list[str]
) -> tuple[dict[str, Profile], dict[str, dict[str, Any]]]:
    frame = block.read(features)
    columns = {name: frame[name].to_numpy() for name in features}
    found = contract.violations(columns)
    violations = {
        name: {
            "rows": count,
            "first": {"block": index, "row": row, "value": value, "bound": bound},
        }
        for name, (count, row, value, bound) in found.items()
    }
    return profile_frame(frame, features), violations


def _merge_checks(
    *parts: tuple[dict[str, Profile], dict[str, dict[str, Any]]],
) -> tuple[dict[str, Profile], dict[str, dict[str, Any]]]:
    profiles = merge_frames(*(p for p, _ in parts))
    violations: dict[str, dict[str, Any]] = {}
    for _, found in parts:
        for name, entry in found.items():
            if name in violations:
                violations[name]["rows"] += entry["rows"]
            else:
                violations[name] = {"rows": entry["rows"], "first": dict(entry["first"])}
    return profiles, violations
