"""Pieces every job spec shares: the dataset part, the bounds any spec must keep to be stored
identically in both job stores, and the check of those bounds."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_DEPTH = 10
"""Containers nest at most this deep in a spec (the spec itself is level 0)."""
MAX_TEXT = 4096
"""Characters of any string value in a spec (keys: ``MAX_KEY``)."""
MAX_KEY = 256
MAX_ITEMS = 10_000
"""Items of any list or object in a spec."""
_MAX_INT = 2**63 - 1  # both job stores keep JSON numbers in this range exactly


class DatasetSpec(BaseModel):
    """Where the data is and how to read it (the arguments of :class:`scaleml.data.Dataset`)."""

    model_config = ConfigDict(extra="forbid")

    path: str | list[str] = Field(
        min_length=1,
        max_length=MAX_TEXT,
        description="File, directory, glob or fsspec URL (or a list of them), under the "
        "coordinator's data roots.",
    )
    target: str | None = Field(
        default=None, min_length=1, max_length=1000, description="The column to predict."
    )
    features: list[Annotated[str, Field(max_length=1000)]] | None = Field(
        default=None,
        max_length=MAX_ITEMS,
        description="Feature columns; default every column but the target.",
    )
    format: Literal["parquet", "csv"] | None = Field(default=None)
    validation_fraction: float = Field(default=0.2, ge=0.0, lt=1.0)
    split_seed: int = Field(default=0, ge=0)
    max_block_rows: int = Field(default=250_000, ge=1)
    storage_options: dict[str, Any] = Field(default_factory=dict, max_length=100)

    @field_validator("path")
    @classmethod
    def _paths_not_empty(cls, value: str | list[str]) -> str | list[str]:
        paths = [value] if isinstance(value, str) else value
        if not paths or any(not p.strip() for p in paths):
            raise ValueError("paths must be non-empty strings")
        return value


def check_limits(data: Any) -> Any:
    """Refuse a spec holding NUL characters or past the bounds (``MAX_*``), naming where."""
    where = _nul_location(data, ())
    if where is not None:
        raise ValueError(f"{where or 'spec'}: text may not contain NUL (\\x00) characters")
    problem = _out_of_bounds(data, ())
    if problem is not None:
        raise ValueError(problem)
    return data


def _out_of_bounds(value: Any, path: tuple[str, ...]) -> str | None:
    """What makes a spec unfit to store identically in both job stores (too deep, too long,
    too many items, a non-finite or out-of-range number, text that is not valid Unicode), with
    its dotted path; None when nothing does."""
    where = ".".join(path) or "spec"
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            return f"{where}: text longer than {MAX_TEXT} characters"
        return None if _is_unicode(value) else f"{where}: text is not valid Unicode"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{where}: NaN and infinite numbers are refused"
    if isinstance(value, int):
        return None if abs(value) <= _MAX_INT else f"{where}: integer out of range (+-2**63)"
    if not isinstance(value, dict | list | tuple):
        return None
    if len(path) >= MAX_DEPTH:
        return f"{where}: nested deeper than {MAX_DEPTH} levels"
    if len(value) > MAX_ITEMS:
        return f"{where}: more than {MAX_ITEMS} items"
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, item in items:
        if isinstance(key, str) and (len(key) > MAX_KEY or not _is_unicode(key)):
            return f"{where}: a key longer than {MAX_KEY} characters or not valid Unicode"
        found = _out_of_bounds(item, (*path, str(key)))
        if found is not None:
            return found
    return None


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates ("\ud800") from JSON escapes
        return False
    return True


def _nul_location(value: Any, path: tuple[str, ...]) -> str | None:
    """The dotted path of the first string (key or value) holding a NUL character: the job
    store cannot keep one (PostgreSQL refuses it in text and JSON)."""
    if isinstance(value, str):
        return ".".join(path) if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = (*path, str(key))
            if isinstance(key, str) and "\x00" in key:
                return ".".join(here)
            found = _nul_location(item, here)
            if found is not None:
                return found
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_location(item, (*path, str(index)))
            if found is not None:
                return found
    return None
