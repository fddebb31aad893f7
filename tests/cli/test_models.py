"""``shipyard models`` / ``versions`` / ``aliases``: register from a directory or a run, move aliases, download."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error, parse


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    root.mkdir()
    (root / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (root / "README").write_text("a model\n")
    return root


def test_register_directory_and_aliases(cli, sdk, model_dir: Path, tmp_path: Path) -> None:
    first = cli("models", "register", str(model_dir), "--name", "churn", "--description", "v1 weights")
    assert first.exit_code == 0, first.stderr
    v1 = sdk.get_version("churn", 1)
    assert "registered models:/churn/1" in first.stdout and v1.digest in first.stdout  # digest in full
    assert v1.description == "v1 weights" and v1.flavor == "files"

    (model_dir / "weights.bin").write_bytes(b"\x02" * 10)
    v2 = parse(cli("models", "register", str(model_dir), "--name", "churn", "--tag", "stage=test", json=True))
    assert v2["version"] == 2 and v2["tags"] == {"stage": "test"} and len(v2["digest"]) == 71

    set_out = cli("aliases", "set", "churn", "production", "1")
    assert set_out.exit_code == 0 and v1.digest in set_out.stdout
    assert parse(cli("aliases", "set", "churn", "production", "2", json=True))["aliases"] == ["production"]
    assert cli("aliases", "set", "churn", "staging", "1").exit_code == 0
    assert cli("aliases", "delete", "churn", "staging").exit_code == 0

    history = parse(cli("aliases", "history", "churn", json=True))
    assert [(m["alias"], m["from_version"], m["to_version"]) for m in history] == [
        ("production", None, 1),
        ("production", 1, 2),
        ("staging", None, 1),
        ("staging", 1, None),
    ]
    only = parse(cli("aliases", "history", "churn", "production", json=True))
    assert [m["to_version"] for m in only] == [1, 2]
    table = cli("aliases", "history", "churn").stdout
    assert "production" in table and "v1" in table and "(deleted)" in table

    aliases = parse(cli("aliases", "list", "churn", json=True))
    assert aliases == [{"alias": "production", "version": 2, "digest": v2["digest"]}]
    assert v2["digest"] in cli("aliases", "list", "churn").stdout

    versions = cli("versions", "list", "churn")
    assert v1.digest in versions.stdout and v2["digest"] in versions.stdout
    shown = cli("versions", "show", "churn", "2")
    assert v2["digest"] in shown.stdout and "production" in shown.stdout and "models:/churn/2" in shown.stdout
    assert parse(cli("versions", "show", "churn", "1", json=True))["digest"] == v1.digest

    listing = cli("models", "list")
    assert "churn" in listing.stdout and "production→v2" in listing.stdout
    model = parse(cli("models", "show", "churn", json=True))
    assert model["aliases"] == {"production": 2} and [v["version"] for v in model["versions"]] == [1, 2]
    assert v1.digest in cli("models", "show", "churn").stdout

    # download by alias: the version's files, verified, written as an editable copy
    dest = tmp_path / "dl"
    result = cli("models", "download", "models:/churn@production", str(dest))
    assert result.exit_code == 0, result.stderr
    assert v2["digest"] in result.stdout
    assert (dest / "weights.bin").read_bytes() == b"\x02" * 10 and (dest / "README").read_text() == "a model\n"
    old = parse(cli("models", "download", "models:/churn/1", str(tmp_path / "v1"), json=True))
    assert old["version"]["version"] == 1 and old["files"] == 2
    assert (tmp_path / "v1" / "weights.bin").read_bytes() == b"\x00\x01" * 1000


def test_register_from_run(cli, sdk, model_dir: Path, tmp_path: Path) -> None:
    run = sdk.create_run(name="train")
    sdk.log_artifact(run.id, model_dir, "model")
    version = parse(cli("models", "register", f"runs:/{run.id}/model", "--name", "fraud", json=True))
    assert version["source_run_id"] == run.id and version["source_uri"] == f"runs:/{run.id}/model"
    dest = tmp_path / "from-run"
    assert cli("models", "download", f"runs:/{run.id}/model", str(dest)).exit_code == 0
    assert (dest / "README").read_text() == "a model\n"


def test_model_lifecycle(cli, sdk, model_dir: Path) -> None:
    assert cli("models", "create", "empty", "-d", "nothing yet").stdout.startswith("created model empty")
    assert parse(cli("models", "describe", "empty", "now [bold]described[/]", json=True))["description"] == (
        "now [bold]described[/]"
    )
    assert "now [bold]described[/]" in cli("models", "list").stdout  # user text is not rich markup
    assert cli("models", "delete", "empty").exit_code == 0
    assert parse(cli("models", "list", json=True)) == []

    sdk.register_model(str(model_dir), "kept")
    assert_one_line_error(cli("models", "delete", "kept"), "cannot be deleted")


def test_model_errors(cli, home, tmp_path: Path) -> None:
    assert_one_line_error(cli("models", "show", "nope"), "registered model 'nope' not found")
    assert_one_line_error(cli("versions", "list", "nope"), "not found")
    assert_one_line_error(cli("models", "download", "models:/nope/1", str(tmp_path / "x")), "not found")
    assert_one_line_error(cli("models", "download", "nonsense", str(tmp_path / "x")), "invalid model URI")
    assert_one_line_error(
        cli("models", "register", str(tmp_path / "missing"), "--name", "m"), "neither a runs:/ URI nor a directory"
    )
    result = cli("models", "register", str(tmp_path))
    assert result.exit_code == 2 and "--name" in result.stderr
