"""``shipyard users|tokens|roles|login``: identities, API tokens and role grants."""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True)
