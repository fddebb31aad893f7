"""``shipyard demo``: fill the Shipyard home with the lifecycle demo (``shipyard.demo.run_demo``), then
serve it with the dashboard and the closed loop running (``shipyard.demo.serve``) until Ctrl-C."""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import emit_json, key_values, state


def demo(
    ctx: typer.Context,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="End by serving the dashboard with the loop running (Ctrl-C stops)."),
    ] = True,
    port: Annotated[int, typer.Option("--port", "-p", min=0, max=65535, help="The dashboard's port.")] = 8080,
) -> None:
    """Run the end-to-end lifecycle demo, then serve its dashboard with the closed loop running."""
    from shipyard.demo import run_demo

    st = state(ctx)
    console = st.err if st.json else st.out
    result = run_demo(str(st.home) if st.home is not None else None, console=console)
    if st.json:
        emit_json(result)
    elif isinstance(result, dict) and result:
        key_values(st, [(str(k), v) for k, v in result.items()], title="demo")
    if serve:
        from shipyard.demo.serve import serve_demo

        serve_demo(str(st.home) if st.home is not None else None, port=port, console=console)
