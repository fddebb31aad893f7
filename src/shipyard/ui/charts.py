"""Plotly figures as plain dicts (drawn in the browser by plotly.js) and server-side downsampling.

A metric series of 100,000 points is cut to a few thousand before it leaves the server:
:func:`downsample` keeps each bucket's first, lowest, highest and last point (M4), so spikes and the
overall shape survive while the page stays fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

DEFAULT_POINTS = 2000
LAYOUT = {
    "margin": {"l": 50, "r": 20, "t": 36, "b": 40},
    "height": 320,
    "paper_bgcolor": "rgba(0,0,0,0)",
    "plot_bgcolor": "rgba(0,0,0,0)",
    "legend": {"orientation": "h", "y": -0.2},
}


def downsample(x: Sequence[float], y: Sequence[float], points: int = DEFAULT_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most ``points`` points of the series, keeping every bucket's first, min, max and last.

    ``x`` must be sorted ascending. Series already short enough come back unchanged.
    """
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise ValueError("x and y must be one-dimensional and of the same length")
    if points < 4:
        raise ValueError("points must be at least 4")
    n = len(xs)
    if n <= points:
        return xs, ys
    buckets = points // 4
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    starts, ends = edges[:-1], edges[1:]
    keep = np.zeros(n, dtype=bool)
    keep[starts] = True
    keep[ends - 1] = True
    # lowest and highest of each bucket: reduceat over the bucket starts (buckets are never empty).
    # Only NaN is set aside: ±inf are real metric values and must survive as the extremes they are.
    nan = np.isnan(ys)
    order_low = np.where(nan, np.inf, ys)
    order_high = np.where(nan, -np.inf, ys)
    lows = np.minimum.reduceat(order_low, starts)
    highs = np.maximum.reduceat(order_high, starts)
    bucket_of = np.repeat(np.arange(buckets), ends - starts)
    is_low = order_low == lows[bucket_of]
    is_high = order_high == highs[bucket_of]
    # the first index in each bucket that reaches the bucket's low / high
    for mask in (is_low, is_high):
        hit = np.flatnonzero(mask)
        first = hit[np.unique(bucket_of[hit], return_index=True)[1]]
        keep[first] = True
    return xs[keep], ys[keep]


def line_figure(
    series: Sequence[dict[str, Any]], title: str = "", x_title: str = "", y_title: str = "", **layout: Any
) -> dict[str, Any]:
    """One line per entry of ``series``: ``{"name", "x", "y"}`` (optionally ``"mode"``, ``"yaxis"``)."""
    traces = [
        {
            "type": "scattergl" if len(s["x"]) > 1000 else "scatter",
            "mode": s.get("mode", "lines" if len(s["x"]) > 50 else "lines+markers"),
            "name": s["name"],
            "x": list(s["x"]),
            "y": list(s["y"]),
            **({"yaxis": s["yaxis"]} if "yaxis" in s else {}),
        }
        for s in series
    ]
    return {
        "data": traces,
        "layout": {**LAYOUT, "title": {"text": title}, "xaxis": {"title": {"text": x_title}},
                   "yaxis": {"title": {"text": y_title}}, **layout},
    }


def bar_figure(
    categories: Sequence[Any], bars: dict[str, Sequence[float]], title: str = "", y_title: str = "", **layout: Any
) -> dict[str, Any]:
    """Grouped bars: one trace per entry of ``bars`` over the shared ``categories``."""
    traces = [{"type": "bar", "name": name, "x": [str(c) for c in categories], "y": list(values)}
              for name, values in bars.items()]
    return {"data": traces, "layout": {**LAYOUT, "barmode": "group", "title": {"text": title},
                                       "yaxis": {"title": {"text": y_title}}, **layout}}


def dag_figure(
    nodes: Sequence[dict[str, Any]], edges: Sequence[tuple[str, str]], title: str = "", **layout: Any
) -> dict[str, Any]:
    """A left-to-right graph: each node ``{"id", "label", "color"?, "hover"?}`` placed in the column
    of its longest path from a root; ``edges`` are ``(from_id, to_id)``."""
    ids = [n["id"] for n in nodes]
    parents: dict[str, list[str]] = {i: [] for i in ids}
    for a, b in edges:
        if a in parents and b in parents:
            parents[b].append(a)
    depth: dict[str, int] = {}

    def depth_of(node: str, seen: frozenset[str] = frozenset()) -> int:
        if node not in depth:
            ups = [p for p in parents[node] if p not in seen]
            depth[node] = 0 if not ups else 1 + max(depth_of(p, seen | {node}) for p in ups)
        return depth[node]

    columns: dict[int, list[str]] = {}
    for i in ids:
        columns.setdefault(depth_of(i), []).append(i)
    position: dict[str, tuple[float, float]] = {}
    for column, members in columns.items():
        for row, node in enumerate(members):
            position[node] = (float(column), -(row - (len(members) - 1) / 2.0))
    edge_x: list[float | None] = []
    edge_y: list[float | None] = []
    for a, b in edges:
        if a in position and b in position:
            edge_x += [position[a][0], position[b][0], None]
            edge_y += [position[a][1], position[b][1], None]
    node_trace = {
        "type": "scatter",
        "mode": "markers+text",
        "x": [position[i][0] for i in ids],
        "y": [position[i][1] for i in ids],
        "text": [n.get("label", n["id"]) for n in nodes],
        "hovertext": [n.get("hover", n.get("label", n["id"])) for n in nodes],
        "hoverinfo": "text",
        "textposition": "bottom center",
        "marker": {"size": 22, "color": [n.get("color", "#4c78a8") for n in nodes], "line": {"width": 1}},
        "showlegend": False,
    }
    edge_trace = {"type": "scatter", "mode": "lines", "x": edge_x, "y": edge_y, "hoverinfo": "skip",
                  "line": {"color": "#999", "width": 1.5}, "showlegend": False}
    width = max(columns) + 1 if columns else 1
    height = max((len(m) for m in columns.values()), default=1)
    axis = {"visible": False, "zeroline": False}
    return {
        "data": [edge_trace, node_trace],
        "layout": {**LAYOUT, "title": {"text": title}, "height": max(240, 90 * height + 80),
                   "xaxis": {**axis, "range": [-0.5, width - 0.5]}, "yaxis": axis, **layout},
    }


def histogram_pair(
    edges: Sequence[float], reference: Sequence[float], current: Sequence[float], title: str = ""
) -> dict[str, Any]:
    """Reference against current as overlaid bars over shared bin ``edges`` (fractions per bin)."""
    centers = [(a + b) / 2.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    widths = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
    traces = [
        {"type": "bar", "name": "reference", "x": centers, "y": list(reference), "width": widths, "opacity": 0.55},
        {"type": "bar", "name": "current", "x": centers, "y": list(current), "width": widths, "opacity": 0.55},
    ]
    return {"data": traces, "layout": {**LAYOUT, "barmode": "overlay", "height": 260, "title": {"text": title},
                                       "yaxis": {"title": {"text": "fraction"}}}}
