"""A model card: provenance, signature, contract summary, evaluation metrics and aliases of one
registered model version, gathered from the registry and the run that logged it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from scaleml.monitor._contract import Contract
from scaleml.monitor._errors import ContractError

_SPEC = re.compile(r"^(?P<name>[^@/]+)(?:@(?P<alias>[^@/]+)|/(?P<version>\d+))?$")


@dataclass
class ModelCard:
    """What ``scaleml models show`` prints."""

    name: str
    version: str
    aliases: list[str]
    run_id: str | None
    created: str
    provenance: dict[str, str]
    dataset: dict[str, str]
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    metrics: dict[str, float]
    contract: Contract | None = None
    contract_note: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """The card as text."""
        out = [f"model card: {self.name} version {self.version}"]
        out.append(f"  aliases     {', '.join(self.aliases) or '(none)'}")
        out.append(f"  created     {self.created}")
        out.append(f"  run         {self.run_id or '(none)'}")
        if "scaleml.promotion" in self.tags:
            out.append(f"  promotion   {self.tags['scaleml.promotion']}")
        out.append("provenance")
        for key, value in self.provenance.items():
            out.append(f"  {key.removeprefix('scaleml.'):<20} {value}")
        out.append("dataset")
        for key, value in self.dataset.items():
            out.append(f"  {key.removeprefix('dataset.'):<20} {value}")
        out.append("signature")
        for spec in self.inputs:
            out.append(f"  input   {spec.get('name', '?'):<20} {spec.get('type', '?')}")
        for spec in self.outputs:
            out.append(f"  output  {spec.get('name', '-') or '-':<20} {spec.get('type', '?')}")
        out.append("evaluation metrics")
        for key, value in sorted(self.metrics.items()):
            out.append(f"  {key:<28} {value:.6g}")
        out.append("contract")
        if self.contract is None:
            out.append(f"  {self.contract_note}")
        else:
            out.append(
                f"  format {self.contract.to_dict()['format_version']}, from "
                f"{self.contract.dataset.get('n_rows', '?')} rows, quantile rank error "
                f"{self.contract.rank_error:.2%}"
            )
            out.extend(f"  {line}" for line in self.contract.summary())
        return out


def model_card(spec: str, *, settings: Any = None) -> ModelCard:
    """The card of ``NAME``, ``NAME@alias`` or ``NAME/version`` (``models:/`` accepted)."""
    from mlflow.exceptions import MlflowException

    from scaleml.errors import TrackingError
    from scaleml.monitor import contract
    from scaleml.tracking import configure, model_version_info

    match = _SPEC.match(spec.strip().removeprefix("models:/"))
    if not match:
        raise TrackingError(f"model must be NAME, NAME@alias or NAME/version, got {spec!r}")
    client = configure(settings)
    name = match["name"]
    try:
        if match["version"]:
            version = client.get_model_version(name, match["version"])
        else:
            version = client.get_model_version_by_alias(name, match["alias"] or "champion")
        registered = client.get_registered_model(name)
    except MlflowException as exc:
        raise TrackingError(f"no model version {spec} in the registry: {exc.message}") from None
    number = str(version.version)
    aliases = sorted(a for a, v in (registered.aliases or {}).items() if str(v) == number)
    run = None
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
        except MlflowException:
            run = None
    tags = dict(run.data.tags) if run else {}
    params = dict(run.data.params) if run else {}
    info = model_version_info(name, number, settings=settings)
    provenance = {k: v for k, v in tags.items() if _provenance_key(k)}
    provenance.update({k: v for k, v in (version.tags or {}).items() if _provenance_key(k)})
    try:
        loaded, note = contract(f"models:/{name}/{number}", settings=settings), ""
    except ContractError as exc:
        loaded, note = None, str(exc)
    return ModelCard(
        name,
        number,
        aliases,
        version.run_id,
        _when(version.creation_timestamp),
        dict(sorted(provenance.items())),
        {k: v for k, v in sorted(params.items()) if k.startswith("dataset.")},
        info.inputs,
        info.outputs,
        dict(run.data.metrics) if run else {},
        loaded,
        note,
        dict(version.tags or {}),
    )


def _provenance_key(key: str) -> bool:
    return key.startswith("scaleml.") and key not in (
        "scaleml.promotion",
        "scaleml.model_uri",
        "scaleml.contract",
        "scaleml.stopped_early",
        "scaleml.contract_mode",
    )


def _when(milliseconds: int | None) -> str:
    import datetime

    if not milliseconds:
        return "?"
    moment = datetime.datetime.fromtimestamp(milliseconds / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
