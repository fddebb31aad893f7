"""``shipyard review …`` and ``shipyard policy …``: (being built)."""

from __future__ import annotations

import typer

review_app = typer.Typer(no_args_is_help=True)
policy_app = typer.Typer(no_args_is_help=True)
