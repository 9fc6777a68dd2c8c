"""The promotion gate: a newly registered version takes an alias only when it is no worse.

``if-better`` (the default) scores the new model and the alias's current holder on the same
validation data (a ``Dataset``'s validation blocks, read and scored on the workers when a Dask
client is given; otherwise the arrays given) with one additive metric, and moves the alias
only when the new model scores at least as well. ``always`` moves it regardless; ``never``
only registers the version. The decision, both scores and the reason are returned, printed by
the CLI side by side, and kept as tags of the new version.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Literal

import mlflow
from mlflow.exceptions import MlflowException

from scaleml.errors import ConfigError, TrackingError
from scaleml.tracking._runs import Tracker, configure

log = logging.getLogger("scaleml.tracking")
Promote = Literal["always", "if-better", "never"]
PROMOTE_POLICIES: tuple[str, ...] = ("always", "if-better", "never")
"""The values ``promote`` takes (the CLI's ``--promote``, a job spec's ``promote``)."""


@dataclass(frozen=True)
class Promotion:
    """What the gate decided for one new version of ``name``.

    Attributes:
        promoted: whether ``alias`` now points at ``version``.
        metric: the metric both models were scored with (None when nothing was scored).
        score: the new version's score; ``holder_score`` the previous holder's.
        holder_version: the version ``alias`` pointed at before (None: no holder).
        reason: one line saying why.
    """

    name: str
    version: str
    alias: str
    policy: str
    promoted: bool
    reason: str
    metric: str | None = None
    score: float | None = None
    holder_version: str | None = None
    holder_score: float | None = None
    contract_warnings: tuple[str, ...] = ()
    """How the new version's training data breaks the alias holder's contract."""

    def lines(self) -> list[str]:
        """The decision as text: contract warnings, both scores side by side, the outcome."""
        out = [
            f"warning: the training data breaks {self.alias} version {self.holder_version}'s "
            f"contract: {line}"
            for line in self.contract_warnings
        ]
        if self.metric is not None and self.holder_version is not None:
            out.append(f"{self.metric} on the same validation data:")
            out.append(f"  new      version {self.version:>4}  {self.score:.6f}")
            holder = f"  {self.alias:<8} version {self.holder_version:>4}"
            out.append(f"{holder}  {self.holder_score:.6f}")
        if self.promoted:
            out.append(
                f"registered models:/{self.name}@{self.alias} (version {self.version}): "
                f"{self.reason}"
            )
        else:
            kept = self.holder_version or "none"
            out.append(
                f"registered models:/{self.name}/{self.version}; {self.alias} stays at version "
                f"{kept}: {self.reason}"
            )
        return out


def check_policy(promote: str) -> str:
    """``promote`` if it is one of :data:`PROMOTE_POLICIES`, else :class:`ConfigError`."""
    if promote not in PROMOTE_POLICIES:
        raise ConfigError(f"promote must be one of {', '.join(PROMOTE_POLICIES)}, got {promote!r}")
    return promote


def register_and_promote(
    model_uri: str,
    name: str,
    *,
    model: Any,
    data: Any,
    y: Any = None,
    alias: str = "champion",
    promote: str = "if-better",
    scoring: str | None = None,
    tracker: Tracker | None = None,
    client: Any = None,
) -> Promotion:
    """Register ``model_uri`` as a new version of ``name``; move ``alias`` to it as ``promote``
    says (``always``, ``if-better`` or ``never``).

    Args:
        model_uri: the logged model.
        model: the same model, fitted, as an object (scored by ``if-better``).
        data, y: what both models are scored on: a ``Dataset`` (its validation blocks) or
            arrays / DataFrames ``(X, y)``.
        scoring: the metric (``accuracy``, ``log_loss``, ``r2``, ``mse``, ``rmse``, ``mae``);
            other names, or None, use the estimator's default (accuracy, r2).
        client: a Dask client: the validation blocks are scored on its workers.
    """
    from scaleml.tracking._scoring import load_fitted, validation_scores

    check_policy(promote)
    store = tracker.client if tracker else configure()
    holder = _holder_version(store, name, alias)
    try:
        version = str(mlflow.register_model(model_uri, name).version)
    except MlflowException as exc:
        raise TrackingError(f"cannot register {model_uri} as {name!r}: {exc.message}") from exc
    from scaleml.tracking._monitoring import champion_warnings, tag_version_provenance

    tag_version_provenance(store, name, version, model_uri)
    decision = Promotion(name, version, alias, promote, promoted=False, reason="")
    if promote == "never":
        decision = _with(decision, False, "--promote never: the alias is left where it was")
    elif promote == "always" or holder is None:
        why = "--promote always" if promote == "always" else f"no version held {alias!r}"
        decision = _with(decision, True, why)
    else:
        holder_model = load_fitted(f"models:/{name}/{holder}")
        if holder_model is None:
            decision = _with(
                decision,
                False,
                f"version {holder} cannot be scored here; use --promote always to force it",
            )
        else:
            metric, (new, old) = validation_scores([model, holder_model], data, y, scoring, client)
            higher = metric in ("accuracy", "r2")
            better = new >= old if higher else new <= old
            verdict = "at least as good as" if better else "worse than"
            decision = Promotion(
                name,
                version,
                alias,
                promote,
                promoted=better,
                reason=f"{metric} {new:.6f} is {verdict} version {holder}'s {old:.6f}",
                metric=metric,
                score=new,
                holder_version=holder,
                holder_score=old,
            )
    if holder is not None:
        found = champion_warnings(model_uri, f"models:/{name}/{holder}")
        for line in found:
            log.warning("%s: training data breaks %s@%s's contract: %s", name, name, alias, line)
        decision = dataclasses.replace(
            decision, holder_version=holder, contract_warnings=tuple(found)
        )
    try:
        if decision.promoted:
            store.set_registered_model_alias(name, alias, version)
        store.set_model_version_tag(name, version, "scaleml.promotion", decision.reason[:5000])
    except MlflowException as exc:
        raise TrackingError(f"cannot move {name}@{alias} to {version}: {exc.message}") from exc
    return decision


def _with(decision: Promotion, promoted: bool, reason: str) -> Promotion:
    return Promotion(
        decision.name, decision.version, decision.alias, decision.policy, promoted, reason
    )


def _holder_version(store: Any, name: str, alias: str) -> str | None:
    try:
        return str(store.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
