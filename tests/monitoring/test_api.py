"""The monitoring HTTP API on a real server (uvicorn in a thread, SQLite), called with httpx: monitors
with bad input, series, windows, merged windows and reports, labels, alert rules and alerts, and the
JSON errors of each."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shipyard import Client
from shipyard.core.settings import Settings
from tests.conftest import ThreadedServer
from tests.monitoring.cli_helpers import QUICK
from tests.monitoring.world import HOUR, World


class Api:
    def __init__(self, server: ThreadedServer):
        self.http = httpx.Client(base_url=server.url + "/api/v1", timeout=60, headers=server.headers)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == 200, (response.status_code, response.text)
        return response.json()

    def error(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        """The call failed with ``status`` and a JSON error body: ``{"error": {code, message, field?}}``."""
        response = self.http.request(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith("application/json")
        error = response.json()["error"]
        assert error["code"] and error["message"]
        return error


@pytest.fixture
def server(home: Path) -> Iterator[ThreadedServer]:
    settings = Settings.resolve(home=home / "server", remote_uri="")
    with ThreadedServer(settings) as s:
        yield s


@pytest.fixture
def api(server: ThreadedServer) -> Iterator[Api]:
    a = Api(server)
    yield a
    a.http.close()


@pytest.fixture
def remote(server: ThreadedServer, home: Path) -> Iterator[Client]:
    c = Client(uri=server.url, home=home)
    yield c
    c.close()


def test_bad_monitors_are_refused_with_the_field_named(api: Api, remote: Client) -> None:
    World(remote, rows=300)
    base = {"name": "m", "model": "clf", "options": QUICK}
    for body, status, field in (
        ({"name": "m", "window": "1h"}, 400, "endpoint"),
        ({**base, "endpoint": "ep"}, 400, "endpoint"),
        ({**base, "window": "soon"}, 400, "window"),
        ({**base, "window": "0p"}, 400, "window"),
        ({**base, "window": "500ms"}, 400, "window"),
        ({**base, "options": {"multivariate": "sometimes"}}, 400, "options.multivariate"),
        ({**base, "schedule_seconds": -5}, 400, "schedule_seconds"),
        ({**base, "reference": "window:2024-01-02..2024-01-01"}, 400, "reference"),
        ({**base, "reference": "window:yesterday"}, 400, "reference"),
        ({**base, "columns": ["no_such_column"]}, 400, "columns"),
        ({**base, "label_column": "nope"}, 400, "label_column"),
        ({**base, "task": "ranking"}, 400, "task"),
        ({**base, "segment_by": [""]}, 400, "segment_by"),
        ({**base, "window": {"every": "1h"}}, 422, "window"),
        ({"model": "clf"}, 422, "name"),
    ):
        error = api.error("POST", "/monitors", status, json=body)
        assert error["field"] == field, (body, error)
        assert error["code"] == "invalid_input"
    assert api.error("POST", "/monitors", 404, json={**base, "model": "ghost"})["code"] == "not_found"
    assert api.error("POST", "/monitors", 404, json={**base, "reference": "ghost@1"})["code"] == "not_found"
    assert api.error("POST", "/monitors", 404, json={**base, "model": None, "endpoint": "ghost"})["code"] == (
        "not_found"
    )
    assert api.ok("GET", "/monitors") == []  # nothing half-created

    created = api.ok("POST", "/monitors", json=base)
    assert created["name"] == "m"
    assert api.error("POST", "/monitors", 409, json=base)["code"] == "already_exists"


def test_series_windows_alerts_and_labels_over_http(api: Api, remote: Client) -> None:
    world = World(remote, rows=2000)
    labels: dict[str, int] = {}
    for hour, shift in ((0, 0.0), (1, 0.0), (2, 2.0)):
        ids, y = world.log_hour(hour, n=400, shift=shift)
        labels.update(zip(ids, map(int, y), strict=True))
    # the reference named explicitly: the training dataset version
    monitor = api.ok(
        "POST", "/monitors", json={"name": "m", "model": "clf/1", "reference": "train@1", "segment_by": ["region"],
                                   "options": QUICK},
    )  # fmt: skip
    assert monitor["reference"]["ref"] == "train@1" and monitor["reference"]["source"] == "given"
    assert monitor["reference"]["rows"] == 2000 and monitor["reference"]["label_column"] == "target"
    assert monitor["version"] == 1
    assert [m["name"] for m in api.ok("GET", "/monitors")] == ["m"]
    assert api.ok("GET", "/monitors/m")["id"] == monitor["id"]

    rule = api.ok(
        "POST", "/alert-rules", json={"name": "x-drift", "monitor": "m", "metric": "drift.share",
                                      "condition": {"op": ">", "value": 0.2}, "min_samples": 50},
    )  # fmt: skip
    assert rule["condition"] == {"op": ">", "value": 0.2} and rule["channels"] == [{"type": "log"}]
    assert api.ok("GET", "/alert-rules/x-drift")["id"] == rule["id"]
    assert [r["name"] for r in api.ok("GET", "/alert-rules", params={"monitor": "m"})] == ["x-drift"]

    run = api.ok("POST", "/monitors/m/run", json={"now": world.end_of(2)})
    assert [w["rows"] for w in run["windows"] if w["segment"] == ""] == [400, 400, 400]
    assert len(run["alerts_fired"]) == 1

    series = api.ok("GET", "/monitors/m/series", params={"metric": "drift.share"})
    assert series["monitor"] == "m" and series["metric"] == "drift.share" and series["segment"] == ""
    assert [p["start"] for p in series["points"]] == [world.start + h * HOUR for h in range(3)]
    assert [p["end"] - p["start"] for p in series["points"]] == [HOUR] * 3
    overall = [w for w in run["windows"] if w["segment"] == ""]
    assert [p["value"] for p in series["points"]] == [w["metrics"]["drift"]["share"] for w in overall]
    assert [w["metrics"]["drift"]["drifted"] for w in overall] == [[], [], ["x1"]]
    assert series["points"][2]["value"] == pytest.approx(1 / 3)
    assert [p["rows"] for p in series["points"]] == [400] * 3
    bounded = api.ok(
        "GET", "/monitors/m/series",
        params={"metric": "drift.share", "since": world.start + HOUR, "until": world.start + 2 * HOUR},
    )  # fmt: skip
    assert [p["start"] for p in bounded["points"]] == [world.start + HOUR]
    eu = api.ok("GET", "/monitors/m/series", params={"metric": "health.rows", "segment": "region=eu"})
    assert len(eu["points"]) == 3 and all(0 < p["value"] < 400 for p in eu["points"])
    assert api.error("GET", "/monitors/m/series", 422)["field"] == "metric"  # the metric is required

    windows = api.ok("GET", "/monitors/m/windows", params={"limit": 2})
    assert [w["start"] for w in windows] == [world.start, world.start + HOUR]
    merged = api.ok("GET", "/monitors/m/merged", params={"since": world.start, "until": world.start + 3 * HOUR})
    assert merged["rows"] == 1200 and merged["metrics"]["drift"]["drifted"] == ["x1"]
    report = api.ok("GET", "/monitors/m/report", params={"window": "1d", "until": world.end_of(2)})
    assert report["current"]["rows"] == 1200 and "drift.share" in report["series"]
    assert api.error("GET", "/monitors/m/report", 400, params={"window": "a while"})["field"] == "window"

    # alerts: open means not resolved yet
    [alert] = api.ok("GET", "/alerts", params={"status": "open"})
    assert alert["id"] == run["alerts_fired"][0] and alert["rule"] == "x-drift" and alert["monitor"] == "m"
    assert alert["window_start"] == world.start + 2 * HOUR and "x1" in alert["message"]
    assert api.ok("GET", "/alerts", params={"status": "resolved"}) == []
    assert api.ok("GET", f"/alerts/{alert['id']}")["status"] == "firing"
    acked = api.ok("POST", f"/alerts/{alert['id']}/acknowledge", json={"comment": "on it"})
    assert acked["status"] == "acknowledged"
    assert [a["id"] for a in api.ok("GET", "/alerts", params={"status": "open"})] == [alert["id"]]
    assert api.ok("GET", "/alerts", params={"status": "firing"}) == []
    assert api.error("POST", f"/alerts/{alert['id']}/acknowledge", 409, json={})["code"] == "conflict"
    assert api.ok("POST", f"/alerts/{alert['id']}/resolve", json={})["status"] == "resolved"
    assert api.ok("GET", "/alerts", params={"status": "open"}) == []
    assert [a["id"] for a in api.ok("GET", "/alerts", params={"monitor": "m"})] == [alert["id"]]

    # labels: known ids are matched, unknown ones are listed
    known = list(labels)[:5]
    items = [{"prediction_id": p, "label": labels[p]} for p in known]
    items += [{"prediction_id": "ghost-1", "label": "1"}, {"prediction_id": "ghost-2", "value": 0}]
    receipt = api.ok("POST", "/labels", json={"items": items})
    assert receipt == {"accepted": 7, "replaced": 0, "unknown": ["ghost-1", "ghost-2"], "unknown_count": 2}
    assert api.ok("GET", "/labels/unknown") == ["ghost-1", "ghost-2"]
    assert api.ok("GET", "/labels/unknown", params={"limit": 1}) == ["ghost-1"]
    for items, field in (
        ([], "items"),
        ([{"label": 1}], "items[0].prediction_id"),
        ([{"prediction_id": known[0], "label": 1}, {"prediction_id": "x", "label": [1]}], "items[1].label"),
        ([{"prediction_id": "x" * 65, "label": 1}], "items[0]"),
    ):
        assert api.error("POST", "/labels", 400, json={"items": items})["field"] == field
    assert api.ok("GET", "/labels/unknown") == ["ghost-1", "ghost-2"]  # refused batches wrote nothing
    relabelled = api.ok("POST", "/monitors/m/run", json={"now": world.end_of(2) + 1000})
    assert relabelled["relabelled"] == 1
    assert [w["labelled"] for w in api.ok("GET", "/monitors/m/windows")] == [5, 0, 0]

    assert api.ok("DELETE", "/alert-rules/x-drift") is None
    assert api.error("GET", "/alert-rules/x-drift", 404)["code"] == "not_found"
    assert api.ok("DELETE", "/monitors/m") is None
    assert api.error("GET", "/monitors/m", 404)["code"] == "not_found"


def test_unknown_monitors_and_alerts_are_404_json(api: Api) -> None:
    for method, path, kwargs in (
        ("GET", "/monitors/ghost", {}),
        ("DELETE", "/monitors/ghost", {}),
        ("POST", "/monitors/ghost/run", {"json": {}}),
        ("GET", "/monitors/ghost/windows", {}),
        ("GET", "/monitors/ghost/series", {"params": {"metric": "drift.share"}}),
        ("GET", "/monitors/ghost/merged", {"params": {"since": 0, "until": 1}}),
        ("GET", "/monitors/ghost/report", {}),
    ):
        error = api.error(method, path, 404, **kwargs)
        assert error["code"] == "not_found" and "ghost" in error["message"], (method, path, error)
    for method, path in (
        ("GET", "/alerts/nope"),
        ("POST", "/alerts/nope/acknowledge"),
        ("POST", "/alerts/nope/resolve"),
        ("GET", "/alert-rules/nope"),
        ("DELETE", "/alert-rules/nope"),
    ):
        error = api.error(method, path, 404, json={})
        assert error["code"] == "not_found" and "nope" in error["message"], (method, path, error)
    error = api.error(
        "POST", "/alert-rules", 404, json={"name": "r", "monitor": "ghost", "metric": "drift.share", "condition": "> 1"}
    )
    assert "ghost" in error["message"]
    assert api.ok("GET", "/alerts", params={"status": "open"}) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/alert-rules",
            {"name": "r", "monitor": "m", "metric": "drift.share", "condition": {"op": [">"], "value": 1}},
        ),
        ("/monitors", {"name": "m2", "model": "clf", "window": "9" * 400 + "s"}),
    ],
)
def test_malformed_input_is_a_400_not_a_500(api: Api, remote: Client, path: str, body: dict[str, Any]) -> None:
    World(remote, rows=300)
    api.ok("POST", "/monitors", json={"name": "m", "model": "clf", "options": QUICK})
    error = api.error("POST", path, 400, json=body)
    assert error["code"] == "invalid_input"
