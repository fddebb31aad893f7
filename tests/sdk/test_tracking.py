"""The SDK tracking suite; every test runs embedded and remote, on SQLite and PostgreSQL."""

from __future__ import annotations

import math

import pytest

from shipyard.core.errors import AlreadyExists, Conflict, FilterSyntaxError, InvalidInput, NotFound
from shipyard.tracking.entities import MetricPoint, RunStatus


def test_experiments_create_get_list_rename_delete(client) -> None:
    exp = client.create_experiment("churn", description="churn models", tags={"team": "risk"})
    assert client.get_experiment("churn").id == exp.id
    assert client.get_experiment(exp.id).tags == {"team": "risk"}
    with pytest.raises(AlreadyExists) as err:
        client.create_experiment("churn")
    assert err.value.field == "name"
    renamed = client.update_experiment("churn", name="churn-v2")
    assert renamed.name == "churn-v2"
    client.delete_experiment("churn-v2")
    assert "churn-v2" not in [e.name for e in client.list_experiments()]
    assert "churn-v2" in [e.name for e in client.list_experiments(include_deleted=True)]
    client.restore_experiment("churn-v2")
    assert "churn-v2" in [e.name for e in client.list_experiments()]
    with pytest.raises(NotFound):
        client.get_experiment("nope")


@pytest.mark.parametrize("bad", ["", "a/b", "x" * 251, "has@at"])
def test_invalid_experiment_names_are_rejected(client, bad: str) -> None:
    with pytest.raises(InvalidInput) as err:
        client.create_experiment(bad)
    assert err.value.field == "experiment name"


def test_run_lifecycle_and_nesting(client) -> None:
    client.create_experiment("e")
    parent = client.create_run("e", "parent", description="outer")
    child = client.create_run("e", "child", parent_run_id=parent.id)
    assert parent.status == RunStatus.RUNNING and parent.end_time is None
    assert parent.user and parent.start_time > 0
    assert child.parent_run_id == parent.id
    ended = client.end_run(child.id, "FAILED")
    assert ended.status == RunStatus.FAILED and ended.end_time >= ended.start_time
    assert client.end_run(child.id, "FAILED").status == RunStatus.FAILED  # idempotent
    with pytest.raises(Conflict):
        client.end_run(child.id, "FINISHED")
    killed = client.end_run(parent.id, RunStatus.KILLED)
    assert killed.status == RunStatus.KILLED
    with pytest.raises(NotFound):
        client.get_run("0" * 32)


def test_runs_without_experiment_go_to_default(client) -> None:
    run = client.create_run()
    assert client.get_experiment(run.experiment_id).name == "Default"


def test_params_are_write_once(client) -> None:
    run = client.create_run()
    client.log_params(run.id, {"lr": 0.1, "model": "rf", "layers": [64, 32]})
    client.log_param(run.id, "lr", 0.1)  # same value again is fine
    with pytest.raises(Conflict) as err:
        client.log_param(run.id, "lr", 0.2)
    assert err.value.field == "params.lr"
    assert "0.1" in err.value.message and "0.2" in err.value.message
    got = client.get_run(run.id).params
    assert got == {"lr": "0.1", "model": "rf", "layers": "[64, 32]"}
    with pytest.raises(InvalidInput):
        client.log_param(run.id, "x" * 300, 1)
    with pytest.raises(InvalidInput):
        client.log_param(run.id, "v", "x" * 7000)


def test_metrics_keep_nan_and_infinity(client) -> None:
    run = client.create_run()
    client.log_metric(run.id, "nan", float("nan"))
    client.log_metric(run.id, "pinf", float("inf"))
    client.log_metric(run.id, "ninf", float("-inf"), step=3)
    client.log_metric(run.id, "loss", 0.5, step=1)
    client.log_metric(run.id, "loss", 0.25, step=2)
    client.log_metric(run.id, "loss", 0.9, step=0)  # an older step does not replace the latest value
    metrics = client.get_run(run.id).metrics
    assert math.isnan(metrics["nan"])
    assert metrics["pinf"] == math.inf and metrics["ninf"] == -math.inf
    assert metrics["loss"] == 0.25
    history = client.get_metric_history(run.id, "loss")
    assert history.steps == [0, 1, 2] and history.values == [0.9, 0.5, 0.25]
    assert math.isnan(client.get_metric_history(run.id, "nan").values[0])


@pytest.mark.parametrize("bad", ["abc", None, [1.0], {"a": 1}, True])
def test_non_numeric_metric_values_are_rejected(client, bad) -> None:
    run = client.create_run()
    with pytest.raises(InvalidInput) as err:
        client.log_metric(run.id, "m", bad)
    assert "m" in err.value.message


def test_logging_to_a_finished_run_is_refused(client) -> None:
    run = client.create_run()
    client.end_run(run.id)
    with pytest.raises(Conflict):
        client.log_param(run.id, "a", 1)
    with pytest.raises(Conflict):
        client.log_metric(run.id, "m", 1.0, synchronous=True)
    with pytest.raises(Conflict):
        client.log_batch(run.id, metrics=[("m", 1.0, 0)], synchronous=True)
    with pytest.raises(Conflict):
        client.log_batch(run.id, params={"late": 1})
    # A queued point for a finished run surfaces at the next flush, not silently.
    client.log_metric(run.id, "m", 2.0)
    with pytest.raises(Conflict):
        client.flush()
    client.set_tag(run.id, "note", "annotations stay possible after the end")
    assert client.get_run(run.id).tags["note"].startswith("annotations")


def test_batch_logging_and_latest_values(client) -> None:
    run = client.create_run()
    points = [MetricPoint(key=f"m{k}", value=float(step * k), step=step) for k in range(3) for step in range(100)]
    client.log_batch(run.id, metrics=points, params={"p": 1}, tags={"t": "x"})
    with pytest.raises(InvalidInput):  # bad points are refused at once, even though writes are queued
        client.log_batch(run.id, metrics=[("ok", 1.0, 0), ("bad", "x", 1)])
    with pytest.raises(InvalidInput):
        client.log_batch(run.id, metrics=[("bad key!", 1.0, 0)])
    got = client.get_run(run.id)
    assert got.metrics == {"m0": 0.0, "m1": 99.0, "m2": 198.0}
    assert got.params == {"p": "1"} and got.tags == {"t": "x"}
    assert client.get_metric_history(run.id, "m2").total_points == 100


def test_metric_history_downsampling_keeps_extremes(client) -> None:
    run = client.create_run()
    n = 20_000
    values = [math.sin(i / 300) for i in range(n)]
    values[7777] = 50.0  # a spike that a chart must still show
    values[15000] = -50.0
    client.log_batch(run.id, metrics=[MetricPoint(key="wave", value=v, step=i) for i, v in enumerate(values)])
    history = client.get_metric_history(run.id, "wave", max_points=500)
    assert history.total_points == n and history.downsampled
    assert len(history.steps) <= 500
    assert history.steps == sorted(history.steps)
    assert 50.0 in history.values and -50.0 in history.values
    assert history.steps[history.values.index(50.0)] == 7777
    full = client.get_metric_history(run.id, "wave")
    assert len(full.steps) == n and not full.downsampled
    with pytest.raises(NotFound):
        client.get_metric_history(run.id, "absent")


def test_tags_set_and_delete(client) -> None:
    run = client.create_run(tags={"a": "1"})
    client.set_tags(run.id, {"b": "2"})
    client.delete_tag(run.id, "a")
    assert client.get_run(run.id).tags == {"b": "2"}
    with pytest.raises(NotFound):
        client.delete_tag(run.id, "a")


def test_environment_is_captured_at_run_start(client) -> None:
    import shipyard

    shipyard.set_client(client)
    try:
        shipyard.set_seed(1234)
        with shipyard.start_run() as active:
            pass
    finally:
        shipyard.set_client(None)
    env = client.get_run(active.id).environment
    assert env["python"]["version"].startswith("3.")
    assert "numpy" in env["packages"]
    assert env["host"]
    assert env["command"]
    assert env["seeds"] == {"python": 1234, "numpy": 1234}
    assert "git" in env


def test_fluent_run_ends_failed_on_exception(client) -> None:
    import shipyard

    shipyard.set_client(client)
    try:
        with pytest.raises(RuntimeError), shipyard.start_run() as outer:
            shipyard.log_param("a", 1)
            with shipyard.start_run(nested=True) as inner:
                shipyard.log_metric("x", 1.0)
            raise RuntimeError("boom")
    finally:
        shipyard.set_client(None)
    assert client.get_run(outer.id).status == RunStatus.FAILED
    finished = client.get_run(inner.id)
    assert finished.status == RunStatus.FINISHED and finished.parent_run_id == outer.id
    assert finished.metrics == {"x": 1.0}


def _populate_for_search(client) -> dict[str, str]:
    client.create_experiment("s1")
    client.create_experiment("s2")
    ids = {}
    specs = [
        ("s1", "a", "rf", "risk", 0.95),
        ("s1", "b", "rf", "ops", 0.85),
        ("s1", "c", "lr", "risk", 0.91),
        ("s2", "d", "rf", "risk", 0.97),
        ("s2", "e", "xgb", "risk", float("nan")),
        ("s2", "f", "rf", "risk", None),
    ]
    for exp, name, model, team, acc in specs:
        run = client.create_run(exp, name, tags={"team": team}, capture_environment=False)
        client.log_params(run.id, {"model": model, "depth": len(name) * 3})
        if acc is not None:
            client.log_metric(run.id, "accuracy", acc)
        ids[name] = run.id
    client.flush()
    return ids


def test_search_filter_language(client) -> None:
    _populate_for_search(client)

    def names(filter_text: str, **kwargs) -> list[str]:
        return [r.name for r in client.search_runs(filter=filter_text, **kwargs).runs]

    found = names(
        "metrics.accuracy > 0.9 and params.model = 'rf' and tags.team = 'risk'", order_by=["metrics.accuracy DESC"]
    )
    assert found == ["d", "a"]
    assert names("metrics.accuracy > 0.9", experiments=["s1"], order_by=["metrics.accuracy"]) == ["c", "a"]
    assert sorted(names("params.model in ('lr', 'xgb')")) == ["c", "e"]
    assert sorted(names("(params.model = 'lr' or tags.team = 'ops') and status = 'RUNNING'")) == ["b", "c"]
    assert sorted(names("name like 'd%' or name = 'f'")) == ["d", "f"]
    assert names("metrics.accuracy > 0.96") == ["d"]
    ordered = names("params.model = 'rf'", order_by=["metrics.accuracy DESC"])
    assert ordered == ["d", "a", "b", "f"]  # the run without the metric sorts last


def test_search_pagination_with_cursor(client) -> None:
    _populate_for_search(client)
    seen: list[str] = []
    token = None
    while True:
        page = client.search_runs(order_by=["attributes.name"], max_results=4, page_token=token)
        seen.extend(r.name for r in page.runs)
        token = page.next_page_token
        if not token:
            break
    assert seen == ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(InvalidInput):
        client.search_runs(page_token="garbage!")


def test_malformed_filter_says_where(client) -> None:
    with pytest.raises(FilterSyntaxError) as err:
        client.search_runs(filter="metrics.accuracy > and params.x = 'a'")
    assert "column" in err.value.message
    with pytest.raises(FilterSyntaxError):
        client.search_runs(filter="bogus.x = 1")


def test_journal_records_every_change(client) -> None:
    start = client.last_journal_seq()
    run = client.create_run()
    client.log_params(run.id, {"a": 1})
    client.set_tag(run.id, "t", "v")
    client.log_metric(run.id, "m", 1.0)  # telemetry: not journaled point by point
    client.end_run(run.id)
    entries = client.read_journal(after=start)
    actions = [e.action for e in entries if e.entity_id == run.id]
    assert actions == ["run.created", "run.params_logged", "run.tags_set", "run.ended"]
    assert all(e.seq > start for e in entries)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    ended = entries[-1]
    assert ended.payload["before"]["status"] == "RUNNING" and ended.payload["after"]["status"] == "FINISHED"
    assert ended.actor
    only_run = client.read_journal(after=0, entity_type="run", entity_id=run.id, action="run.")
    assert len(only_run) == 4


def test_run_artifacts_round_trip_and_dedup(client, tmp_path) -> None:
    run = client.create_run()
    f = tmp_path / "report.txt"
    f.write_text("hello")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("x,y\n1,2\n")
    (d / "sub" / "b.txt").write_text("hello")  # same bytes as report.txt: stored once
    file_art = client.log_artifact(run.id, f)
    tree_art = client.log_artifacts(run.id, d)
    assert not file_art.is_tree and tree_art.is_tree
    assert [a.path for a in client.list_artifacts(run.id)] == ["plots", "report.txt"]
    client.log_artifact(run.id, f)  # same content at the same path: idempotent
    other = tmp_path / "other.txt"
    other.write_text("different")
    with pytest.raises(AlreadyExists):
        client.log_artifact(run.id, other, "report.txt")
    out = client.download_artifacts(run.id, "plots", tmp_path / "out")
    assert (out / "sub" / "b.txt").read_text() == "hello"
    assert (out / "a.csv").read_text() == "x,y\n1,2\n"
    single = client.download_artifacts(run.id, "report.txt", tmp_path / "r.txt")
    assert single.read_text() == "hello"


def test_downsampled_history_shows_nan_and_infinity(client) -> None:
    run = client.create_run()
    values = [float(i % 100) for i in range(9000)]
    values[100] = float("nan")
    values[4000] = float("inf")
    values[8000] = float("-inf")
    client.log_batch(run.id, metrics=[MetricPoint(key="m", value=v, step=i) for i, v in enumerate(values)])
    history = client.get_metric_history(run.id, "m", max_points=300)
    assert history.downsampled and len(history.steps) <= 300
    assert math.inf in history.values and -math.inf in history.values
    nan_steps = [s for s, v in zip(history.steps, history.values, strict=True) if math.isnan(v)]
    assert nan_steps == [100]
    assert history.steps == sorted(history.steps)
