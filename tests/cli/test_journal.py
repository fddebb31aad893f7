"""``shipyard journal tail``: last entries, --after, filters, JSON Lines, and --follow across polls."""

from __future__ import annotations

import json
import types

import pytest

import shipyard.cli.journal as journal_cli


def _lines(result) -> list[dict]:
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture
def entries(sdk) -> int:
    for i in range(6):
        sdk.create_experiment(f"e{i}")
    run = sdk.create_run("e0", "r")
    sdk.end_run(run.id)
    return sdk.last_journal_seq()


def test_tail_json_lines(cli, entries: int) -> None:
    rows = _lines(cli("journal", "tail", json=True))
    assert [r["seq"] for r in rows] == list(range(1, entries + 1))
    assert {"seq", "ts", "actor", "action", "entity_type", "entity_id", "payload"} <= set(rows[0])
    last = _lines(cli("journal", "tail", "--limit", "3", json=True))
    assert [r["seq"] for r in last] == [entries - 2, entries - 1, entries]  # tail: the last N
    after = _lines(cli("journal", "tail", "--after", "2", "--limit", "2", json=True))
    assert [r["seq"] for r in after] == [3, 4]  # with --after: the first N after it


def test_tail_filters(cli, sdk, entries: int) -> None:
    experiments = _lines(cli("journal", "tail", "--entity-type", "experiment", "--limit", "2", json=True))
    assert [r["payload"]["after"]["name"] for r in experiments] == ["e4", "e5"]
    runs = _lines(cli("journal", "tail", "--action", "run.", json=True))
    assert [r["action"] for r in runs] == ["run.created", "run.ended"]
    e3 = sdk.get_experiment("e3")
    only = _lines(cli("journal", "tail", "--entity-id", e3.id, json=True))
    assert len(only) == 1 and only[0]["entity_id"] == e3.id


def test_tail_table(cli, sdk, entries: int) -> None:
    result = cli("journal", "tail", "--limit", "2")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "run.created" in lines[0] and "run.ended" in lines[1]
    seq, ts, actor, action, entity = lines[1].split()[:5]
    assert seq == str(entries) and ts.endswith("Z") and entity.startswith("run:") and len(entity) == len("run:") + 8
    assert '"status":"FINISHED"' in lines[1]


def test_follow_picks_up_entries_written_between_polls(cli, sdk, entries: int, monkeypatch) -> None:
    polls = []

    def sleep(seconds: float) -> None:  # each poll's wait: write something new meanwhile
        polls.append(seconds)
        if len(polls) == 2:
            sdk.create_experiment("late")

    monkeypatch.setattr(journal_cli, "time", types.SimpleNamespace(sleep=sleep))
    rows = _lines(
        cli("journal", "tail", "--limit", "1", "--follow", "--interval", "0.5", "--max-polls", "3", json=True)
    )
    assert polls == [0.5, 0.5, 0.5]
    assert [r["seq"] for r in rows] == [entries, entries + 1]
    assert rows[1]["action"] == "experiment.created" and rows[1]["payload"]["after"]["name"] == "late"


def test_follow_with_filter_and_real_sleep(cli, sdk, entries: int) -> None:
    result = cli("journal", "tail", "--action", "model.", "--follow", "--interval", "0.05", "--max-polls", "2")
    assert result.exit_code == 0 and result.stdout == ""


def test_tail_rejects_bad_limit(cli, home) -> None:
    assert cli("journal", "tail", "--limit", "0").exit_code == 2


def test_tail_empty_journal_and_negative_after(cli, home) -> None:
    result = cli("journal", "tail")
    assert result.exit_code == 0 and result.stdout == "" and "no journal entries" in result.stderr
    assert cli("journal", "tail", "--after", "-1").exit_code == 2
