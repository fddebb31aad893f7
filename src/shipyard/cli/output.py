"""Shared CLI plumbing: the per-invocation state (lazy Client), JSON output, tables, formatting, errors.

Every command gets its :class:`State` from the root context: the global options, a lazily built
:class:`~shipyard.client.Client`, and the two rich consoles (stdout for results, stderr for
progress and errors). ``--json`` output goes through :func:`emit_json`, which serialises pydantic
entities with NaN and ±inf as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pydantic_core
import typer
from pydantic import BaseModel
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from shipyard.core.errors import ShipyardError
from shipyard.core.time import ms_to_iso

if TYPE_CHECKING:
    from shipyard.client import Client

SHORT_ID = 8
PIPE_WIDTH = 200  # console width when stdout is not a terminal: tables in pipes and tests stay unwrapped


def _console(stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    width: int | None = None
    if not stream.isatty() and not os.environ.get("COLUMNS"):
        width = PIPE_WIDTH
    return Console(stderr=stderr, width=width, highlight=False)


@dataclass
class State:
    """Global options of one ``shipyard`` invocation, and the resources built from them on demand."""

    home: Path | None = None
    uri: str | None = None
    json: bool = False
    debug: bool = False
    out: Console = field(default_factory=_console)
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            from shipyard.client import Client

            self._client = Client(self.uri, home=self.home)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            client.close()


def state(ctx: typer.Context) -> State:
    root = ctx.find_root()
    if not isinstance(root.obj, State):
        root.obj = State()
    return root.obj


# --------------------------------------------------------------------------------------------------
# JSON


def jsonable(value: Any) -> Any:
    """Plain Python data for ``value``; pydantic models are dumped in python mode so floats stay floats."""
    if isinstance(value, BaseModel):
        return jsonable(value.model_dump())
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    return pydantic_core.to_json(jsonable(value), indent=indent, inf_nan_mode="strings").decode()


def emit_json(value: Any, *, lines: bool = False) -> None:
    """Write ``value`` to stdout as JSON (indented), or as one compact line with ``lines=True``."""
    sys.stdout.write(dumps(value, indent=None if lines else 2) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------------
# Formatting


def short(identifier: str | None, length: int = SHORT_ID) -> str:
    if not identifier:
        return ""
    return identifier[:length]


def short_digest(digest: str | None, length: int = 12) -> str:
    if not digest:
        return ""
    algo, _, hexdigest = digest.partition(":")
    return f"{algo}:{hexdigest[:length]}" if hexdigest else digest[:length]


def when(ms: int | None) -> str:
    return ms_to_iso(ms) or "-"


def duration(start: int | None, end: int | None) -> str:
    if start is None or end is None:
        return "-"
    seconds = max(end - start, 0) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.6g}"


def clip(value: Any, width: int = 40) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def human_size(size: int | None) -> str:
    if size is None:
        return ""
    amount = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{int(amount)} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{size} B"  # pragma: no cover


def cell(value: Any, style: str | None = None) -> Text:
    """A table cell holding ``value`` literally (user text never becomes rich markup)."""
    return Text("" if value is None else str(value), style=style or "")


def table(*columns: str, title: str | None = None, **column_options: dict[str, Any]) -> Table:
    grid = Table(
        box=box.SIMPLE_HEAD, title=title, title_justify="left", title_style="bold", pad_edge=False, show_edge=False
    )
    for name in columns:
        grid.add_column(name, **column_options.get(name, {}))
    return grid


def key_values(st: State, rows: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """Aligned ``key  value`` lines, never wrapped, so ids and digests are printed whole."""
    rows = [(k, v) for k, v in rows]
    if title:
        st.out.print(Text(title, style="bold"))
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        line = Text(f"{key:<{width}}  ", style="cyan")
        line.append_text(value if isinstance(value, Text) else Text("-" if value in (None, "") else str(value)))
        st.out.print(line, soft_wrap=True)


def done(st: State, verb: str, kind: str, name: str, ident: str | None = None) -> None:
    """A one-line confirmation such as ``created experiment demo (4f2a…)``."""
    line = Text(f"{verb} {kind} ")
    line.append(name, style="bold")
    if ident and ident != name:
        line.append(f" ({ident})")
    st.out.print(line, soft_wrap=True)


def mapping_table(title: str, values: dict[str, Any], *, numeric: bool = False) -> Table:
    grid = table("key", "value", title=title)
    for key in sorted(values):
        value = values[key]
        grid.add_row(cell(key), cell(number(value) if numeric else value))
    return grid


def parse_pairs(pairs: Sequence[str], what: str = "tag") -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}``; anything without '=' is a usage error."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint=what)
        result[key] = value
    return result


def import_from_cwd() -> None:
    """Like ``python -m``: make modules in the current directory importable (pipeline targets)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value that parses as JSON (numbers, true, null, lists) is taken as JSON, else as a string."""
    values: dict[str, Any] = {}
    for key, text in parse_pairs(pairs, "param").items():
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


# --------------------------------------------------------------------------------------------------
# Errors


def error_line(exc: BaseException) -> str:
    """The one line shown for a failure: the message (first line) and the field to blame."""
    if isinstance(exc, ShipyardError):
        text = (exc.message or "").strip()
        message = text.splitlines()[0] if text else exc.code
        if exc.field:
            message += f" [field: {exc.field}]"
        return f"error: {message}"
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    return f"error: {type(exc).__name__}: {first}" if first else f"error: {type(exc).__name__}"


def report_error(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    sys.stderr.write(error_line(exc) + "\n")
    sys.stderr.flush()
