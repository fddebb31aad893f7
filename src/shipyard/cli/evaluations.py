"""``shipyard card|fairness|explain …``: (being built)."""

from __future__ import annotations

import typer

card_app = typer.Typer(no_args_is_help=True)
fairness_app = typer.Typer(no_args_is_help=True)
explain_app = typer.Typer(no_args_is_help=True)
