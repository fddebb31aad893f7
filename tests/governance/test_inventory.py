"""The model inventory (dashboard data): risk tier, stages, approvals, policy status, monitors, open alerts."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from shipyard.cli.main import app as cli
from shipyard.store import schema as t
from shipyard.store.database import Database
from tests.monitoring.cli_helpers import QUICK
from tests.monitoring.world import World


def _db(client: Any) -> Database:
    return client._backend.services.db if not client.is_remote else Database(client.server_settings.store_uri)


def test_inventory_shows_stages_monitors_and_open_alerts(client: Any) -> None:
    world = World(client, rows=600)
    client.register_model(world.model, "clf")  # version 2
    client.set_alias("clf", "champion", 1)
    client.set_model_tags("clf", {"owner": "risk-team"})
    client.create_monitor("clf-watch", model="clf/1", window="1h", options=QUICK)
    client.create_alert_rule("x-drift", "clf-watch", "drift.share", "> 0.2", min_samples=50)
    for hour in range(2):
        world.log_hour(hour, n=200, shift=2.0)
    client.run_monitor("clf-watch", now=world.end_of(1))
    db = _db(client)
    with db.write() as tx:  # a risk tier and a stage, as the governance workflow would set them
        tx.conn.execute(
            t.registered_models.update().where(t.registered_models.c.name == "clf").values(risk_tier="high")
        )
        model_id = tx.conn.execute(sa.select(t.registered_models.c.id).where(t.registered_models.c.name == "clf"))
        tx.conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.model_id == model_id.scalar_one(), t.model_versions.c.version == 1)
            .values(stage="approved")
        )

    [item] = client.model_inventory()
    assert item.name == "clf" and item.risk_tier == "high" and item.owner == "risk-team"
    assert item.latest_version == 2 and item.aliases == {"champion": 1}
    assert [(v.version, v.stage, v.aliases) for v in item.versions] == [(1, "approved", ["champion"]), (2, "draft", [])]
    [monitor] = item.monitors
    assert monitor.name == "clf-watch" and monitor.rows == 200 and "x1" in monitor.drifted
    assert monitor.drift_share is not None and monitor.drift_share > 0.2
    assert [a.metric for a in item.open_alerts] == ["drift.share"] and item.open_alerts[0].status == "firing"
    assert item.status == "attention"

    assert client.model_overview("clf").name == "clf"
    assert client.model_inventory(risk_tier="low") == []
    assert [i.name for i in client.model_inventory(name_like="cl")] == ["clf"]

    client.acknowledge_alert(item.open_alerts[0].id)
    assert client.model_overview("clf").open_alerts[0].status == "acknowledged"
    client.resolve_alert(item.open_alerts[0].id)
    assert client.model_overview("clf").open_alerts == []


def test_inventory_cli(home) -> None:
    runner = CliRunner()
    from shipyard import Client

    with Client(home=home) as client:
        World(client, rows=300)
    listed = runner.invoke(cli, ["--home", str(home), "inventory"])
    assert listed.exit_code == 0, listed.output
    assert "clf" in listed.output and "draft" in listed.output
    as_json = runner.invoke(cli, ["--home", str(home), "--json", "inventory", "--risk", "high"])
    assert as_json.exit_code == 0 and as_json.output.strip() == "[]"


def test_inventory_counts_only_this_rounds_approvals(home) -> None:
    from sklearn.linear_model import LogisticRegression

    from shipyard import Client
    from shipyard.core.context import acting_as

    with Client(home=home) as client:
        client.register_model(LogisticRegression().fit([[0.0], [1.0]], [0, 1]), "m")
        client.add_policy("two", "applies_to: {models: [m]}\napprovals: {required: 2, roles: [reviewer]}\n")
        for name in ("ann", "bob"):
            client.create_principal(name)
            client.grant_role(name, "reviewer")
        client.submit_for_review("m", 1)
        with acting_as("ann"):
            client.approve_version("m", 1)
        [version] = client.model_overview("m").versions
        assert (version.stage, version.approvals, version.rejections) == ("in_review", 1, 0)
        with acting_as("bob"):
            client.reject_version("m", 1, comment="needs a holdout evaluation")
        [version] = client.model_overview("m").versions
        assert (version.stage, version.approvals, version.rejections) == ("rejected", 1, 1)
        client.submit_for_review("m", 1)  # a new round: earlier votes no longer count
        [version] = client.model_overview("m").versions
        assert (version.stage, version.approvals, version.rejections) == ("in_review", 0, 0)
        assert version.policy is not None and version.policy["gate"] == "review" and version.policy["passed"]
