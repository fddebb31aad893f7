"""The audit trail: per-model audit log, signing of versions, signed journal checkpoints, evidence bundles.

The server's ed25519 key signs every version at registration (a registry hook, in the registering
transaction) and every journal checkpoint; identities may register their own keys and attach
signatures made on their side. Verification reads the signatures back and checks them against the
version's digest as the store has it now, so a digest or a signature changed in storage is refused.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.dialects import postgresql, sqlite

from shipyard.artifacts import load_tree
from shipyard.core.context import current_actor
from shipyard.core.errors import AlreadyExists, Conflict, InvalidInput, NotFound, PermissionDenied
from shipyard.core.time import now_ms
from shipyard.governance import audit_log, signing
from shipyard.governance import checkpoints as checkpoint_log
from shipyard.governance.audit_entities import AuditEntry, Bundle, Checkpoint, SigningKey
from shipyard.store import schema as t
from shipyard.store.database import Tx

SUBJECT = "model_version"


class AuditService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db

    # ----------------------------------------------------------------------------------------------
    # keys

    @cached_property
    def server_key(self) -> tuple[Ed25519PrivateKey, str, str]:
        """(private key, key id, base64 public key) of this server, created on first use."""
        key = signing.load_or_create_key(signing.server_key_path(self.services.settings.home))
        public = signing.public_key_b64(key)
        return key, signing.key_id_of(public), public

    def _record_key(self, tx: Tx, key_id: str, owner: str, public: str) -> bool:
        """Insert the key unless it is there (racing writers insert it once); True if this call did."""
        values = {"key_id": key_id, "owner": owner, "public_key": public, "created_at": now_ms()}
        dialect = postgresql if tx.dialect == "postgresql" else sqlite
        if tx.conn.execute(sa.select(t.signing_keys.c.key_id).where(t.signing_keys.c.key_id == key_id)).first():
            return False
        insert = dialect.insert(t.signing_keys).values(**values).on_conflict_do_nothing()
        # RETURNING says whether this statement inserted (rowcount is unreliable after ON CONFLICT)
        if tx.conn.execute(insert.returning(t.signing_keys.c.key_id)).first() is not None:
            tx.journal("signing_key.registered", "signing_key", key_id, {"owner": owner, "public_key": public})
            return True
        return False

    def _server_key_in(self, tx: Tx) -> tuple[Ed25519PrivateKey, str]:
        key, key_id, public = self.server_key
        self._record_key(tx, key_id, signing.SERVER_OWNER, public)
        return key, key_id

    def list_signing_keys(self) -> list[SigningKey]:
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(t.signing_keys).order_by(t.signing_keys.c.created_at, t.signing_keys.c.key_id)
            )
            return [SigningKey(**row._mapping) for row in rows]

    def server_public_key(self) -> SigningKey:
        """The server's signing key (recorded on first use): what an auditor pins to trust bundles."""
        with self.db.write() as tx:
            _, key_id = self._server_key_in(tx)
            row = tx.conn.execute(sa.select(t.signing_keys).where(t.signing_keys.c.key_id == key_id)).one()
        return SigningKey(**row._mapping)

    def register_signing_key(self, public_key_b64: str) -> SigningKey:
        """Register the caller's ed25519 public key (base64 of the 32 raw bytes); idempotent per owner."""
        signing.parse_public_key(public_key_b64, "public_key_b64")
        key_id = signing.key_id_of(public_key_b64)
        owner = current_actor()
        if owner == signing.SERVER_OWNER:
            raise InvalidInput("the owner name 'server' is reserved for the server's key", field="public_key_b64")
        with self.db.write() as tx:
            row = tx.conn.execute(sa.select(t.signing_keys).where(t.signing_keys.c.key_id == key_id)).first()
            if row is not None and row.owner != owner:
                raise Conflict(f"signing key {key_id} is already registered to {row.owner!r}", field="public_key_b64")
            if row is None:
                self._record_key(tx, key_id, owner, public_key_b64)
                row = tx.conn.execute(sa.select(t.signing_keys).where(t.signing_keys.c.key_id == key_id)).one()
        return SigningKey(**row._mapping)

    # ----------------------------------------------------------------------------------------------
    # version signatures

    def sign_registration(self, tx: Tx, name: str, version: int, version_id: str, digest: str) -> None:
        """The registry hook: the server signs the new version's digest inside the registering transaction."""
        key, key_id = self._server_key_in(tx)
        signature = signing.sign(key, signing.version_message(name, version, digest))
        self._insert_signature(tx, version_id, digest, key_id, signature)
        tx.journal(
            "version.signed",
            "model",
            tx.conn.execute(sa.select(t.model_versions.c.model_id).where(t.model_versions.c.id == version_id)).scalar(),
            {"version": version, "digest": digest, "key_id": key_id, "owner": signing.SERVER_OWNER},
        )

    def _insert_signature(self, tx: Tx, version_id: str, digest: str, key_id: str, signature: str) -> None:
        tx.conn.execute(
            t.artifact_signatures.insert().values(
                subject_type=SUBJECT,
                subject_id=version_id,
                digest=digest,
                key_id=key_id,
                signer=tx.actor,
                signature=signature,
                created_at=now_ms(),
            )
        )

    def add_version_signature(self, name: str, version: int, key_id: str, signature_b64: str) -> dict[str, Any]:
        """Attach a signature the caller made with their registered key over the version's message
        (``shipyard-model-version:v1\\nNAME\\nVERSION\\nDIGEST``); it is verified before it is stored."""
        if not isinstance(key_id, str) or not key_id:
            raise InvalidInput("key_id must name a registered signing key", field="key_id")
        with self.db.write() as tx:
            model, row = self.services.registry._version_row(tx.conn, name, version)
            key = tx.conn.execute(sa.select(t.signing_keys).where(t.signing_keys.c.key_id == key_id)).first()
            if key is None:
                raise NotFound(f"no signing key {key_id!r}; register it first", field="key_id")
            if key.owner != tx.actor:
                raise PermissionDenied(
                    f"signing key {key_id} belongs to {key.owner!r}; only its owner attaches signatures with it",
                    field="key_id",
                )
            if key.revoked_at is not None:
                raise InvalidInput(f"signing key {key_id} is revoked", field="key_id")
            message = signing.version_message(name, version, row.digest)
            if not signing.verify(key.public_key, message, signature_b64 if isinstance(signature_b64, str) else ""):
                raise InvalidInput(
                    f"signature_b64 is not key {key_id}'s signature of {name}/{version} (digest {row.digest})",
                    field="signature_b64",
                )
            duplicate = tx.conn.execute(
                sa.select(t.artifact_signatures.c.id).where(
                    t.artifact_signatures.c.subject_type == SUBJECT,
                    t.artifact_signatures.c.subject_id == row.id,
                    t.artifact_signatures.c.key_id == key_id,
                )
            ).first()
            if duplicate is None:
                self._insert_signature(tx, row.id, row.digest, key_id, signature_b64)
                tx.journal(
                    "version.signed",
                    "model",
                    model.id,
                    {"version": version, "digest": row.digest, "key_id": key_id, "owner": key.owner},
                )
        return self.verify_version_signature(name, version)

    def _signature_rows(self, conn: sa.Connection, version_id: str) -> list[sa.Row]:
        s, k = t.artifact_signatures, t.signing_keys
        return conn.execute(
            sa.select(s, k.c.owner, k.c.public_key, k.c.revoked_at)
            .join(k, k.c.key_id == s.c.key_id, isouter=True)
            .where(s.c.subject_type == SUBJECT, s.c.subject_id == version_id)
            .order_by(s.c.id)
        ).all()

    def verify_version_signature(self, name: str, version: int) -> dict[str, Any]:
        """``{"valid", "reason", "signatures": [{key_id, signer, owner, valid}], "digest"}``: valid when the
        version has at least one signature and every signature verifies over its current digest."""
        with self.db.read() as conn:
            _, row = self.services.registry._version_row(conn, name, version)
            rows = self._signature_rows(conn, row.id)
        return judge_signatures(name, version, row.digest, rows)

    def signature_records(self, name: str, version: int) -> list[dict[str, Any]]:
        """The stored signatures of a version with their public keys (what a bundle carries)."""
        with self.db.read() as conn:
            _, row = self.services.registry._version_row(conn, name, version)
            rows = self._signature_rows(conn, row.id)
        fields = ("key_id", "owner", "public_key", "signer", "signature", "digest", "created_at")
        return [{f: getattr(r, f) for f in fields} for r in rows]

    def verify_artifact(self, name: str, version: int) -> dict[str, Any]:
        """Re-hash every object of the version's stored tree and check its signatures."""
        signature = self.verify_version_signature(name, version)
        digest = signature["digest"]
        corrupt: list[str] = []
        missing: list[str] = []
        tree = load_tree(self.services.artifacts, digest)  # the manifest itself is verified on read
        for rel, entry in tree.entries.items():
            try:
                if not self.services.artifacts.verify(entry.digest):
                    corrupt.append(rel)
            except NotFound:
                missing.append(rel)
        objects_ok = not corrupt and not missing
        if not objects_ok:
            first = (corrupt or missing)[0]
            reason = f"object {tree.entries[first].digest} ({first}) does not match its digest" + (
                "" if corrupt else " (missing)"
            )
        else:
            reason = signature["reason"]
        return {
            "name": name,
            "version": version,
            "digest": digest,
            "valid": objects_ok and signature["valid"],
            "objects_ok": objects_ok,
            "objects": len(tree.entries),
            "corrupt": corrupt,
            "missing": missing,
            "reason": reason,
            "signature": signature,
        }

    # ----------------------------------------------------------------------------------------------
    # journal checkpoints

    def create_checkpoint(self) -> Checkpoint:
        """Sign the journal's head (seq and hash) with the server key; the server calls this periodically.
        Checkpoints are statements about the journal, not changes to it, so they are not journaled."""
        for attempt in range(3):
            try:
                with self.db.write() as tx:
                    key, key_id = self._server_key_in(tx)
                    seq = checkpoint_log.create(tx, key, key_id)
                break
            except AlreadyExists:  # another process checkpointed the same head at the same moment
                if attempt == 2:
                    raise
        with self.db.read() as conn:
            return checkpoint_log.listing(conn, seq)[0]

    def export_checkpoints(self, after: int = 0) -> list[Checkpoint]:
        """Every checkpoint with seq > ``after``, with its public key: the JSON an outside party keeps."""
        with self.db.read() as conn:
            return [cp for cp in checkpoint_log.listing(conn) if cp.seq > after]

    def verify_checkpoints(self, checkpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Check exported checkpoints (default: the store's own) against the journal as it is now: each
        signature, the hash at each seq, and the chain through every later entry."""
        if checkpoints is None:
            checkpoints = [cp.model_dump() for cp in self.export_checkpoints()]
            if not checkpoints:
                raise NotFound("the store has no checkpoints yet; create one first", field="checkpoints")
        with self.db.read() as conn:
            rows = conn.execution_options(yield_per=10_000).execute(sa.select(t.journal).order_by(t.journal.c.seq))
            return checkpoint_log.verify(checkpoints, rows)

    # ----------------------------------------------------------------------------------------------
    # the audit log and evidence bundles

    def audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        """Who registered, signed, evaluated, reviewed, approved, deployed and rolled back each version
        of ``name``, when, and with what evidence (the journal payload), in journal order."""
        if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
            raise InvalidInput(f"version must be a positive integer, not {version!r}", field="version")
        with self.db.read() as conn:
            model = self.services.registry._model_row(conn, name)
            if version is not None:
                self.services.registry._version_row(conn, name, version)
            entries = audit_log.model_entries(conn, model)
        return [e for e in entries if version is None or e.version == version]

    def build_bundle(self, name: str, version: int) -> Bundle:
        """Build the evidence bundle of a version (a zip in the artifact store; download it by digest)."""
        from shipyard.governance.bundle import build

        return build(self.services, name, version)


def judge_signatures(name: str, version: int, digest: str, rows: list[Any]) -> dict[str, Any]:
    """The verdict over a version's signature rows (each with key_id, signer, owner, public_key,
    revoked_at, signature), against the digest the store has now."""
    message = signing.version_message(name, version, digest)
    results = []
    first_problem = None
    for r in rows:
        if r.public_key is None:
            valid, why = False, f"signature by unknown key {r.key_id}"
        elif r.revoked_at is not None:
            valid, why = False, f"signature by revoked key {r.key_id}"
        elif not signing.verify(r.public_key, message, r.signature):
            valid, why = False, f"signature does not match digest {digest} (key {r.key_id}, {r.owner})"
        else:
            valid, why = True, ""
        results.append({"key_id": r.key_id, "signer": r.signer, "owner": r.owner, "valid": valid})
        if not valid and first_problem is None:
            first_problem = why
    if not rows:
        reason = "unsigned: the version has no signature (registered before signing existed)"
    elif first_problem:
        reason = first_problem
    else:
        reason = f"{len(rows)} valid signature(s) over {digest}"
    return {"valid": bool(rows) and first_problem is None, "reason": reason, "signatures": results, "digest": digest}
