"""Contract statistics gathered by the training's own pass over the blocks.

The incremental training's ``fit_blocks`` tasks read every training block; with profiling on,
the reading thread also profiles the block's columns (from the Arrow columns, as
:func:`scaleml.monitor.compute_contract` would see them) and the task returns one profile per
block. The validation tasks of the last epoch profile the final model's predictions. The
client folds the block profiles in a binary counter (:class:`ProfileFold`): at most one merged
profile per power of two, so the merges are as deep as a pairwise tree over the blocks and the
quantile error bound is the separate pass's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from scaleml.data._blocks import ParquetBlock, table_xy, to_xy
from scaleml.data._checks import check_xy
from scaleml.monitor._profile import Profile, merge_frames, profile_frame, profile_values

OUTPUT = "\0prediction"
"""The key of the model's output profile among a contract's column profiles."""

XYProfiles = tuple[np.ndarray, np.ndarray | None, dict[str, Profile]]


def read_profiled(
    block: Any, features: list[str], target: str | None, dtype: np.dtype
) -> XYProfiles:
    """Read one block as ``(X, y)``, as :func:`scaleml.data._blocks.read_xy` does, with the
    profile of each of its columns (features and target)."""
    columns = [*features, target] if target is not None else list(features)
    if isinstance(block, ParquetBlock):
        table = block.read_table(columns)
        profiles = {name: profile_values(table.column(name).to_pandas()) for name in columns}
        x, y = table_xy(table, features, target, dtype)
    else:
        frame = block.read(columns)
        profiles = profile_frame(frame, columns)
        x, y = to_xy(frame, features, target, dtype)
    check_xy(block, x, y, features, target)
    return x, y, profiles


def output_profile(predicted: Any) -> Profile:
    """The profile of a model's predictions on one block."""
    output = np.asarray(predicted)
    if output.ndim > 1 and output.shape[1] == 1:
        output = output.ravel()
    return profile_values(pd.Series(output))


class ProfileFold:
    """Block profiles folded as they arrive, in a binary counter: two merged profiles of the
    same number of blocks merge at once, so ``n`` blocks are merged ``ceil(log2 n)`` levels
    deep and at most ``log2 n`` merged profiles are held."""

    def __init__(self) -> None:
        self.parts = 0
        self._stack: list[tuple[int, dict[str, Profile]]] = []

    def add(self, profiles: dict[str, Profile]) -> None:
        """Fold one block's profiles in."""
        self.parts += 1
        size, merged = 1, profiles
        while self._stack and self._stack[-1][0] == size:
            _, previous = self._stack.pop()
            size, merged = 2 * size, merge_frames(previous, merged)
        self._stack.append((size, merged))

    def result(self) -> dict[str, Profile]:
        """The profiles of every block added (the smallest parts merged first)."""
        if not self._stack:
            return {}
        merged = self._stack[-1][1]
        for _, profiles in reversed(self._stack[:-1]):
            merged = merge_frames(profiles, merged)
        return merged


@dataclass(frozen=True)
class TrainingProfiles:
    """What a training's pass gathered for the contract."""

    data: dict[str, Profile]
    """The features' and the target's profiles over the training blocks."""
    data_parts: int
    output: Profile | None
    """The final model's predictions on the validation blocks (None: not scored)."""
    output_parts: int = 0
