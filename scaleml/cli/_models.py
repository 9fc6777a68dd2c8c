"""``scaleml models show``: a registered model version's card."""

from __future__ import annotations

import click

from scaleml.cli._app import cli


@cli.group()
def models() -> None:
    """Inspect registered models."""


@models.command("show")
@click.argument("model")
def models_show(model: str) -> None:
    """Print the model card of MODEL (NAME, NAME@alias or NAME/version): provenance,
    signature, contract summary, evaluation metrics and aliases."""
    from scaleml.config import get_settings
    from scaleml.monitor._card import model_card

    for line in model_card(model, settings=get_settings()).lines():
        click.echo(line)
