"""``--promote``: the promotion gate's option and report, shared by the commands that register."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

Command = TypeVar("Command", bound=Callable[..., Any])

# scaleml.tracking.PROMOTE_POLICIES, spelled out so that --help does not import MLflow.
_POLICIES = ("always", "if-better", "never")

promote_option: Callable[[Command], Command] = click.option(
    "--promote",
    type=click.Choice(_POLICIES),
    default="if-better",
    show_default=True,
    help="With --register: move the alias to the new version always, only if it scores at "
    "least as well as the alias's holder on the same validation blocks, or never.",
)


def print_promotion(promotion: Any) -> None:
    """Print the registered version and the gate's decision (both scores side by side)."""
    if promotion is None:
        return
    for line in promotion.lines():
        click.echo(line)
