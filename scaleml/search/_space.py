"""Search spaces written in JSON, turned into what scikit-learn and dask-ml searches take.

A space maps each estimator parameter to one of these forms:

================================================================  ==============================
JSON                                                              becomes
================================================================  ==============================
``[0.1, 1, 10]``, ``["l1", "l2"]``, ``[true, false]``             that list (finite)
``{"range": {"start": 1, "stop": 10, "step": 2}}``                ``list(range(...))`` (finite;
                                                                  integers; ``start`` defaults
                                                                  to 0, ``step`` to 1)
``{"logspace": {"start": -5, "stop": 0, "num": 20}}``             ``numpy.logspace`` as a list
                                                                  (finite; base 10, or ``base``)
``{"linspace": {"start": 0, "stop": 1, "num": 11}}``              ``numpy.linspace`` as a list
                                                                  (finite)
``{"distribution": "loguniform", "low": 1e-5, "high": 1}``        ``scipy.stats.loguniform``
                                                                  (``0 < low < high``)
``{"distribution": "uniform", "low": 0, "high": 1}``              ``scipy.stats.uniform`` on
                                                                  ``[low, high]``
``{"distribution": "randint", "low": 1, "high": 10}``             ``scipy.stats.randint``:
                                                                  integers ``low <= k < high``
================================================================  ==============================

Finite forms become plain Python lists (so best parameters are plain values); distributions
can only be sampled, so grid searches refuse them. From Python, NumPy arrays and objects with
an ``rvs`` method (scipy.stats distributions) are accepted as they are.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.stats

from scaleml.errors import SearchSpaceError

DISTRIBUTIONS: tuple[str, ...] = ("loguniform", "uniform", "randint")
"""The ``distribution`` names a space may use."""
SEQUENCES: tuple[str, ...] = ("range", "logspace", "linspace")
"""The finite sequence forms a space may use."""
_MAX_VALUES = 1_000_000


def parse_space(space: dict[str, Any], *, grid: bool = False) -> dict[str, Any]:
    """Turn a JSON search space into a parameter space for scikit-learn / dask-ml searches.

    Args:
        space: parameter name -> a list of values, ``{"distribution": ..., "low": ...,
            "high": ...}``, ``{"range": {...}}``, ``{"logspace": {...}}`` or
            ``{"linspace": {...}}`` (see the module documentation).
        grid: refuse distributions (a grid search needs finite lists).

    Returns:
        parameter name -> a list of plain values or a scipy.stats frozen distribution.

    Raises:
        SearchSpaceError: the space is not a non-empty object, or a parameter's entry is
            invalid; the message names the parameter and the accepted forms.
    """
    if not isinstance(space, dict) or not space:
        raise SearchSpaceError(
            "a search space must be a non-empty JSON object of parameter name -> values, got "
            f"{_short(space)}"
        )
    parsed: dict[str, Any] = {}
    for name, entry in space.items():
        if not isinstance(name, str) or not name:
            raise SearchSpaceError(f"search space parameter names must be text, got {name!r}")
        value = _parse_entry(name, entry)
        if grid and not isinstance(value, list):
            raise SearchSpaceError(
                f"search space parameter {name!r}: a grid search needs a finite list of values "
                f"(a list, range, logspace or linspace), got a distribution"
            )
        parsed[name] = value
    return parsed


def check_values(estimator: Any, space: dict[str, Any]) -> None:
    """Check every candidate value of a parsed ``space`` against ``estimator``'s own parameter
    constraints (scikit-learn's ``_parameter_constraints``), before any work starts.

    Each value of a list is set on a clone of the estimator, which validates it as ``fit``
    would; a distribution is checked at both ends of its range. Estimators without declared
    constraints (XGBoost, LightGBM) are not checked here. Combinations of values that only
    ``fit`` refuses (a solver that does not support a penalty) still fail at fit time.

    Raises:
        SearchSpaceError: a value is refused; the message names the parameter and the value.
    """
    from sklearn.base import clone

    for name, values in space.items():
        for value in _candidates(values):
            try:
                candidate = clone(estimator).set_params(**{name: value})
            except (ValueError, TypeError) as exc:
                raise SearchSpaceError(
                    f"search space parameter {name!r}: value {_short(value)} is refused: {exc}"
                ) from None
            prefix = name.rpartition("__")[0]
            owner = candidate.get_params(deep=True).get(prefix) if prefix else candidate
            validate = getattr(owner, "_validate_params", None)
            if validate is None or not hasattr(owner, "_parameter_constraints"):
                continue
            try:
                validate()
            except (ValueError, TypeError) as exc:
                raise SearchSpaceError(
                    f"search space parameter {name!r}: value {_short(value)} is refused: {exc}"
                ) from None


def _candidates(values: Any) -> list[Any]:
    """The values of a space entry to check: a list's values, a distribution's ends."""
    if isinstance(values, list | tuple | np.ndarray):
        return [_plain(v) for v in values]
    support = getattr(values, "support", None)
    if callable(support):
        low, high = (_plain(v) for v in support())
        if getattr(getattr(values, "dist", None), "name", "") == "randint":
            return [int(low), int(high)]  # randint's support is [low, high - 1]
        return [v for v in (low, high) if math.isfinite(v)]
    return []


def is_finite(values: Any) -> bool:
    """Whether a parsed space entry is a finite list (not a distribution)."""
    return isinstance(values, list)


def describe_space(space: dict[str, Any]) -> dict[str, str]:
    """A short text per parameter (``list[1000] 0.01 .. 10``, ``loguniform(1e-05, 1)``), for
    logs and run parameters where the whole space would be too long."""
    return {name: _describe(values) for name, values in space.items()}


def _parse_entry(name: str, entry: Any) -> Any:
    if hasattr(entry, "rvs"):
        return entry
    if isinstance(entry, np.ndarray):
        entry = entry.tolist()
    if isinstance(entry, list | tuple):
        if not entry:
            raise SearchSpaceError(f"search space parameter {name!r} has an empty list of values")
        return [_plain(v) for v in entry]
    if isinstance(entry, dict):
        if "distribution" in entry:
            return _distribution(name, entry)
        forms = [key for key in SEQUENCES if key in entry]
        if len(forms) == 1 and len(entry) == 1:
            return _sequence(name, forms[0], entry[forms[0]])
    raise SearchSpaceError(
        f"search space parameter {name!r} must be a list of values, "
        '{"distribution": "loguniform"|"uniform"|"randint", "low": L, "high": H}, '
        '{"range": {...}}, {"logspace": {...}} or {"linspace": {...}}; got '
        f"{_short(entry)}"
    )


def _distribution(name: str, entry: dict[str, Any]) -> Any:
    kind = entry["distribution"]
    if kind not in DISTRIBUTIONS:
        raise SearchSpaceError(
            f"search space parameter {name!r}: distribution must be one of "
            f"{', '.join(DISTRIBUTIONS)}, got {kind!r}"
        )
    _check_keys(name, entry, required={"distribution", "low", "high"}, optional=set())
    low = _number(name, "low", entry["low"], integer=kind == "randint")
    high = _number(name, "high", entry["high"], integer=kind == "randint")
    if not low < high:
        raise SearchSpaceError(
            f"search space parameter {name!r}: low must be below high, got low={low!r}, "
            f"high={high!r}"
        )
    if kind == "loguniform":
        if low <= 0:
            raise SearchSpaceError(
                f"search space parameter {name!r}: a loguniform distribution needs low > 0, "
                f"got low={low!r}"
            )
        return scipy.stats.loguniform(low, high)
    if kind == "uniform":
        return scipy.stats.uniform(loc=low, scale=high - low)
    return scipy.stats.randint(low, high)


def _sequence(name: str, form: str, spec: Any) -> list[Any]:
    if not isinstance(spec, dict):
        raise SearchSpaceError(
            f"search space parameter {name!r}: {form} must be an object like "
            f"{_EXAMPLES[form]}, got {_short(spec)}"
        )
    label = f"{name}.{form}"
    if form == "range":
        _check_keys(label, spec, required={"stop"}, optional={"start", "step"})
        start = _number(label, "start", spec.get("start", 0), integer=True)
        stop = _number(label, "stop", spec["stop"], integer=True)
        step = _number(label, "step", spec.get("step", 1), integer=True)
        if step == 0:
            raise SearchSpaceError(f"search space parameter {name!r}: range step must not be 0")
        values = range(start, stop, step)
        if not values:
            raise SearchSpaceError(
                f"search space parameter {name!r}: range(start={start}, stop={stop}, "
                f"step={step}) is empty"
            )
        if len(values) > _MAX_VALUES:
            raise SearchSpaceError(
                f"search space parameter {name!r}: range has {len(values):,} values, more "
                f"than {_MAX_VALUES:,}"
            )
        return list(values)
    optional = {"base"} if form == "logspace" else set()
    _check_keys(label, spec, required={"start", "stop", "num"}, optional=optional)
    start = _number(label, "start", spec["start"])
    stop = _number(label, "stop", spec["stop"])
    num = _number(label, "num", spec["num"], integer=True)
    if not 1 <= num <= _MAX_VALUES:
        raise SearchSpaceError(
            f"search space parameter {name!r}: {form} num must be between 1 and "
            f"{_MAX_VALUES:,}, got {num!r}"
        )
    if form == "logspace":
        base = _number(label, "base", spec.get("base", 10))
        if base <= 0 or base == 1:
            raise SearchSpaceError(
                f"search space parameter {name!r}: logspace base must be > 0 and not 1, "
                f"got {base!r}"
            )
        return np.logspace(start, stop, num=num, base=base).tolist()
    return np.linspace(start, stop, num=num).tolist()


_EXAMPLES = {
    "range": '{"start": 1, "stop": 10, "step": 1}',
    "logspace": '{"start": -5, "stop": 0, "num": 20}',
    "linspace": '{"start": 0, "stop": 1, "num": 11}',
}


def _check_keys(
    label: str, spec: dict[str, Any], *, required: set[str], optional: set[str]
) -> None:
    missing = sorted(required - set(spec))
    unknown = sorted(set(spec) - required - optional)
    if missing or unknown:
        problem = f"missing {missing}" if missing else f"unknown key(s) {unknown}"
        raise SearchSpaceError(
            f"search space parameter {label!r}: {problem}; expected keys "
            f"{sorted(required | optional)}"
        )


def _number(label: str, key: str, value: Any, *, integer: bool = False) -> Any:
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or not math.isfinite(value):
        wanted = "an integer" if integer else "a finite number"
        raise SearchSpaceError(
            f"search space parameter {label!r}: {key} must be {wanted}, got {_short(value)}"
        )
    return int(value) if integer else float(value)


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _describe(values: Any) -> str:
    if isinstance(values, list | tuple | np.ndarray):
        values = list(values)
        if len(values) <= 6:
            return repr([_plain(v) for v in values])
        numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
        if numeric:
            return f"list[{len(values)}] {min(values):.6g} .. {max(values):.6g}"
        return f"list[{len(values)}] {_plain(values[0])!r}, {_plain(values[1])!r}, ..."
    dist = getattr(values, "dist", None)
    if dist is not None:
        args = ", ".join(f"{a:.6g}" for a in getattr(values, "args", ()))
        kwds = ", ".join(f"{k}={v:.6g}" for k, v in getattr(values, "kwds", {}).items())
        return f"{dist.name}({', '.join(p for p in (args, kwds) if p)})"
    return type(values).__name__


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
