"""Evidence bundles: built through the SDK on every backend, verified offline (no store) by the CLI and by
``python -m shipyard.governance.verify_bundle``; one edited byte, a re-signed forgery or an untrusted key
is named."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import sqlalchemy as sa
from typer.testing import CliRunner

from shipyard import Client
from shipyard.cli.main import app
from shipyard.governance import signing
from shipyard.governance.verify_bundle import verify_bundle
from shipyard.store import schema as t
from tests.governance.test_signing import X, Y, engine, model


def _register(client: Client) -> None:
    train = client.log_dataset(X.assign(label=Y), name="churn-train")
    run = client.create_run()
    client.log_metric(run.id, "auc", 0.91)
    client.log_model(run.id, model(), registered_model_name="churn", data_refs=[train.ref])
    client.end_run(run.id)


def _members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {name: z.read(name) for name in z.namelist()}


def _write(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


def test_a_bundle_holds_the_evidence_and_verifies_offline(client: Client, tmp_path: Path) -> None:
    _register(client)
    target = tmp_path / "churn-1.zip"
    bundle = client.download_bundle("churn", 1, target)
    assert bundle.digest.startswith("sha256:") and target.stat().st_size == bundle.size
    result = verify_bundle(target, [client.server_public_key().key_id])
    assert result["ok"], result
    assert result["model"] == "churn" and result["version"] == 1 and result["signatures"] == 1
    members = _members(target)
    manifest = json.loads(members["manifest.json"])
    assert set(manifest["files"]) == set(members) - {"manifest.json", "manifest.sig"}
    assert manifest["digest"] == client.get_version("churn", 1).digest
    assert json.loads(members["metrics.json"])["metrics"]["auc"] == 0.91
    lineage = json.loads(members["lineage.json"])
    assert lineage["data_refs"] == ["churn-train@1"] and lineage["datasets"][0]["digest"].startswith("sha256:")
    assert b"churn" in members["model_card.md"] and json.loads(members["model_card.json"])
    assert json.loads(members["signatures.json"])["verification"]["valid"] is True
    journal = [json.loads(line) for line in members["journal.jsonl"].splitlines()]
    assert {"version.registered", "version.signed"} <= {e["action"] for e in journal}
    checkpoint = json.loads(members["checkpoint.json"])
    assert checkpoint["seq"] == bundle.checkpoint_seq >= journal[-1]["seq"]
    for name in ("approvals.json", "policy_decisions.json", "evaluations.json", "audit_log.json"):
        assert isinstance(json.loads(members[name]), list)


def test_one_edited_byte_inside_the_zip_is_named(client: Client, tmp_path: Path) -> None:
    _register(client)
    target = tmp_path / "b.zip"
    client.download_bundle("churn", 1, target)
    members = _members(target)
    card = bytearray(members["model_card.md"])
    card[0] ^= 0x20
    _write(tmp_path / "edited.zip", {**members, "model_card.md": bytes(card)})
    result = verify_bundle(tmp_path / "edited.zip")
    assert not result["ok"] and result["problem"].startswith("model_card.md: its SHA-256")
    _write(tmp_path / "extra.zip", {**members, "notes.txt": b"hello"})
    assert verify_bundle(tmp_path / "extra.zip")["problem"].startswith("notes.txt: in the bundle but not")
    sig = json.loads(members["manifest.sig"])
    manifest = bytearray(members["manifest.json"])
    manifest[manifest.index(b'"model": "churn"') + 10] = ord("C")
    _write(tmp_path / "renamed.zip", {**members, "manifest.json": bytes(manifest)})
    assert verify_bundle(tmp_path / "renamed.zip")["problem"].startswith("manifest.sig: the signature")
    assert sig["key_id"] == client.server_public_key().key_id


def test_a_resigned_forgery_is_caught_by_content_or_by_the_pinned_key(client: Client, tmp_path: Path) -> None:
    _register(client)
    target = tmp_path / "b.zip"
    client.download_bundle("churn", 1, target)
    members = _members(target)
    lines = members["journal.jsonl"].splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "actor": "mallory"}).encode()
    members["journal.jsonl"] = b"\n".join(lines) + b"\n"
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["journal.jsonl"]["sha256"] = hashlib.sha256(members["journal.jsonl"]).hexdigest()
    forger = signing.Ed25519PrivateKey.generate()
    members["manifest.json"] = json.dumps(manifest).encode()
    public = signing.public_key_b64(forger)
    members["manifest.sig"] = json.dumps(
        {
            "key_id": signing.key_id_of(public),
            "public_key": public,
            "signature": signing.sign(forger, signing.bundle_message(members["manifest.json"])),
        }
    ).encode()
    _write(tmp_path / "forged.zip", members)
    result = verify_bundle(tmp_path / "forged.zip")
    assert not result["ok"] and result["problem"].startswith(f"journal.jsonl: entry seq {first['seq']}")
    pinned = verify_bundle(tmp_path / "forged.zip", [client.server_public_key().public_key])
    assert "which is not a trusted key" in pinned["problem"]


def test_a_legacy_unsigned_version_still_bundles(client: Client, tmp_path: Path) -> None:
    client.register_model(model(), "legacy")
    with engine(client).begin() as conn:
        conn.execute(sa.delete(t.artifact_signatures))
    client.download_bundle("legacy", 1, tmp_path / "legacy.zip")
    result = verify_bundle(tmp_path / "legacy.zip")
    assert result["ok"] and result["signatures"] == 0


def test_cli_and_module_verify_offline(tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    client = Client(home=home)
    try:
        _register(client)
    finally:
        client.close()
    runner = CliRunner()
    target = tmp_path / "evidence.zip"
    built = runner.invoke(app, ["--home", home, "audit", "bundle", "-m", "churn", "-v", "1", "-o", str(target)])
    assert built.exit_code == 0, built.output
    assert f"shipyard audit verify-bundle {target}" in built.stdout
    ok = runner.invoke(app, ["audit", "verify-bundle", str(target)])
    assert ok.exit_code == 0 and "bundle OK: churn version 1" in ok.stdout
    module = [sys.executable, "-m", "shipyard.governance.verify_bundle", str(target)]
    ran = subprocess.run(module, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert ran.returncode == 0 and "1 version signature(s) valid" in ran.stdout
    members = _members(target)
    members["approvals.json"] = members["approvals.json"].replace(b"[]", b"[1]")
    _write(target, members)
    bad = runner.invoke(app, ["audit", "verify-bundle", str(target)])
    assert bad.exit_code == 1 and bad.stderr.startswith("bundle INVALID: approvals.json:")
    ran = subprocess.run(module, capture_output=True, text=True, cwd=tmp_path, check=False)
    assert ran.returncode == 1 and "approvals.json" in ran.stderr and "Traceback" not in ran.stderr
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    assert "not a readable zip" in runner.invoke(app, ["audit", "verify-bundle", str(garbage)]).stderr


def test_any_flipped_byte_of_the_zip_is_caught_unless_the_contents_are_unchanged(tmp_path: Path) -> None:
    client = Client(home=tmp_path / "home")
    try:
        client.register_model(model(), "churn")
        original = tmp_path / "b.zip"
        client.download_bundle("churn", 1, original)
    finally:
        client.close()
    data, contents = original.read_bytes(), _members(original)
    flipped = tmp_path / "flipped.zip"
    for i in range(len(data)):
        mangled = bytearray(data)
        mangled[i] ^= 0x01
        flipped.write_bytes(bytes(mangled))
        result = verify_bundle(flipped)  # never raises
        if result["ok"]:  # only zip metadata or deflate padding changed: the evidence itself is intact
            assert _members(flipped) == contents, i
