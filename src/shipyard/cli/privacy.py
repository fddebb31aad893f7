"""``shipyard privacy …`` and ``shipyard retention …``: (being built)."""

from __future__ import annotations

import typer

privacy_app = typer.Typer(no_args_is_help=True)
retention_app = typer.Typer(no_args_is_help=True)
