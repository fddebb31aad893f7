"""The automation SDK against a server (remote): the same calls, the same answers, and the CLI's --json."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.settings import Settings
from tests.conftest import ThreadedServer


def test_rules_recipes_firings_and_a_round_of_the_engine_through_the_api(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "home", remote_uri="")
    with ThreadedServer(settings) as server, Client(uri=server.url) as client:
        saved = client.save_automation("name: greet\non: model.created\ndo: {notify: {message: 'hi {{ seq }}'}}")
        assert (saved.name, saved.version, saved.enabled) == ("greet", 1, True)
        rules = client.install_recipe(
            "churn", "churn-prod", "pkg.mod:retrain", strategy="shadow", dataset="holdout", params={"a": 1}
        )
        assert [r.name for r in rules][0] == "closed-loop-retrain" and len(rules) == 8
        deploy = client.get_automation("closed-loop-deploy")
        options = deploy.actions[0]["args"]["options"]
        assert deploy.actions[0]["args"]["strategy"] == "shadow" and options == {"auto": True}
        assert client.get_automation("greet", version=1).text.startswith("name: greet")
        assert client.disable_automation("greet").enabled is False
        assert client.enable_automation("greet").enabled is True
        client.create_model("m")
        result = client.run_automations()
        assert result["events"] >= 1 and result["firings"][0]["rule"] == "greet"
        (firing,) = client.automation_firings("greet")
        assert firing.status == "succeeded" and firing.result and firing.result["message"].startswith("hi ")

        runner = CliRunner()
        env = {"SHIPYARD_URI": server.url, "SHIPYARD_TOKEN": server.token or ""}
        listed = runner.invoke(app, ["--json", "automations", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "greet" in [r["name"] for r in json.loads(listed.output)]
        fired = runner.invoke(app, ["--json", "automations", "firings", "--rule", "greet"], env=env)
        assert json.loads(fired.output)[0]["status"] == "succeeded"
        recipe = runner.invoke(
            app,
            ["automations", "recipe", "closed-loop", "--model", "m2", "--endpoint", "e2", "--pipeline", "p.q:r",
             "--param", "base=\"d@1\"", "--options", "{\"steps\": [10, 50]}"],
            env=env,
        )  # fmt: skip
        assert recipe.exit_code == 0, recipe.output
        assert client.get_automation("closed-loop-retrain").version == 2  # the same names: new versions
        bad = runner.invoke(app, ["automations", "run", "--transport", "redis"], env=env)
        assert bad.exit_code != 0 and "beside the store" in bad.output
