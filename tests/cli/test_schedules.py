"""``shipyard pipeline schedule …`` and ``shipyard scheduler --once``."""

from __future__ import annotations

from tests.cli.conftest import assert_one_line_error, parse


def test_schedule_commands(cli) -> None:
    out = cli("pipeline", "schedule", "add", "nightly", "pkg.pipes:train", "--cron", "0 3 * * *", "-p", "C=0.5")
    assert out.exit_code == 0 and "nightly" in out.stdout
    listed = parse(cli("pipeline", "schedule", "list", json=True))
    assert listed[0]["params"] == {"C": 0.5} and listed[0]["cron"] == "0 3 * * *"
    cli("pipeline", "schedule", "pause", "nightly")
    assert parse(cli("pipeline", "schedule", "show", "nightly", json=True))[0]["enabled"] is False
    assert_one_line_error(
        cli("pipeline", "schedule", "add", "x", "pkg.pipes:train", "--cron", "every day"), "cron expression"
    )
    assert_one_line_error(cli("pipeline", "schedule", "show", "missing"), "schedule 'missing' does not exist")
    cli("pipeline", "schedule", "remove", "nightly")
    assert parse(cli("pipeline", "schedule", "list", json=True)) == []


def test_scheduler_once_with_nothing_due(cli) -> None:
    cli("pipeline", "schedule", "add", "nightly", "pkg.pipes:train", "--cron", "0 3 * * *")
    result = cli("scheduler", "--once")
    assert result.exit_code == 0, result.stderr
    assert_one_line_error(cli("scheduler", "--interval", "0"), "--interval must be positive")
