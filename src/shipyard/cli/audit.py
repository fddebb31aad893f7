"""``shipyard audit verify``: recompute the journal's hash chain and name the first broken entry."""

from __future__ import annotations

import typer

from shipyard.cli.output import emit_json, key_values, state

app = typer.Typer(no_args_is_help=True)


@app.command("verify")
def verify(ctx: typer.Context) -> None:
    """Check that no journal entry was altered, inserted or removed (exit 1 and the first bad one if so)."""
    st = state(ctx)
    result = st.client.verify_journal()
    if st.json:
        emit_json(result)
    elif result["ok"]:
        key_values(st, [("journal", "intact"), ("entries", result["checked"]), ("last hash", result["last_hash"])])
    else:
        st.err.print(
            f"journal broken at seq {result['first_bad_seq']}: {result['problem']} ({result['detail']}); "
            f"{result['checked']} entries before it verified",
            markup=False,
            highlight=False,
        )
    if not result["ok"]:
        raise typer.Exit(1)
