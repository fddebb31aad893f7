"""API operations of audit: signing keys, version signatures, journal checkpoints, audit logs, bundles."""

from __future__ import annotations

from shipyard.api.operation import Operation

MODEL = ("model", "name")
VERSION_PATH = "/models/{name}/versions/{version}"

AUDIT_OPERATIONS: tuple[Operation, ...] = (
    Operation("list_signing_keys", "audit", "GET", "/signing-keys", "List registered signing keys"),
    Operation("server_public_key", "audit", "GET", "/signing-keys/server", "The server's signing key"),
    Operation("register_signing_key", "audit", "POST", "/signing-keys", "Register your ed25519 public key"),
    Operation(
        "add_version_signature",
        "audit",
        "POST",
        f"{VERSION_PATH}/signatures",
        "Attach a signature made with your registered key",
        permission="write",
        scope=MODEL,
    ),
    Operation(
        "verify_version_signature",
        "audit",
        "GET",
        f"{VERSION_PATH}/signature",
        "Check a version's signatures against its digest",
        scope=MODEL,
    ),
    Operation(
        "verify_artifact",
        "audit",
        "GET",
        f"{VERSION_PATH}/verify",
        "Re-hash a version's stored objects and check its signatures",
        scope=MODEL,
    ),
    Operation(
        "create_checkpoint", "audit", "POST", "/journal/checkpoints", "Sign the journal's head", permission="admin"
    ),
    Operation("export_checkpoints", "audit", "GET", "/journal/checkpoints", "Signed journal checkpoints"),
    Operation(
        "verify_checkpoints",
        "audit",
        "POST",
        "/journal/checkpoints/verify",
        "Prove the journal was only appended to since the given checkpoints",
        permission="read",
    ),
    Operation("audit_log", "audit", "GET", "/models/{name}/audit-log", "Who did what to each version", scope=MODEL),
    Operation(
        "build_bundle",
        "audit",
        "POST",
        f"{VERSION_PATH}/evidence-bundle",
        "Build a version's evidence bundle (a zip blob)",
        permission="read",
        scope=MODEL,
    ),
)
