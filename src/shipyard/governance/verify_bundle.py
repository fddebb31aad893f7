"""Offline verification of an evidence bundle: ``python -m shipyard.governance.verify_bundle FILE.zip``.

Needs no store and no server, only the zip (and, to pin trust, the server's key id or public key):

1. every file listed in ``manifest.json`` is present with its SHA-256, and nothing else is in the zip;
2. ``manifest.sig`` is a valid signature over the manifest's exact bytes (by a trusted key, if given);
3. each version signature in ``signatures.json`` verifies over the manifest's model, version and digest;
4. each entry of ``journal.jsonl`` hashes to its recorded hash from its fields and the previous hash
   (``store/chain.py``), and the version's registration entry names the same digest;
5. ``checkpoint.json`` is validly signed and covers the last included entry.

Exit 0 with a summary, or 1 naming the first failure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

from shipyard.core.errors import InvalidInput
from shipyard.governance import signing
from shipyard.store import chain

FIXED = ("manifest.json", "manifest.sig")


class BundleInvalid(Exception):
    """The first check that failed, naming the file (and entry) at fault."""


def _load_json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BundleInvalid(f"{what}: not valid JSON ({exc})") from None


def _key_ok(key_id: Any, public: Any, what: str, trusted: set[str] | None) -> None:
    try:
        derived = signing.key_id_of(public)
    except (InvalidInput, AttributeError):
        raise BundleInvalid(f"{what}: public key is not valid base64") from None
    if derived != key_id:
        raise BundleInvalid(f"{what}: key_id {key_id} is not the id of its public key ({derived})")
    if trusted is not None and key_id not in trusted and public not in trusted:
        raise BundleInvalid(f"{what}: signed by key {key_id}, which is not a trusted key")


def verify_bundle(path: str | Path, trusted_keys: list[str] | None = None) -> dict[str, Any]:
    """``{"ok": True, ...summary}`` or ``{"ok": False, "problem": "<the first failure>"}``.

    ``trusted_keys``: key ids or base64 public keys the manifest and checkpoint must be signed with."""
    trusted = set(trusted_keys) if trusted_keys else None
    try:
        return {"ok": True, **_verify(Path(path), trusted)}
    except BundleInvalid as exc:
        return {"ok": False, "problem": str(exc)}


def _verify(path: Path, trusted: set[str] | None) -> dict[str, Any]:
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # BadZipFile, OSError, and whatever a mangled central directory raises
        raise BundleInvalid(f"{path}: not a readable zip ({exc})") from None
    with archive:
        names = archive.namelist()
        for required in FIXED:
            if required not in names:
                raise BundleInvalid(f"{required}: missing from the bundle")

        def read(name: str) -> bytes:
            try:
                return archive.read(name)
            except Exception as exc:  # a corrupt member fails its CRC or decompression (zlib.error, ...)
                raise BundleInvalid(f"{name}: unreadable in the zip ({exc})") from None

        manifest_bytes = read("manifest.json")
        manifest = _load_json(manifest_bytes, "manifest.json")
        listed = manifest.get("files") if isinstance(manifest, dict) else None
        if not isinstance(listed, dict):
            raise BundleInvalid("manifest.json: has no files list")
        contents: dict[str, bytes] = {}
        for name, expected in listed.items():
            if name not in names:
                raise BundleInvalid(f"{name}: listed in the manifest but missing from the bundle")
            data = read(name)
            actual = hashlib.sha256(data).hexdigest()
            if not isinstance(expected, dict) or actual != expected.get("sha256"):
                raise BundleInvalid(f"{name}: its SHA-256 {actual} does not match the manifest")
            contents[name] = data
        extra = sorted(set(names) - set(listed) - set(FIXED))
        if extra:
            raise BundleInvalid(f"{extra[0]}: in the bundle but not in the manifest")

        sig = _load_json(read("manifest.sig"), "manifest.sig")
        if not isinstance(sig, dict):
            raise BundleInvalid("manifest.sig: not a signature object")
        _key_ok(sig.get("key_id"), sig.get("public_key"), "manifest.sig", trusted)
        if not signing.verify(sig["public_key"], signing.bundle_message(manifest_bytes), str(sig.get("signature"))):
            raise BundleInvalid("manifest.sig: the signature over manifest.json does not verify")

        model, version, digest = manifest.get("model"), manifest.get("version"), manifest.get("digest")
        if not isinstance(model, str) or not isinstance(version, int) or not isinstance(digest, str):
            raise BundleInvalid("manifest.json: needs the model, version and digest")
        signatures = _guarded("signatures.json", _check_signatures, contents, model, version, digest)
        entries = _guarded("journal.jsonl", _check_journal, contents, version, digest)
        checkpoint = _guarded("checkpoint.json", _check_checkpoint, contents, entries, trusted)
    return {
        "model": model,
        "version": version,
        "digest": digest,
        "files": len(listed),
        "signatures": signatures,
        "journal_entries": len(entries),
        "checkpoint_seq": checkpoint["seq"],
        "key_id": sig["key_id"],
    }


def _guarded(name: str, check: Any, *args: Any) -> Any:
    """Run one file's check; a malformed document (a missing key, a wrong type) fails naming the file."""
    try:
        return check(*args)
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BundleInvalid(f"{name}: malformed ({type(exc).__name__}: {exc})") from None


def _check_signatures(contents: dict[str, bytes], model: Any, version: Any, digest: Any) -> int:
    if "signatures.json" not in contents:
        raise BundleInvalid("signatures.json: missing from the manifest")
    doc = _load_json(contents["signatures.json"], "signatures.json")
    if doc.get("digest") != digest:
        raise BundleInvalid(f"signatures.json: names digest {doc.get('digest')}, the manifest {digest}")
    message = signing.version_message(str(model), int(version), str(digest))
    items = doc.get("signatures") or []
    for i, item in enumerate(items):
        what = f"signatures.json: signature {i + 1} (key {item.get('key_id')})"
        _key_ok(item.get("key_id"), item.get("public_key"), what, None)
        if not signing.verify(item["public_key"], message, str(item.get("signature"))):
            raise BundleInvalid(f"{what}: does not match digest {digest}")
    return len(items)


def _check_journal(contents: dict[str, bytes], version: Any, digest: Any) -> list[dict[str, Any]]:
    if "journal.jsonl" not in contents:
        raise BundleInvalid("journal.jsonl: missing from the manifest")
    entries = []
    for n, line in enumerate(contents["journal.jsonl"].splitlines(), 1):
        if not line.strip():
            continue
        entry = _load_json(line, f"journal.jsonl: line {n}")
        try:
            expected = chain.link(
                entry["previous_hash"],
                entry["ts"],
                entry["actor"],
                entry["action"],
                entry["entity_type"],
                entry["entity_id"],
                entry["payload"],
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BundleInvalid(f"journal.jsonl: line {n} lacks a field ({exc})") from None
        if expected != entry.get("hash"):
            raise BundleInvalid(
                f"journal.jsonl: entry seq {entry.get('seq')} ({entry['action']}): its hash does not match "
                "its content and the previous hash"
            )
        if entries and entry.get("seq", 0) <= entries[-1].get("seq", 0):
            raise BundleInvalid(f"journal.jsonl: entry seq {entry.get('seq')} is out of order")
        entries.append(entry)
    registered = [
        e
        for e in entries
        if e["action"] == "version.registered" and (e["payload"] or {}).get("after", {}).get("version") == version
    ]
    if registered and registered[0]["payload"]["after"].get("digest") != digest:
        raise BundleInvalid(
            f"journal.jsonl: the registration (seq {registered[0]['seq']}) names digest "
            f"{registered[0]['payload']['after'].get('digest')}, the manifest {digest}"
        )
    return entries


def _check_checkpoint(
    contents: dict[str, bytes], entries: list[dict[str, Any]], trusted: set[str] | None
) -> dict[str, Any]:
    if "checkpoint.json" not in contents:
        raise BundleInvalid("checkpoint.json: missing from the manifest")
    cp = _load_json(contents["checkpoint.json"], "checkpoint.json")
    if not isinstance(cp, dict) or not isinstance(cp.get("seq"), int) or not isinstance(cp.get("hash"), str):
        raise BundleInvalid("checkpoint.json: needs seq and hash")
    _key_ok(cp.get("key_id"), cp.get("public_key"), "checkpoint.json", trusted)
    if not signing.verify(
        cp["public_key"], signing.checkpoint_message(cp["seq"], cp["hash"]), str(cp.get("signature"))
    ):
        raise BundleInvalid(f"checkpoint.json: the signature over seq {cp['seq']} does not verify")
    if entries and cp["seq"] < entries[-1]["seq"]:
        raise BundleInvalid(f"checkpoint.json: seq {cp['seq']} is before the last entry (seq {entries[-1]['seq']})")
    for entry in entries:
        if entry["seq"] == cp["seq"] and entry["hash"] != cp["hash"]:
            raise BundleInvalid(f"checkpoint.json: the entry at seq {cp['seq']} has another hash than the checkpoint")
    return cp


def summary_lines(result: dict[str, Any]) -> list[str]:
    if not result["ok"]:
        return [f"bundle INVALID: {result['problem']}"]
    signatures = result["signatures"]
    return [
        f"bundle OK: {result['model']} version {result['version']} ({result['digest']})",
        f"  {result['files']} files match the manifest; manifest signed by key {result['key_id']}",
        f"  {signatures} version signature(s) valid" if signatures else "  version is unsigned (legacy)",
        f"  {result['journal_entries']} journal entries hash correctly; checkpoint at seq {result['checkpoint_seq']}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard.governance.verify_bundle", description=__doc__)
    parser.add_argument("bundle", help="the evidence bundle (.zip)")
    parser.add_argument("--key", action="append", help="trusted key id or base64 public key (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    result = verify_bundle(args.bundle, args.key)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        stream = sys.stdout if result["ok"] else sys.stderr
        for line in summary_lines(result):
            print(line, file=stream)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
