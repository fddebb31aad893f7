"""``shipyard reproduce``: re-run a model version's pipeline and compare what it builds."""

from __future__ import annotations

import json
import os
import sys

import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.core.errors import InvalidInput
from shipyard.pipelines import run
from shipyard.pipelines.reproduce import reproduce
from tests.reproduce.pipelines import repro


@pytest.fixture(params=["sqlite", "postgres"])
def sdk(request, tmp_path):
    store_uri = request.getfixturevalue("pg_uri") if request.param == "postgres" else None
    client = Client(home=tmp_path / "home", store_uri=store_uri)
    yield client
    client.close()


def test_a_deterministic_pipeline_reproduces_bit_identically(sdk) -> None:
    built = run(repro, {"rows": 300, "seed": 3}, client=sdk)
    version = sdk.get_version("repro", 1)
    assert version.digest == sdk.load_step_output(built.id, "fit")["digest"]

    result = reproduce(sdk, "models:/repro/1")
    assert result.identical and result.reproduced_digest == version.digest
    assert result.original_pipeline_run_id == built.id != result.reproduced_pipeline_run_id
    assert result.params == {"rows": 300, "seed": 3, "deterministic": True}
    assert result.step == "fit" and result.code_changes == [] and result.diverged_outputs == []
    assert result.metric_differences == []
    # A reproduction registers nothing, and ran every step (the cache was off).
    assert [v.version for v in sdk.list_versions("repro")] == [1]
    again = sdk.get_pipeline_run(result.reproduced_pipeline_run_id)
    assert {s.status.value for s in again.steps} == {"SUCCEEDED"}
    assert sdk.get_run(again.run_id).tags["shipyard.reproduction_of"] == "models:/repro/1"


def test_a_nondeterministic_pipeline_reports_what_differs(sdk) -> None:
    run(repro, {"deterministic": False}, client=sdk)
    result = reproduce(sdk, "models:/repro/1")
    assert not result.identical
    assert result.reproduced_digest is not None and result.reproduced_digest != result.original_digest
    assert "fit.output" in result.diverged_outputs and "make.output" not in result.diverged_outputs
    draws = [d for d in result.metric_differences if d.metric == "draw"]
    assert draws and draws[0].step == "fit"
    assert draws[0].difference == pytest.approx(draws[0].reproduced - draws[0].original)


def test_models_not_built_by_a_pipeline_are_refused(sdk) -> None:
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    sdk.register_model(model, "loose")
    with pytest.raises(InvalidInput, match="no source run"):
        reproduce(sdk, "models:/loose/1")
    run_ = sdk.create_run()
    sdk.log_model(run_.id, model, registered_model_name="loose")
    with pytest.raises(InvalidInput, match="not registered from a pipeline step"):
        reproduce(sdk, "models:/loose/2")


def test_cli_reproduce_exit_codes(tmp_path) -> None:
    home = tmp_path / "home"
    with Client(home=home) as client:
        run(repro, {"deterministic": True}, client=client)
        run(repro, {"deterministic": False, "seed": 1}, client=client)
    runner = CliRunner()
    same = runner.invoke(app, ["--home", str(home), "--json", "reproduce", "models:/repro/1"])
    assert same.exit_code == 0, same.stderr
    assert json.loads(same.stdout)["identical"] is True
    different = runner.invoke(app, ["--home", str(home), "reproduce", "models:/repro/2"])
    assert different.exit_code == 1 and "different" in different.stdout
    missing = runner.invoke(app, ["--home", str(home), "reproduce", "models:/nope/1"])
    assert missing.exit_code == 1 and missing.stderr.startswith("error:")


def test_cli_reproduces_a_pipeline_from_a_module_in_the_current_directory(tmp_path, monkeypatch) -> None:
    (tmp_path / "cwd_pipeline_for_reproduce.py").write_text(
        "import shipyard\n"
        "from shipyard.pipelines import pipeline, step\n\n"
        "@step\n"
        "def fit(n: int) -> dict:\n"
        "    from sklearn.linear_model import LogisticRegression\n"
        "    model = LogisticRegression().fit([[float(i)] for i in range(n)], [i % 2 for i in range(n)])\n"
        "    return {'digest': shipyard.register_model(model, 'from-cwd').digest}\n\n"
        "@pipeline\n"
        "def p(n: int = 10):\n"
        "    fit(n)\n"
    )
    monkeypatch.chdir(tmp_path)
    home = str(tmp_path / "home")
    runner = CliRunner()
    ran = runner.invoke(app, ["--home", home, "pipeline", "run", "cwd_pipeline_for_reproduce:p", "-p", "n=12"])
    assert ran.exit_code == 0, ran.stderr
    # As in a fresh `shipyard reproduce` process: the module is not imported, the directory not on the path.
    monkeypatch.delitem(sys.modules, "cwd_pipeline_for_reproduce")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != os.getcwd()])
    again = runner.invoke(app, ["--home", home, "--json", "reproduce", "models:/from-cwd/1"])
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["identical"] is True
