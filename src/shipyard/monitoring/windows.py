"""Window specs: fixed time windows (``"15m"``, ``"1h"``, ``"1d"``), windows of N predictions
(``"5000p"``), and their alignment.

Time windows are aligned to multiples of their length since the epoch (UTC), so every worker and
every run cuts the same windows, and stored windows of one length merge into any longer one.
"""

from __future__ import annotations

import re
from typing import Any

from shipyard.core.errors import InvalidInput

MAX_MS = 2**62  # beyond, not a time a 64-bit millisecond clock can hold
_UNITS_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
_TIME = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_COUNT = re.compile(r"^\s*(\d+)\s*(p|predictions?|rows?)?\s*$")


def parse_duration_ms(text: str, field: str = "window") -> int:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` in milliseconds."""
    match = _TIME.match(str(text))
    if not match:
        raise InvalidInput(f"{field} takes a duration like 15m, 1h or 1d, not {text!r}", field=field)
    value = float(match.group(1)) * _UNITS_MS[match.group(2)]
    if not value < MAX_MS:
        raise InvalidInput(f"{field} {text!r} is too long", field=field)
    ms = int(value)
    if ms < 1_000:
        raise InvalidInput(f"{field} must be at least 1s, not {text!r}", field=field)
    return ms


def parse_window(text: str | int) -> dict[str, Any]:
    """A window spec: a duration (``"1h"``) or a number of predictions (``"1000p"``, or a bare number)."""
    if isinstance(text, int) and not isinstance(text, bool):
        text = str(text)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("window takes a duration like 1h or a prediction count like 1000p", field="window")
    count = _COUNT.match(text)
    if count:
        rows = int(count.group(1))
        if rows < 1:
            raise InvalidInput("a window of predictions needs at least 1 row", field="window")
        return {"kind": "count", "rows": rows, "text": f"{rows}p"}
    return {"kind": "time", "ms": parse_duration_ms(text), "text": text.strip()}


def align_down(ts: int, length_ms: int) -> int:
    return ts - ts % length_ms


def time_windows(first: int, now: int, length_ms: int) -> list[tuple[int, int]]:
    """The complete windows ``[start, end)`` from the one holding ``first`` up to ``now``."""
    start = align_down(first, length_ms)
    out = []
    while start + length_ms <= now:
        out.append((start, start + length_ms))
        start += length_ms
    return out
