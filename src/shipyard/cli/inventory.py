"""``shipyard inventory``: every registered model with its risk tier, stages, approvals and health."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import emit_json, state, table


def inventory(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Option("--name", help="Only models whose name contains this.")] = None,
    risk: Annotated[str | None, typer.Option("--risk", help="Only this risk tier.")] = None,
) -> None:
    """The model inventory: one line per model (status, risk, latest version and stage, approvals, alerts)."""
    st = state(ctx)
    items = st.client.model_inventory(name_like=name, risk_tier=risk)
    if st.json:
        emit_json(items)
        return
    grid = table("model", "status", "risk", "latest", "stage", "approvals", "policy", "aliases", "endpoints", "alerts")
    for item in items:
        latest = item.versions[-1] if item.versions else None
        policy = "-"
        if latest and latest.policy:
            policy = "override" if latest.policy["override"] else ("pass" if latest.policy["passed"] else "blocked")
        grid.add_row(
            item.name,
            item.status,
            item.risk_tier or "-",
            str(latest.version) if latest else "-",
            latest.stage if latest else "-",
            str(latest.approvals) if latest else "-",
            policy,
            " ".join(f"@{a}={v}" for a, v in sorted(item.aliases.items())) or "-",
            " ".join(e["name"] for e in item.endpoints) or "-",
            str(len(item.open_alerts)),
        )
    st.out.print(grid)
