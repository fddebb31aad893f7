"""``shipyard experiments``: the life cycle of an experiment, table and JSON output, one-line errors."""

from __future__ import annotations

from tests.cli.conftest import assert_one_line_error, parse


def test_create_list_show(cli, sdk) -> None:
    created = cli("experiments", "create", "churn", "--description", "churn models", "--tag", "team=risk")
    assert created.exit_code == 0, created.stderr
    experiment = sdk.get_experiment("churn")
    assert created.stdout.strip() == f"created experiment churn ({experiment.id})"
    assert experiment.description == "churn models" and experiment.tags == {"team": "risk"}

    listing = cli("experiments", "list")
    assert experiment.id[:8] in listing.stdout and experiment.id not in listing.stdout  # short ids in tables
    assert "churn models" in listing.stdout and "team=risk" in listing.stdout

    shown = cli("experiments", "show", "churn")
    assert experiment.id in shown.stdout  # full id in show
    assert "churn models" in shown.stdout and "risk" in shown.stdout

    data = parse(cli("experiments", "list", json=True))
    assert [e["name"] for e in data] == ["churn"]
    assert data[0]["id"] == experiment.id and data[0]["tags"] == {"team": "risk"}
    assert parse(cli("experiments", "show", experiment.id, json=True))["name"] == "churn"


def test_rename_tag_delete_restore(cli, sdk) -> None:
    sdk.create_experiment("old")
    assert cli("experiments", "rename", "old", "new").exit_code == 0
    assert sdk.get_experiment("new").name == "new"

    tagged = parse(cli("experiments", "tag", "new", "a=1", "b=x=y", json=True))
    assert tagged["tags"] == {"a": "1", "b": "x=y"}

    assert parse(cli("experiments", "delete", "new", json=True))["lifecycle"] == "deleted"
    assert "new" not in cli("experiments", "list").stdout
    assert "new" in cli("experiments", "list", "--all").stdout
    assert cli("experiments", "restore", "new").stdout.startswith("restored experiment new")
    assert sdk.get_experiment("new").lifecycle == "active"


def test_duplicate_experiment_is_one_line_error(cli, sdk) -> None:
    sdk.create_experiment("churn")
    result = cli("experiments", "create", "churn")
    assert_one_line_error(result, "experiment 'churn' already exists", "[field: name]")


def test_bad_tag_is_usage_error(cli, sdk) -> None:
    sdk.create_experiment("churn")
    result = cli("experiments", "tag", "churn", "novalue")
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.stderr and "Traceback" not in result.output


def test_unknown_experiment(cli) -> None:
    assert_one_line_error(cli("experiments", "show", "nope"), "not found")
