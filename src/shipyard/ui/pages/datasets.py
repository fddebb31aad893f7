"""Dashboard pages: datasets, a dataset's versions, and one version (schema, profile, checks, lineage, diff).

Everything shown comes from what registration stored: the schema and the profile (per-column
statistics and histograms, computed once by ``data/profile.py``), the contract validation reports
and the lineage edges. Nothing reads the data files, so a page over a billion-row version is as
fast as one over ten rows. Each column gets a small server-drawn SVG histogram; the column picked
(``?column=``) gets a full Plotly chart, overlaid with the ``?against=N`` version when diffing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.core.errors import InvalidInput, NotFound
from shipyard.data.entities import DatasetVersion
from shipyard.services import Services
from shipyard.ui.charts import LAYOUT
from shipyard.ui.web import render, services_of

router = APIRouter()

MAX_DATASETS = 500
MAX_VERSIONS = 200
MAX_REPORTS = 20
SPARK_WIDTH, SPARK_HEIGHT = 120, 28


@router.get("/datasets")
def dataset_list(request: Request) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    text = request.query_params.get("q", "").strip()
    # "_" stays a one-character wildcard: a slightly wider match is harmless on a name search
    pattern = "%" + text.replace("%", "") + "%" if text else None
    datasets = services.data.list_datasets(name_like=pattern)
    return render(request, "datasets_list.html", datasets=datasets[:MAX_DATASETS], total=len(datasets), q=text)


@router.get("/datasets/{name}")
def dataset_page(request: Request, name: str) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    dataset = services.data.get_dataset(name)
    versions = services.data.list_versions(name)
    contract = _contract(services, name)
    return render(
        request,
        "datasets_detail.html",
        dataset=dataset,
        versions=versions[:MAX_VERSIONS],
        more_versions=max(0, len(versions) - MAX_VERSIONS),
        contract=contract,
    )


@router.get("/datasets/{name}/{version}")
def version_page(request: Request, name: str, version: str) -> HTMLResponse:
    services = services_of(request)
    services.access.require("read")
    number = _version_number(version, "version")
    current = services.data.get_version(name, number)
    query = request.query_params
    against = None
    diff = None
    if query.get("against"):
        other = _version_number(query["against"], "against")
        against = services.data.get_version(name, other)
        diff = services.data.diff(against.ref, current.ref)
    columns = _columns(current)
    chosen = _chosen_column(columns, query.get("column", ""))
    reports = services.contracts.list_reports(current.ref)
    return render(
        request,
        "datasets_version.html",
        version=current,
        columns=columns,
        chosen=chosen,
        figure=column_figure(chosen["name"], current, against) if chosen else None,
        reports=reports[:MAX_REPORTS],
        more_reports=max(0, len(reports) - MAX_REPORTS),
        contract=_contract(services, name),
        lineage=services.data.lineage(current.ref),
        against=against,
        diff=diff,
        changes={c.name: c for c in diff.columns} if diff else {},
        siblings=[v.version for v in services.data.list_versions(name) if v.version != number][:MAX_VERSIONS],
        spark_width=SPARK_WIDTH,
        spark_height=SPARK_HEIGHT,
        node_link=node_link,
    )


def _version_number(text: str, field: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise InvalidInput(f"{field} must be a positive version number, not {text!r}", field=field)
    return int(text)


def _contract(services: Services, name: str) -> Any:
    try:
        return services.contracts.get_contract(name)
    except NotFound:
        return None


def _columns(version: DatasetVersion) -> list[dict[str, Any]]:
    """Schema joined with profile: one row per column, with its histogram drawn as SVG bars."""
    profile = (version.profile or {}).get("columns", {})
    rows = []
    for field in version.schema or [{"name": n, "type": p.get("type"), "nullable": None} for n, p in profile.items()]:
        stats = profile.get(field["name"], {})
        rows.append({**field, "stats": stats, "bars": spark_bars(stats)})
    return rows


def _chosen_column(columns: list[dict[str, Any]], wanted: str) -> dict[str, Any] | None:
    if wanted:
        for column in columns:
            if column["name"] == wanted:
                return column
        raise NotFound(f"no column {wanted!r} in this version", field="column")
    charted = [c for c in columns if c["bars"]]
    return charted[0] if charted else None


def _counts(stats: dict[str, Any]) -> tuple[list[str], list[float], list[float] | None]:
    """(labels, counts, bin edges or None) of a column's histogram or top values."""
    histogram = stats.get("histogram") or {}
    if histogram.get("counts"):
        edges = [float(e) for e in histogram["edges"]]
        labels = [f"{a:.4g} – {b:.4g}" for a, b in zip(edges[:-1], edges[1:], strict=True)]
        return labels, [float(c) for c in histogram["counts"]], edges
    top = stats.get("top") or []
    return [str(t["value"]) for t in top], [float(t["count"]) for t in top], None


def spark_bars(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """SVG rectangles (x, y, w, h, title) for a column's histogram, scaled to the sparkline box."""
    labels, counts, _ = _counts(stats)
    if not counts or max(counts) <= 0:
        return []
    width = SPARK_WIDTH / len(counts)
    peak = max(counts)
    bars = []
    for i, (label, count) in enumerate(zip(labels, counts, strict=True)):
        height = max(1.0, SPARK_HEIGHT * count / peak) if count else 0.0
        bars.append(
            {
                "x": round(i * width, 2),
                "y": round(SPARK_HEIGHT - height, 2),
                "w": round(max(width - 1, 1), 2),
                "h": round(height, 2),
                "title": f"{label}: {int(count):,}",
            }
        )
    return bars


def column_figure(name: str, version: DatasetVersion, against: DatasetVersion | None) -> dict[str, Any]:
    """A column's distribution as fractions per bin; with ``against``, that version overlaid.

    The two versions' profiles were binned independently (each between its own min and max), so
    each trace keeps its own bins; fractions keep versions of different sizes comparable.
    """
    traces = []
    for which, opacity in ((against, 0.5), (version, 0.6)):
        if which is None:
            continue
        stats = ((which.profile or {}).get("columns") or {}).get(name) or {}
        labels, counts, edges = _counts(stats)
        total = sum(counts) or 1.0
        trace: dict[str, Any] = {
            "type": "bar",
            "name": which.ref,
            "y": [c / total for c in counts],
            "opacity": opacity if against else 0.9,
        }
        if edges is not None:
            trace["x"] = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
            trace["width"] = [b - a for a, b in zip(edges[:-1], edges[1:], strict=True)]
            trace["hovertext"] = labels
        else:
            trace["x"] = labels
        traces.append(trace)
    layout = {
        **LAYOUT,
        "barmode": "overlay",
        "height": 300,
        "title": {"text": name},
        "yaxis": {"title": {"text": "fraction of rows"}},
        "showlegend": against is not None,
    }
    return {"data": traces, "layout": layout}


def node_link(node: Any) -> str | None:
    """Where a lineage node lives on the dashboard (None when it has no page of its own)."""
    if node.type == "run":
        return f"/runs/{node.id}"
    if node.type == "dataset_version" and node.name and "@" in node.name:
        dataset, number = node.name.rsplit("@", 1)
        return f"/datasets/{dataset}/{number}"
    if node.type == "model_version" and node.name and "/" in node.name:
        model, number = node.name.rsplit("/", 1)
        return f"/models/{model}/{number}"
    if node.type == "pipeline_run":
        return f"/pipelines/{node.id}"
    return None
