"""Environment capture in a throw-away git repository, seeding and pinned requirements."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest

from shipyard.core.errors import InvalidInput
from shipyard.tracking import environment as envmod
from shipyard.tracking.environment import (
    capture_environment,
    git_info,
    requirements_from_environment,
    set_seed,
    strip_credentials,
)

GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"]


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True, text=True)
    return out.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never discover an enclosing repo
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "trunk")
    (path / "train.py").write_text("print('hi')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "first")
    return path


def test_git_commit_branch_and_dirty(repo: Path) -> None:
    env = capture_environment(str(repo))
    assert env["git"] == {"commit": git(repo, "rev-parse", "HEAD"), "branch": "trunk", "dirty": False, "remote": None}
    (repo / "notes.txt").write_text("untracked files do not make a checkout dirty\n")
    assert git_info(str(repo))["dirty"] is False
    (repo / "train.py").write_text("print('changed')\n")
    assert capture_environment(str(repo))["git"]["dirty"] is True  # re-read on every call, not cached
    git(repo, "commit", "-qam", "second")
    info = git_info(str(repo / "."))
    assert info["dirty"] is False and info["commit"] == git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach")
    assert git_info(str(repo))["branch"] is None


def test_git_remote_credentials_stripped(repo: Path) -> None:
    git(repo, "remote", "add", "backup", "https://backup.example.com/x.git")
    assert git_info(str(repo))["remote"] == "https://backup.example.com/x.git"  # no origin: first remote
    git(repo, "remote", "add", "origin", "https://alice:s3cret-token@git.example.com/team/proj.git")
    assert git_info(str(repo))["remote"] == "https://git.example.com/team/proj.git"


def test_git_absent_or_not_a_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    plain = tmp_path / "plain"
    plain.mkdir()
    none = {"commit": None, "branch": None, "dirty": None, "remote": None}
    assert capture_environment(str(plain))["git"] == none
    assert git_info(str(tmp_path / "does-not-exist")) == none
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable anywhere
    assert git_info(str(plain)) == none


def test_unborn_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    git(tmp_path, "init", "-q", "-b", "main")
    assert git_info(str(tmp_path)) == {"commit": None, "branch": "main", "dirty": False, "remote": None}


def test_environment_shape_and_caching(tmp_path: Path) -> None:
    env = capture_environment(str(tmp_path))
    assert set(env) == {"python", "packages", "platform", "host", "git", "command", "captured_at"}
    assert set(env["python"]) == {"version", "implementation", "executable"}
    assert set(env["platform"]) == {"system", "release", "machine", "os"}
    assert env["host"]["hostname"]
    assert env["packages"]["numpy"] == np.__version__
    names = list(env["packages"])
    assert names == sorted(names, key=str.lower)
    assert isinstance(env["command"], list) and isinstance(env["captured_at"], int)
    env["packages"]["numpy"] = "tampered"  # callers get copies; the cache is unaffected
    hits = envmod._packages.cache_info().hits
    again = capture_environment(str(tmp_path))
    assert envmod._packages.cache_info().hits == hits + 1
    assert again["packages"]["numpy"] == np.__version__


def test_default_directory_is_used(monkeypatch: pytest.MonkeyPatch, repo: Path) -> None:
    monkeypatch.setattr(envmod, "_default_dir", lambda: str(repo))
    assert capture_environment()["git"]["commit"] == git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pass@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://ghp_token@github.com/o/r.git", "https://github.com/o/r.git"),
        ("https://github.com/o/r.git?private_token=abc", "https://github.com/o/r.git"),
        ("ssh://git:pw@host.example/o/r.git", "ssh://git@host.example/o/r.git"),
        ("ssh://git@host.example:2222/o/r.git", "ssh://git@host.example:2222/o/r.git"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),
        ("/srv/git/r.git", "/srv/git/r.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_set_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONHASHSEED", "random")  # restored after the test
    assert set_seed(1234) == {"python": 1234, "numpy": 1234}
    first = (random.random(), np.random.rand())
    set_seed(1234)
    assert (random.random(), np.random.rand()) == first
    assert os.environ["PYTHONHASHSEED"] == "1234"
    for bad in (-1, 2**32, 1.5, True, "7"):
        with pytest.raises(InvalidInput, match="seed"):
            set_seed(bad)  # type: ignore[arg-type]


def test_requirements_from_environment() -> None:
    env = capture_environment()
    lines = requirements_from_environment(env, ["sklearn", "numpy.linalg", "os", "json", "numpy", "xgboost"])
    assert lines == sorted(
        [
            f"numpy=={env['packages']['numpy']}",
            f"scikit-learn=={env['packages']['scikit-learn']}",
            f"xgboost-cpu=={env['packages']['xgboost-cpu']}",
        ],
        key=str.lower,
    )
    with pytest.raises(InvalidInput, match="'no_such_module_xyz'"):
        requirements_from_environment(env, ["no_such_module_xyz"])
    # versions come from the recorded environment, not from this process
    recorded = {"packages": {"NumPy": "1.0.0"}}
    assert requirements_from_environment(recorded, ["numpy"]) == ["NumPy==1.0.0"]
