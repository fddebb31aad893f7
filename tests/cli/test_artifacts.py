"""``shipyard artifacts``: log a file and a directory, list them, download them back byte for byte."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error, parse


@pytest.fixture
def source(tmp_path: Path) -> Path:
    root = tmp_path / "src" / "report"
    (root / "plots").mkdir(parents=True)
    (root / "summary.txt").write_text("accuracy 0.93\n")
    (root / "plots" / "roc.bin").write_bytes(os.urandom(300_000))
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_log_list_download_round_trip(cli, sdk, source: Path, tmp_path: Path) -> None:
    run = sdk.create_run(name="art")
    logged = cli("artifacts", "log", run.id, str(source))
    assert logged.exit_code == 0, logged.stderr
    assert "report" in logged.stdout and "directory" in logged.stdout and "sha256:" in logged.stdout
    single = parse(
        cli("artifacts", "log", run.id, str(source / "summary.txt"), "--path", "docs/summary.txt", json=True)
    )
    assert single["path"] == "docs/summary.txt" and single["is_tree"] is False and single["size"] == 14

    listing = cli("artifacts", "list", run.id)
    assert "report" in listing.stdout and "docs/summary.txt" in listing.stdout and "dir" in listing.stdout
    data = parse(cli("artifacts", "list", run.id, json=True))
    assert {a["path"]: a["is_tree"] for a in data} == {"report": True, "docs/summary.txt": False}

    # a tree into a new path
    dest = tmp_path / "out" / "copy"
    result = cli("artifacts", "download", run.id, "report", str(dest))
    assert result.exit_code == 0, result.stderr
    assert "2 files" in result.stdout
    assert _files(dest) == _files(source)
    (dest / "summary.txt").write_text("edited")  # a download is the user's copy, not a link into the store

    # a tree into an existing directory lands under its own name; JSON reports what was written
    existing = tmp_path / "existing"
    existing.mkdir()
    info = parse(cli("artifacts", "download", run.id, "report", str(existing), json=True))
    assert info["dest"] == str(existing / "report") and info["files"] == 2 and info["is_tree"] is True
    assert _files(existing / "report") == _files(source)

    # a single file, to a file path and into a directory
    file_dest = tmp_path / "one.txt"
    assert cli("artifacts", "download", run.id, "docs/summary.txt", str(file_dest)).exit_code == 0
    assert file_dest.read_text() == "accuracy 0.93\n"
    assert cli("artifacts", "download", run.id, "docs/summary.txt", str(existing)).exit_code == 0
    assert (existing / "summary.txt").read_text() == "accuracy 0.93\n"


def test_download_errors(cli, sdk, source: Path, tmp_path: Path) -> None:
    run = sdk.create_run(name="art")
    sdk.log_artifact(run.id, source)
    assert_one_line_error(cli("artifacts", "download", run.id, "missing", str(tmp_path / "x")), "no artifact")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "report").mkdir()
    (taken / "report" / "keep").write_text("x")
    assert_one_line_error(cli("artifacts", "download", run.id, "report", str(taken)), "not an empty directory")
    assert (taken / "report" / "keep").read_text() == "x"


def test_log_missing_file(cli, sdk, tmp_path: Path) -> None:
    run = sdk.create_run()
    assert_one_line_error(cli("artifacts", "log", run.id, str(tmp_path / "nope")), "no such file or directory")
