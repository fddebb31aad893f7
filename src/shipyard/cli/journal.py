"""``shipyard journal tail``: print journal entries, and with ``--follow`` keep polling for new ones.

Without ``--after`` it prints the last ``--limit`` matching entries (like ``tail``); with
``--after SEQ`` the first ``--limit`` entries after SEQ. ``--follow`` then polls every
``--interval`` seconds from the last entry seen and prints what is new until Ctrl-C. With
``--json`` every entry is one JSON object on its own line (JSON Lines), flushed at once.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from typing import Annotated, Any

import typer
from rich.text import Text

from shipyard.cli.output import State, clip, dumps, emit_json, short, state, when
from shipyard.store.entities import JournalEntry

app = typer.Typer(no_args_is_help=True)

PAGE = 1000


def _print(st: State, entry: JournalEntry) -> None:
    if st.json:
        emit_json(entry, lines=True)
        return
    line = Text(f"{entry.seq:>6}  ", style="dim")
    line.append(when(entry.ts))
    line.append("  ")
    line.append(entry.actor, style="cyan")
    line.append("  ")
    line.append(entry.action, style="bold")
    line.append(f"  {entry.entity_type}:{short(entry.entity_id)}")
    if entry.payload:
        line.append("  " + clip(dumps(entry.payload), 100), style="dim")
    st.out.print(line, soft_wrap=True)


def _read_all(st: State, after: int, upto: int | None, filters: dict[str, Any], keep: int | None) -> list[JournalEntry]:
    """Entries with ``after < seq <= upto``, page by page; only the last ``keep`` are retained."""
    kept: deque[JournalEntry] = deque(maxlen=keep)
    while True:
        batch = st.client.read_journal(after=after, limit=PAGE, **filters)
        kept.extend(e for e in batch if upto is None or e.seq <= upto)
        if len(batch) < PAGE or (upto is not None and batch[-1].seq >= upto):
            return list(kept)
        after = batch[-1].seq


def _last_entries(st: State, limit: int, upto: int, filters: dict[str, Any]) -> list[JournalEntry]:
    """The last ``limit`` matching entries with ``seq <= upto``: read a window back from ``upto``, widening it."""
    window = limit
    while True:
        start = max(0, upto - window)
        entries = _read_all(st, start, upto, filters, keep=limit)
        if len(entries) >= limit or start == 0:
            return entries
        window *= 4


@app.command("tail")
def tail(
    ctx: typer.Context,
    after: Annotated[int | None, typer.Option("--after", min=0, help="Start after this sequence number.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000, help="Entries to print first.")] = 20,
    entity_type: Annotated[str | None, typer.Option("--entity-type", help="e.g. run, experiment, model.")] = None,
    entity_id: Annotated[str | None, typer.Option("--entity-id", help="Only entries about this id.")] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Exact action, or a prefix ending in '.' (e.g. 'run.').")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep polling for new entries (Ctrl-C stops).")
    ] = False,
    interval: Annotated[float, typer.Option("--interval", min=0.01, help="Seconds between polls.")] = 1.0,
    max_polls: Annotated[int | None, typer.Option("--max-polls", hidden=True, min=0)] = None,
) -> None:
    """Print journal entries: seq, time, actor, action, entity and a short payload."""
    st = state(ctx)
    filters = {"entity_type": entity_type, "entity_id": entity_id, "action": action}
    if after is not None:
        entries = st.client.read_journal(after=after, limit=limit, **filters)
        cursor = entries[-1].seq if entries else after
    else:
        cursor = st.client.last_journal_seq()
        entries = _last_entries(st, limit, cursor, filters)
    for entry in entries:
        _print(st, entry)
    sys.stdout.flush()
    if not follow:
        if not entries and not st.json:
            st.err.print("no journal entries", style="dim")
        return
    polls = 0
    try:
        while max_polls is None or polls < max_polls:
            time.sleep(interval)
            polls += 1
            while True:
                batch = st.client.read_journal(after=cursor, limit=PAGE, **filters)
                for entry in batch:
                    _print(st, entry)
                    cursor = entry.seq
                sys.stdout.flush()
                if len(batch) < PAGE:
                    break
    except KeyboardInterrupt:
        st.err.print()  # end the ^C line; stopping is not an error
