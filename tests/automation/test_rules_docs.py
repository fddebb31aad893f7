"""docs/automations.md: its opening example runs and prints what the page says it prints."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "automations.md"


def test_the_example_runs_and_prints_what_the_page_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "SHIPYARD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    text = DOC.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    expected = re.search(r"It prints:\n\n```text\n(.*?)```", text, re.S)
    assert code is not None and expected is not None
    namespace: dict[str, object] = {"__name__": "__example__"}
    try:
        exec(compile(code.group(1), str(DOC), "exec"), namespace)
    finally:
        client = namespace.get("client")
        if client is not None:
            client.close()  # type: ignore[attr-defined]
    assert capsys.readouterr().out == expected.group(1)
