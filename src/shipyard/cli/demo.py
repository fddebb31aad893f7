"""``shipyard demo``: fill the Shipyard home with a small demo project (``shipyard.demo.run_demo``)."""

from __future__ import annotations

import typer

from shipyard.cli.output import emit_json, key_values, state


def demo(ctx: typer.Context) -> None:
    """Create demo experiments, runs and a registered model in the Shipyard home."""
    from shipyard.demo import run_demo

    st = state(ctx)
    result = run_demo(str(st.home) if st.home is not None else None, console=st.err if st.json else st.out)
    if st.json:
        emit_json(result)
    elif isinstance(result, dict) and result:
        key_values(st, [(str(k), v) for k, v in result.items()], title="demo")
