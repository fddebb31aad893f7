"""Validation tests reuse the CLI fixtures (a temporary home, an SDK client on it, an in-process CLI runner)."""

from tests.cli.conftest import _clean_env, cli, sdk  # noqa: F401
