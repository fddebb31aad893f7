"""The SDK's audit calls, mixed into :class:`shipyard.Client`: signing, checkpoints, audit logs, bundles.

What runs on the caller's side, and only here: signing with the caller's own private key (it never
leaves their machine), downloading bundles and journal exports to files, and the signature check
that gates loading a model version.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from shipyard.core.errors import IntegrityError
from shipyard.governance.audit_entities import AuditEntry, Bundle, Checkpoint, SigningKey

JOURNAL_PAGE = 10_000


class AuditMixin:
    def _call(self, service: str, operation: str, **kwargs: Any) -> Any:  # provided by Client
        raise NotImplementedError

    @property
    def artifacts(self) -> Any:  # provided by Client
        raise NotImplementedError

    def materialize_model(self, digest: str) -> Path:  # provided by Client
        raise NotImplementedError

    # -- keys and signatures

    def list_signing_keys(self) -> list[SigningKey]:
        return self._call("audit", "list_signing_keys")

    def server_public_key(self) -> SigningKey:
        """The server's signing key: pin its ``key_id`` to trust bundles and checkpoints."""
        return self._call("audit", "server_public_key")

    def register_signing_key(self, public_key_b64: str) -> SigningKey:
        """Register your ed25519 public key (base64 of the 32 raw bytes) under your identity."""
        return self._call("audit", "register_signing_key", public_key_b64=public_key_b64)

    def add_version_signature(self, name: str, version: int, key_id: str, signature_b64: str) -> dict[str, Any]:
        return self._call(
            "audit", "add_version_signature", name=name, version=version, key_id=key_id, signature_b64=signature_b64
        )

    def sign_version(self, name: str, version: int, private_key_path: str | os.PathLike[str]) -> dict[str, Any]:
        """Sign a version's digest with your private key (PEM, ed25519) locally, registering its public key
        under your identity if needed, and attach the signature. Returns the version's verification."""
        from shipyard.governance import signing

        key = signing.load_private_key(private_key_path)
        public = signing.public_key_b64(key)
        key_id = signing.key_id_of(public)
        if key_id not in {k.key_id for k in self.list_signing_keys()}:
            self.register_signing_key(public)
        digest = self._call("registry", "get_version", name=name, version=version).digest
        signature = signing.sign(key, signing.version_message(name, version, digest))
        return self.add_version_signature(name, version, key_id, signature)

    @staticmethod
    def generate_signing_key(path: str | os.PathLike[str]) -> str:
        """Write a new ed25519 private key (PEM, mode 0600) to ``path``; returns its base64 public key."""
        from shipyard.governance import signing

        target = Path(path)
        signing.write_new_key(target, exclusive=True)
        return signing.public_key_b64(signing.load_private_key(target))

    def verify_version_signature(self, name: str, version: int) -> dict[str, Any]:
        """``{"valid", "reason", "signatures": [{key_id, signer, owner, valid}], "digest"}``."""
        return self._call("audit", "verify_version_signature", name=name, version=version)

    def verify_artifact(self, name: str, version: int) -> dict[str, Any]:
        """Re-hash every stored object of the version's tree and check its signatures."""
        return self._call("audit", "verify_artifact", name=name, version=version)

    def verified_model_dir(self, name: str, version: int, digest: str) -> Path:
        """The version's files, materialised and checked: its signatures must verify over ``digest``
        (unsigned legacy versions pass unless SHIPYARD_REQUIRE_SIGNATURES=1) and every file must match
        its digest. Anything else raises IntegrityError naming the version."""
        from shipyard.governance import signing

        label = f"model {name}/{version}"
        verdict = self.verify_version_signature(name, version)
        if verdict["digest"] != digest:
            raise IntegrityError(
                f"{label}: the registry now names digest {verdict['digest']}, not {digest}", field="digest"
            )
        if not verdict["signatures"]:
            if signing.signatures_required():
                raise IntegrityError(
                    f"{label} is unsigned, and {signing.REQUIRE_ENV}=1 refuses unsigned versions", field="signature"
                )
        elif not verdict["valid"]:
            raise IntegrityError(f"{label}: {verdict['reason']}; refusing to load it", field="signature")
        try:
            return self.materialize_model(digest)
        except IntegrityError as exc:
            # the local store says which digest it expected; a remote download names it first in the message
            found = re.search(r"sha256:[0-9a-f]{64}", exc.message)
            expected = exc.details.get("expected") or (found.group(0) if found else None)
            what = f"object {expected} does not match its digest" if expected else exc.message
            raise IntegrityError(
                f"{label}: {what} ({exc.message}); refusing to load a tampered artifact",
                field="digest",
                details=exc.details,
            ) from None

    # -- journal checkpoints

    def create_checkpoint(self) -> Checkpoint:
        """Sign the journal's current head with the server key (admin)."""
        return self._call("audit", "create_checkpoint")

    def export_checkpoints(self, after: int = 0) -> list[Checkpoint]:
        return self._call("audit", "export_checkpoints", after=after)

    def verify_checkpoints(self, checkpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Prove the journal was only appended to since ``checkpoints`` (default: the store's own)."""
        if checkpoints is not None:
            checkpoints = [c.model_dump() if isinstance(c, Checkpoint) else c for c in checkpoints]
        return self._call("audit", "verify_checkpoints", checkpoints=checkpoints)

    def export_journal(self, path: str | os.PathLike[str]) -> int:
        """Write the whole journal as JSON Lines (what ``verify-checkpoints --journal`` reads offline)."""
        target = Path(path)
        count, after = 0, 0
        tmp = target.with_name(f".{target.name}.partial")
        with open(tmp, "w", encoding="utf-8") as out:
            while True:
                page = self._call("journal", "read", after=after, limit=JOURNAL_PAGE)
                for entry in page:
                    out.write(json.dumps(entry.model_dump(), sort_keys=True, ensure_ascii=False) + "\n")
                count += len(page)
                if len(page) < JOURNAL_PAGE:
                    break
                after = page[-1].seq
        os.replace(tmp, target)
        return count

    # -- audit log and evidence bundles

    def audit_log(self, name: str, version: int | None = None) -> list[AuditEntry]:
        """Who registered, signed, evaluated, approved, deployed and rolled back each version, and when."""
        return self._call("audit", "audit_log", name=name, version=version)

    def build_bundle(self, name: str, version: int) -> Bundle:
        return self._call("audit", "build_bundle", name=name, version=version)

    def download_bundle(self, name: str, version: int, path: str | os.PathLike[str]) -> Bundle:
        """Build the version's evidence bundle and write the zip to ``path``."""
        bundle = self.build_bundle(name, version)
        Path(path).write_bytes(self.artifacts.read_bytes(bundle.digest))
        return bundle
