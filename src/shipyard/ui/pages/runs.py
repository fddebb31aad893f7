"""Dashboard pages: the run table (search, order, pages), one run, and runs compared side by side.

The filter box takes the SDK's search language (``tracking/search.py``); a malformed filter comes
back as the same page with the parser's message and a 400. Metric charts never ship raw series:
:func:`shipyard.ui.charts.downsample` cuts each to ``CHART_POINTS`` per trace on the server, so a
150,000-step metric reaches the browser as 2,000 points with its spikes intact.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shipyard.artifacts import read_manifest
from shipyard.core.errors import FilterSyntaxError, InvalidInput, NotFound
from shipyard.services import Services
from shipyard.tracking.entities import Run
from shipyard.ui.charts import bar_figure, downsample, line_figure
from shipyard.ui.web import render, services_of

router = APIRouter()

CHART_POINTS = 2000  # per trace, after downsampling
# Series up to this long are read whole and cut here (exact first/last/min/max of every bucket);
# longer ones come from the store already cut to each step bucket's min and max. Reading raw points
# costs about what the store's bucketing query costs, so whole reads are the better deal up to here.
WHOLE_SERIES = 200_000
PAGE_SIZES = (25, 50, 100, 200)
MAX_COLUMNS = 40  # metric and param columns each, on the run table
MAX_COMPARE = 20
MAX_CHARTS = 40  # metrics charted on one page
MAX_TREE_FILES = 200
MAX_BACK = 50  # previous page tokens carried in the URL
FIRST = "-"  # stands for the first page (no token) in that trail


# --------------------------------------------------------------------------------------------------
# /runs


@router.get("/runs")
def run_table(request: Request) -> HTMLResponse:
    services = services_of(request)
    query = request.query_params
    experiment = query.get("experiment", "").strip()
    experiments = services.tracking.list_experiments()
    try:
        chosen = _experiment_of(experiments, experiment)
    except NotFound:
        services.access.require("read")  # only a reader learns which experiments exist
        raise
    services.access.require("read", experiment=chosen.id if chosen else None)
    text = query.get("filter", "").strip()
    order = query.get("order_by", "").strip()
    size = _page_size(query.get("max", ""))
    token = query.get("page_token") or None
    back = [b for b in query.get("back", "").split(",") if b][-MAX_BACK:]
    deleted = query.get("deleted", "") == "1"
    error, page, status = None, None, 200
    try:
        page = services.tracking.search_runs(
            experiments=[chosen.id] if chosen else None,
            filter=text or None,
            order_by=_order_items(order),
            max_results=size,
            page_token=token,
            include_deleted=deleted,
        )
    except (FilterSyntaxError, InvalidInput) as exc:  # the parser's message, shown beside the box
        error, status = exc.message, exc.status
    runs = page.runs if page else []
    names = {e.id: e.name for e in experiments}
    state = {
        "experiment": experiment,
        "filter": text,
        "order_by": order,
        "max": str(size),
        "deleted": "1" if deleted else "",
    }
    return render(
        request,
        "runs_list.html",
        status_code=status,
        experiments=experiments,
        experiment=chosen,
        experiment_names=names,
        filter=text,
        order_by=order,
        size=size,
        sizes=PAGE_SIZES,
        deleted=deleted,
        runs=runs,
        error=error,
        metric_keys=_keys((r.metrics for r in runs), MAX_COLUMNS),
        param_keys=_keys((r.params for r in runs), MAX_COLUMNS),
        next_url=_url("/runs", state, page_token=page.next_page_token, back=",".join([*back, token or FIRST]))
        if page and page.next_page_token
        else None,
        prev_url=_previous_url(state, back) if token else None,
        first_url=_url("/runs", state) if token else None,
        sort_url=lambda field: _url("/runs", {**state, "order_by": _toggle(order, field)}),
        sorted_on=_sorted_on(order),
        field_ref=field_ref,
        page_number=len(back) + 1,
    )


def _previous_url(state: dict[str, str], back: list[str]) -> str:
    """Page tokens are opaque, so the way back is the trail of tokens that led here."""
    if not back:
        return _url("/runs", state)
    previous = back[-1]
    return _url("/runs", state, page_token=None if previous == FIRST else previous, back=",".join(back[:-1]))


def _experiment_of(experiments: Sequence[Any], wanted: str) -> Any:
    if not wanted:
        return None
    for exp in experiments:
        if wanted in (exp.id, exp.name):
            return exp
    raise NotFound(f"experiment {wanted!r} not found", field="experiment")


def _page_size(text: str) -> int:
    if not text:
        return PAGE_SIZES[1]
    if not text.isdigit() or not 1 <= int(text) <= PAGE_SIZES[-1]:
        raise InvalidInput(f"max must be a number between 1 and {PAGE_SIZES[-1]}", field="max")
    return int(text)


def _order_items(text: str) -> list[str] | None:
    # Items are separated by commas; a backtick-quoted key may itself hold a comma, so split on
    # commas outside quotes only.
    items, current, quote = [], "", ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "`\"'":
            quote = char
        elif char == ",":
            items.append(current.strip())
            current = ""
            continue
        current += char
    items.append(current.strip())
    return [i for i in items if i] or None


def _sorted_on(order: str) -> dict[str, str]:
    """The field the table is ordered by first, with its direction, to mark that column header."""
    items = _order_items(order) or []
    if not items:
        return {}
    words = items[0].split()
    descending = len(words) > 1 and words[-1].lower() == "desc"
    field = " ".join(words[:-1]) if len(words) > 1 and words[-1].lower() in ("asc", "desc") else items[0]
    return {field: "desc" if descending else "asc"}


def _toggle(order: str, field: str) -> str:
    """Clicking a column header orders by it descending, a second click ascending."""
    current = _sorted_on(order)
    return f"{field} ASC" if current.get(field) == "desc" else f"{field} DESC"


def _keys(maps: Iterable[dict[str, Any]], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for mapping in maps:
        seen.update(dict.fromkeys(mapping))
    return sorted(seen)[:limit]


def _url(path: str, state: dict[str, str], **extra: str | None) -> str:
    from urllib.parse import urlencode

    values = {k: v for k, v in {**state, **extra}.items() if v}
    return path + ("?" + urlencode(values) if values else "")


def field_ref(kind: str, key: str) -> str:
    """A search-language field for a metric or param key, quoted when the key needs it."""
    plain = key.replace("_", "a").replace(".", "a").replace("/", "a").replace("-", "a").isalnum()
    return f"{kind}.{key}" if plain else f"{kind}.`{key}`"


# --------------------------------------------------------------------------------------------------
# /runs/compare (declared before /runs/{run_id} so "compare" is never taken for a run id)


@router.get("/runs/compare")
def compare_runs(request: Request) -> HTMLResponse:
    services = services_of(request)
    ids = _compare_ids(request.query_params.getlist("ids"))
    if not 2 <= len(ids) <= MAX_COMPARE:
        services.access.require("read")
        raise InvalidInput(f"select between 2 and {MAX_COMPARE} runs to compare (ids=a,b)", field="ids")
    runs = _runs_by_id(services, ids)
    param_keys = _keys((r.params for r in runs), 10_000)
    metric_keys = _keys((r.metrics for r in runs), 10_000)
    params = [(key, [r.params.get(key) for r in runs]) for key in param_keys]
    metrics = [(key, [r.metrics.get(key) for r in runs]) for key in metric_keys]
    charts = [(key, _overlay_figure(services, runs, key)) for key in metric_keys[:MAX_CHARTS]]
    return render(
        request,
        "runs_compare.html",
        runs=runs,
        labels=_labels(runs),
        params=params,
        metrics=metrics,
        charts=charts,
        differs=_differs,
        best=_best,
        chart_points=CHART_POINTS,
        more_charts=max(0, len(metric_keys) - MAX_CHARTS),
        ids=",".join(r.id for r in runs),
    )


def _compare_ids(values: list[str]) -> list[str]:
    ids = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(ids))


def _runs_by_id(services: Services, ids: list[str]) -> list[Run]:
    """The runs, in the order asked, each checked for read access on its experiment."""
    quoted = ", ".join("'" + i.replace("\\", "\\\\").replace("'", "''") + "'" for i in ids)
    try:
        found = services.tracking.search_runs(
            filter=f"run_id in ({quoted})", max_results=len(ids), include_deleted=True
        ).runs
    except InvalidInput as exc:
        raise InvalidInput(f"invalid run ids: {exc.message}", field="ids") from exc
    by_id = {r.id: r for r in found}
    for experiment in sorted({r.experiment_id for r in found}):
        services.access.require("read", experiment=experiment)
    missing = [i for i in ids if i not in by_id]
    if missing:
        services.access.require("read")  # an outsider learns nothing about which ids exist
        raise NotFound(f"run {missing[0]!r} not found", field="ids")
    return [by_id[i] for i in ids]


def _labels(runs: Sequence[Run]) -> list[str]:
    """Legend names: the run name, with a short id when two runs share a name."""
    names = [r.name for r in runs]
    return [f"{r.name} ({r.id[:6]})" if names.count(r.name) > 1 else r.name for r in runs]


def _differs(values: Sequence[Any]) -> bool:
    return len({repr(v) for v in values}) > 1


def _best(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    numbers = [v for v in values if v is not None and not math.isnan(v)]
    return (min(numbers), max(numbers)) if len(numbers) > 1 else (None, None)


def _overlay_figure(services: Services, runs: Sequence[Run], key: str) -> dict[str, Any]:
    """One line per run over steps; runs that logged the metric once each get bars instead."""
    series = []
    for run, label in zip(runs, _labels(runs), strict=True):
        if key in run.metrics:
            steps, values = chart_series(services, run.id, key)
            series.append({"name": label, "x": steps, "y": values})
    if all(len(s["x"]) <= 1 for s in series):
        latest = [s["y"][-1] if s["y"] else None for s in series]
        return bar_figure([s["name"] for s in series], {key: latest}, title=key, showlegend=False)
    return line_figure(series, title=key, x_title="step")


def chart_series(services: Services, run_id: str, key: str, points: int = CHART_POINTS) -> tuple[list, list]:
    """One metric's history as at most ``points`` chartable points (NaN and ±inf become gaps).

    :func:`downsample` keeps every bucket's first, lowest, highest and last point, so spikes and
    the ends of the series survive; beyond ``WHOLE_SERIES`` points the store pre-cuts the series to
    its step buckets' extremes, which keeps the spikes too.
    """
    history = services.tracking.metric_history(run_id, key, max_points=max(WHOLE_SERIES, points))
    if not history.steps:
        return [], []
    xs, ys = downsample(history.steps, history.values, points)
    return [int(x) for x in xs], [float(y) if math.isfinite(y) else None for y in ys]


# --------------------------------------------------------------------------------------------------
# /runs/{run_id}


@router.get("/runs/{run_id}")
def run_page(request: Request, run_id: str) -> HTMLResponse:
    services = services_of(request)
    run = _readable_run(services, run_id)
    experiment = services.tracking.get_experiment(run.experiment_id)
    keys = sorted(run.metrics)
    charts = []
    for key in keys[:MAX_CHARTS]:
        xs, ys = chart_series(services, run.id, key)
        if len(xs) > 1:  # a single value is in the table; a chart of one dot says nothing more
            charts.append(
                (key, line_figure([{"name": key, "x": xs, "y": ys}], title=key, x_title="step", showlegend=False))
            )
    children = services.tracking.search_runs(
        filter=f"parent_run_id = '{run.id}'", max_results=100, order_by=["start_time ASC"]
    ).runs
    parent = _parent(services, run)
    artifacts = services.tracking.list_artifacts(run.id)
    environment = run.environment or {}
    links = run_links(services, run.id)
    system_tags = {k: v for k, v in run.tags.items() if k.startswith("shipyard.")}
    return render(
        request,
        "runs_detail.html",
        run=run,
        experiment=experiment,
        metric_keys=keys,
        charts=charts,
        more_charts=max(0, len(keys) - MAX_CHARTS),
        children=children,
        parent=parent,
        artifacts=artifacts,
        trees={a.path: _tree_files(services, a.digest) for a in artifacts if a.is_tree},
        environment=environment,
        packages=sorted((environment.get("packages") or {}).items()),
        user_tags={k: v for k, v in run.tags.items() if k not in system_tags},
        system_tags=system_tags,
        models=links["models"],
        datasets=links["datasets"],
        step=links["step"],
    )


def _readable_run(services: Services, run_id: str) -> Run:
    try:
        run = services.tracking.get_run(run_id)
    except NotFound:
        services.access.require("read")  # a caller who may not read runs gets 403, not a hint
        raise
    services.access.require("read", experiment=run.experiment_id)
    return run


def _parent(services: Services, run: Run) -> Run | None:
    if not run.parent_run_id:
        return None
    try:
        return services.tracking.get_run(run.parent_run_id)
    except NotFound:
        return None


def _tree_files(services: Services, digest: str) -> list[dict[str, Any]]:
    """The files of a directory artifact, each downloadable by its own digest."""
    try:
        entries = read_manifest(services.artifacts, digest)["entries"]
    except Exception:  # a missing or unreadable manifest only hides the file list
        return []
    return [{"path": path, **entry} for path, entry in sorted(entries.items())[:MAX_TREE_FILES]]


def run_links(services: Services, run_id: str) -> dict[str, Any]:
    """Model versions registered from the run, dataset versions it read or wrote, its pipeline step."""
    links: dict[str, Any] = services.tracking.run_links(run_id)
    try:
        step = services.pipelines.get_step_run_by_run_id(run_id)
    except NotFound:
        step = None
    return {**links, "step": step}
