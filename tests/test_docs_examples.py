"""The runnable examples that open docs pages run, and print what their page says they print."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.parametrize("page", ["approvals.md", "events.md", "automations.md", "dashboard.md"])
def test_the_example_runs_and_prints_what_the_page_says(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("SHIPYARD_URI", "SHIPYARD_HOME", "SHIPYARD_STORE_URI", "SHIPYARD_ARTIFACT_URI", "SHIPYARD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    doc = DOCS / page
    text = doc.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S)
    expected = re.search(r"It prints:\n\n```text\n(.*?)```", text, re.S)
    assert code is not None and expected is not None
    namespace: dict[str, object] = {"__name__": "__example__"}
    try:
        exec(compile(code.group(1), str(doc), "exec"), namespace)
    finally:
        client = namespace.get("client")
        if client is not None:
            client.close()  # type: ignore[attr-defined]
    assert capsys.readouterr().out == expected.group(1)
