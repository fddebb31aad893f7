"""Rendering a dashboard page: the Jinja environment, the caller's permissions, JSON for charts.

Every page handler calls :func:`render` with its template and data; the base template gets the
caller (``user``), ``can(permission, model=…, experiment=…)`` to decide which actions to show, and
the navigation.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from shipyard.core.context import current_actor
from shipyard.services import Services

TEMPLATES = Path(__file__).parent / "templates"

# (path, label) in the order the navigation shows them.
NAVIGATION = [
    ("/", "Overview"),
    ("/runs", "Runs"),
    ("/models", "Models"),
    ("/datasets", "Datasets"),
    ("/pipelines", "Pipelines"),
    ("/deployments", "Deployments"),
    ("/monitoring", "Monitoring"),
    ("/governance", "Governance"),
    ("/automations", "Automations"),
]


def _when(value: Any) -> str:
    """Epoch milliseconds (or seconds) as a UTC timestamp."""
    if value in (None, ""):
        return ""
    number = float(value)
    if number > 1e11:
        number /= 1000.0
    return dt.datetime.fromtimestamp(number, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(value: Any, length: int = 12) -> str:
    text = "" if value is None else str(value)
    if text.startswith("sha256:"):
        return text[: 7 + length]
    return text[:length]


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return f"{value:.{digits}g}" if abs(value) >= 1e5 or (value and abs(value) < 1e-3) else f"{value:.{digits}f}"
    return str(value)


def to_json(value: Any) -> str:
    """JSON for an inline script or data attribute (numpy scalars and NaN made plain)."""
    return json.dumps(value, default=_plain, allow_nan=False, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, set | frozenset):
        return sorted(value)
    return str(value)


def _tojson_attr(value: Any) -> Markup:
    return Markup(to_json(value).replace("&", "&amp;").replace("'", "&#39;").replace("<", "&lt;"))


environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]))
environment.filters.update(when=_when, short=_short, number=_number, json_attr=_tojson_attr)


class Viewer:
    """The caller as a page sees them: name and the permission check for showing actions."""

    def __init__(self, services: Services):
        self.services = services
        self.name = current_actor()
        self._cache: dict[tuple[str, str | None, str | None], bool] = {}

    def can(self, permission: str, model: str | None = None, experiment: str | None = None) -> bool:
        key = (permission, model, experiment)
        if key not in self._cache:
            self._cache[key] = self.services.access.has_permission(
                self.name, permission, model=model, experiment=experiment
            )
        return self._cache[key]


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    services: Services = request.app.state.services
    viewer = Viewer(services)
    html = environment.get_template(template).render(
        request=request,
        user=viewer,
        can=viewer.can,
        navigation=NAVIGATION,
        path=request.url.path,
        auth=services.require_auth,
        **context,
    )
    return HTMLResponse(html, status_code=status_code)


def services_of(request: Request) -> Services:
    return request.app.state.services
