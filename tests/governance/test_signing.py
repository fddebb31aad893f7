"""Signing of model versions: the server signs each registration; identities add their own signatures;
``load_model`` refuses a version whose stored object, digest or signature was changed directly in
storage (SQLite and PostgreSQL, embedded and remote), and unsigned versions only under
SHIPYARD_REQUIRE_SIGNATURES=1."""

from __future__ import annotations

import multiprocessing
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.linear_model import LogisticRegression

from shipyard import Client
from shipyard.artifacts import read_manifest
from shipyard.core.errors import IntegrityError, InvalidInput, NotFound, PermissionDenied
from shipyard.governance import signing
from shipyard.store import schema as t

X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0, 4.0, 5.0], "b": [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]})
Y = [0, 0, 0, 1, 1, 1]


def model() -> LogisticRegression:
    return LogisticRegression(max_iter=200).fit(X, Y)


def engine(client: Client) -> sa.Engine:
    if client.is_remote:
        return sa.create_engine(client.server_settings.store_uri)
    return client._backend.services.db.engine


def object_file(client: Client, digest: str) -> Path:
    root = Path(getattr(client, "server_home", client.settings.home)) / "artifacts"
    hex_digest = digest.split(":")[1]
    return root / "objects" / hex_digest[:2] / hex_digest[2:]


def weights_object(client: Client, digest: str) -> Path:
    manifest = read_manifest(client.artifacts, digest)
    entry = next(e for p, e in manifest["entries"].items() if p != "shipyard-model.json")
    return object_file(client, entry["digest"])


def version_id(client: Client, name: str, version: int) -> str:
    return client.get_version(name, version).id


def test_registration_is_signed_by_the_server_key(client: Client) -> None:
    v = client.register_model(model(), "churn")
    result = client.verify_version_signature("churn", v.version)
    assert set(result) == {"valid", "reason", "signatures", "digest"}
    assert result["valid"] is True and result["digest"] == v.digest
    [sig] = result["signatures"]
    assert set(sig) == {"key_id", "signer", "owner", "valid"} and sig["owner"] == "server" and sig["valid"]
    server = client.server_public_key()
    assert server.key_id == sig["key_id"] == signing.key_id_of(server.public_key)
    assert [k.key_id for k in client.list_signing_keys()] == [server.key_id]
    assert "version.signed" in [e.action for e in client.audit_log("churn", 1)]
    check = client.verify_artifact("churn", 1)
    assert check["valid"] and check["objects_ok"] and check["objects"] >= 2
    assert client.load_model("models:/churn/1").predict(X).tolist() == model().predict(X).tolist()


def test_a_flipped_byte_in_a_stored_object_is_refused(client: Client) -> None:
    v = client.register_model(model(), "churn")
    path = weights_object(client, v.digest)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError) as err:
        client.load_model("models:/churn/1")
    assert "model churn/1" in err.value.message and "does not match its digest" in err.value.message
    check = client.verify_artifact("churn", 1)
    assert not check["valid"] and not check["objects_ok"] and len(check["corrupt"]) == 1
    assert check["signature"]["valid"]  # the signature still holds: the object is what changed


def test_a_changed_digest_in_the_database_is_refused(client: Client) -> None:
    client.register_model(model(), "churn")
    other = client.register_model(LogisticRegression(C=0.01, max_iter=200).fit(X, Y), "churn")
    with engine(client).begin() as conn:  # point version 1 at version 2's (intact, but unsigned for v1) tree
        conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.id == version_id(client, "churn", 1))
            .values(digest=other.digest)
        )
    result = client.verify_version_signature("churn", 1)
    assert not result["valid"] and result["digest"] == other.digest
    assert "signature does not match digest" in result["reason"]
    with pytest.raises(IntegrityError) as err:
        client.load_model("models:/churn/1")
    assert err.value.message.startswith("model churn/1: signature does not match digest")
    client.load_model("models:/churn/2")  # the other version is untouched


def test_a_changed_signature_row_is_refused(client: Client) -> None:
    client.register_model(model(), "churn")
    forged = signing.sign(signing.Ed25519PrivateKey.generate(), b"anything")
    with engine(client).begin() as conn:
        conn.execute(
            t.artifact_signatures.update()
            .where(t.artifact_signatures.c.subject_id == version_id(client, "churn", 1))
            .values(signature=forged)
        )
    with pytest.raises(IntegrityError, match="model churn/1: signature does not match digest"):
        client.load_model("models:/churn/1")


def test_unsigned_versions_load_unless_signatures_are_required(client: Client, monkeypatch) -> None:
    client.register_model(model(), "legacy")
    with engine(client).begin() as conn:  # as if registered before signing existed
        conn.execute(t.artifact_signatures.delete())
    result = client.verify_version_signature("legacy", 1)
    assert result["valid"] is False and result["signatures"] == [] and "unsigned" in result["reason"]
    client.load_model("models:/legacy/1")
    monkeypatch.setenv("SHIPYARD_REQUIRE_SIGNATURES", "1")
    with pytest.raises(IntegrityError, match="model legacy/1 is unsigned"):
        client.load_model("models:/legacy/1")


def test_an_identity_signs_a_version_with_its_own_key(client: Client, tmp_path: Path) -> None:
    client.register_model(model(), "churn")
    key_file = tmp_path / "me.pem"
    public = client.generate_signing_key(key_file)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    result = client.sign_version("churn", 1, key_file)
    assert result["valid"] and len(result["signatures"]) == 2
    mine = next(s for s in result["signatures"] if s["owner"] != "server")
    assert mine["key_id"] == signing.key_id_of(public) and mine["valid"]
    again = client.sign_version("churn", 1, key_file)  # idempotent: the key and the signature once each
    assert len(again["signatures"]) == 2 and len(client.list_signing_keys()) == 2
    with pytest.raises(InvalidInput) as err:
        client.generate_signing_key(key_file)  # never overwrites a key
    assert err.value.field == "path"


def test_bad_signatures_and_keys_are_refused_naming_the_field(client: Client, tmp_path: Path) -> None:
    client.register_model(model(), "churn")
    public = client.generate_signing_key(tmp_path / "me.pem")
    key = client.register_signing_key(public)
    assert client.register_signing_key(public).key_id == key.key_id  # idempotent for its owner
    wrong = signing.sign(signing.load_private_key(tmp_path / "me.pem"), signing.version_message("churn", 1, "x"))
    cases = [
        (lambda: client.add_version_signature("churn", 1, key.key_id, wrong), InvalidInput, "signature_b64"),
        (lambda: client.add_version_signature("churn", 1, key.key_id, "%%%"), InvalidInput, "signature_b64"),
        (lambda: client.add_version_signature("churn", 1, "0" * 32, wrong), NotFound, "key_id"),
        (lambda: client.add_version_signature("churn", 9, key.key_id, wrong), NotFound, "version"),
        (lambda: client.register_signing_key("not base64!"), InvalidInput, "public_key_b64"),
        (lambda: client.register_signing_key("AAAA"), InvalidInput, "public_key_b64"),
        (lambda: client.verify_version_signature("nope", 1), NotFound, "model"),
    ]
    for call, error, field in cases:
        with pytest.raises(error) as err:
            call()
        assert err.value.field == field, err.value.message


def test_only_a_keys_owner_attaches_signatures_with_it(tmp_path: Path) -> None:
    from shipyard.core.context import acting_as

    client = Client(home=tmp_path / "home")
    try:
        client.register_model(model(), "churn")
        public = client.generate_signing_key(tmp_path / "alice.pem")
        with acting_as("alice"):
            client.register_signing_key(public)
        with acting_as("mallory"), pytest.raises(PermissionDenied, match="belongs to 'alice'"):
            client.sign_version("churn", 1, tmp_path / "alice.pem")
        with acting_as("alice"):
            assert client.sign_version("churn", 1, tmp_path / "alice.pem")["valid"]
    finally:
        client.close()


def _load_key(path: str) -> str:
    return signing.public_key_b64(signing.load_or_create_key(path))


def test_the_server_key_is_created_once_with_mode_0600_even_when_processes_race(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "signing-ed25519.pem"
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        publics = pool.map(_load_key, [str(path)] * 8)
    assert len(set(publics)) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["signing-ed25519.pem"]  # no temporary files left


def test_the_server_key_path_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "elsewhere.pem"
    monkeypatch.setenv("SHIPYARD_SIGNING_KEY", str(path))
    client = Client(home=tmp_path / "home")
    try:
        client.register_model(model(), "churn")
        assert client.server_public_key().public_key == _load_key(str(path))
        assert not (tmp_path / "home" / "keys").exists()
    finally:
        client.close()


def test_concurrent_first_registrations_record_the_server_key_once(tmp_path: Path, pg_uri: str) -> None:
    import threading

    home = tmp_path / "home"
    errors: list[BaseException] = []

    def register(worker: int) -> None:
        own = Client(home=home, store_uri=pg_uri)
        try:
            own.register_model(model(), f"m{worker}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=register, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    client = Client(home=home, store_uri=pg_uri)
    try:
        assert len(client.list_signing_keys()) == 1
        assert all(client.verify_version_signature(f"m{n}", 1)["valid"] for n in range(6))
        assert len(client.read_journal(action="signing_key.registered")) == 1
        assert client.verify_journal()["ok"]
    finally:
        client.close()
