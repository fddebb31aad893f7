"""The immutable content-addressed blob store: bytes in, ``sha256:<hex>`` out, and back again.

An object's name is the SHA-256 of its content, so an object is written once and never
changed; storing the same bytes twice stores nothing new. Objects live at
``<root>/objects/<first 2 hex>/<remaining 62 hex>``; partial writes live in ``<root>/tmp/``
and only become visible by an atomic rename, so a reader (or a crash) can never observe a
half-written object under a real name.

A plain local path (or ``file://`` URL) is handled with ``os``/``shutil`` directly; any other
fsspec URL (``s3://``, ``gs://``, ``az://``, ``memory://`` ...) goes through fsspec.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import time
import uuid
from typing import Any, BinaryIO

from shipyard.core.errors import IntegrityError, InvalidInput, NotFound
from shipyard.core.hashing import CHUNK, PREFIX, hash_bytes, hash_stream, hex_of, normalize_digest

# Object stores where a single PUT is all-or-nothing, so uploading straight to the final key
# is already atomic; a tmp-key-then-mv there would be a server-side copy of every byte.
_ATOMIC_PUT_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss"})
_S3_PROTOCOLS = frozenset({"s3", "s3a"})
_LOCAL_PREFIXES = ("file://", "local://")
# Objects are never modified in place; read-only files also protect the store from a caller
# writing through a hard link handed out by ``materialize_tree``.
_OBJECT_MODE = 0o444


def _current_umask() -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Fallback mutates process state briefly; acceptable once at import time.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _current_umask()
FILE_MODE = 0o666 & ~UMASK
DIR_MODE = 0o777 & ~UMASK


def _copy_hashing(src: BinaryIO, dst: BinaryIO) -> tuple[str, int]:
    """Copy in CHUNK pieces while hashing, so no file is ever held whole in memory."""
    h = hashlib.sha256()
    size = 0
    while True:
        chunk = src.read(CHUNK)
        if not chunk:
            break
        h.update(chunk)
        dst.write(chunk)
        size += len(chunk)
    return PREFIX + h.hexdigest(), size


def _fsync_dir(path: str) -> None:
    # Makes the rename itself durable; not every platform/filesystem allows opening a directory.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _unlink_quietly(path: str | None) -> None:
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _mismatch(expected: str, actual: str, what: str) -> IntegrityError:
    return IntegrityError(
        f"{what}: expected {expected}, content hashes to {actual}",
        field="digest",
        details={"expected": expected, "actual": actual},
    )


class ArtifactStore:
    """Content-addressed store rooted at a local path or an fsspec URL.

    All methods accept digests as ``sha256:<hex>`` or bare hex and return the prefixed form.
    Instances are safe to share between threads; several processes may write to the same
    root at once.
    """

    def __init__(self, root: str | os.PathLike[str], storage_options: dict[str, Any] | None = None) -> None:
        root = os.fspath(root)
        self.root = root
        self._local_root: str | None = None
        self._fs: Any = None
        self._root_path = ""
        self._atomic_put = False
        self._is_memory = False

        local = root
        for prefix in _LOCAL_PREFIXES:
            if root.startswith(prefix):
                local = root[len(prefix) :]
                break
        if "://" not in local:
            self._local_root = os.path.abspath(os.path.expanduser(local))
            os.makedirs(os.path.join(self._local_root, "objects"), exist_ok=True)
            os.makedirs(os.path.join(self._local_root, "tmp"), exist_ok=True)
            return

        import fsspec.core  # deferred: local-only users never pay the import

        protocol = root.split("://", 1)[0].lower()
        options = dict(storage_options or {})
        if protocol in _S3_PROTOCOLS:
            _apply_s3_endpoint_default(options)
        self._fs, path = fsspec.core.url_to_fs(root, **options)
        self._root_path = path.rstrip("/")
        fs_protocols = self._fs.protocol if isinstance(self._fs.protocol, tuple) else (self._fs.protocol,)
        self._atomic_put = any(p in _ATOMIC_PUT_PROTOCOLS for p in fs_protocols)
        self._is_memory = "memory" in fs_protocols

    def __repr__(self) -> str:
        return f"ArtifactStore({self.root!r})"

    @property
    def is_local(self) -> bool:
        return self._local_root is not None

    # -- naming -------------------------------------------------------------------------

    def _object_path(self, digest: str) -> str:
        hex_digest = hex_of(digest)
        if self._local_root is not None:
            return os.path.join(self._local_root, "objects", hex_digest[:2], hex_digest[2:])
        return f"{self._root_path}/objects/{hex_digest[:2]}/{hex_digest[2:]}"

    def _tmp_dir(self) -> str:
        assert self._local_root is not None
        return os.path.join(self._local_root, "tmp")

    def _not_found(self, digest: str) -> NotFound:
        return NotFound(f"artifact {digest} not found in {self.root}", field="digest")

    # -- queries ------------------------------------------------------------------------

    def has(self, digest: str) -> bool:
        path = self._object_path(digest)
        if self._local_root is not None:
            return os.path.isfile(path)
        return bool(self._fs.exists(path))

    def size(self, digest: str) -> int:
        digest = normalize_digest(digest)
        path = self._object_path(digest)
        try:
            if self._local_root is not None:
                return os.path.getsize(path)
            return int(self._fs.info(path)["size"])
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def local_path(self, digest: str) -> str | None:
        """The object's file for local roots (so callers can hard-link it), None for remote roots.

        The file is shared by everyone holding that digest: never write to it.
        """
        if self._local_root is None:
            return None
        digest = normalize_digest(digest)
        path = self._object_path(digest)
        if not os.path.isfile(path):
            raise self._not_found(digest)
        return path

    # -- writes -------------------------------------------------------------------------

    def put_file(self, path: str | os.PathLike[str]) -> tuple[str, int]:
        """Store a file's content; returns (digest, size). Streams; existing content is not rewritten."""
        with _open_source(os.fspath(path)) as f:
            if self._local_root is not None:
                return self._local_put(f, None)
            # Hash locally first: one local read, and no upload at all when the content is known.
            digest, size = hash_stream(f)
        if not self.has(digest):
            self._remote_upload_file(os.fspath(path), digest, size)
        return digest, size

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> tuple[str, int]:
        """Store everything readable from ``stream``.

        If ``expected_digest`` is given and the content does not hash to it, raise
        IntegrityError and keep nothing.
        """
        expected = normalize_digest(expected_digest) if expected_digest is not None else None
        if self._local_root is not None:
            return self._local_put(stream, expected)
        return self._remote_put_stream(stream, expected)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        digest = hash_bytes(data)
        # Hashing in memory is cheap, so skip the write entirely for known content.
        if self.has(digest):
            return digest, len(data)
        if self._local_root is not None:
            return self._local_put(io.BytesIO(data), digest)
        self._remote_upload_bytes(data, digest)
        return digest, len(data)

    def _local_put(self, stream: BinaryIO, expected: str | None) -> tuple[str, int]:
        tmp_dir = self._tmp_dir()
        os.makedirs(tmp_dir, exist_ok=True)  # someone may have cleaned tmp/ under us
        fd, tmp = tempfile.mkstemp(dir=tmp_dir, prefix="put-", suffix=".part")
        tmp_path: str | None = tmp
        try:
            with os.fdopen(fd, "wb") as out:
                digest, size = _copy_hashing(stream, out)
                if expected is not None and digest != expected:
                    raise _mismatch(expected, digest, "upload does not match its declared digest")
                final = self._object_path(digest)
                if os.path.isfile(final):
                    return digest, size
                # Without fsync a power loss after the rename could leave a named but empty object.
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, _OBJECT_MODE)
            final_dir = os.path.dirname(final)
            os.makedirs(final_dir, exist_ok=True)
            # Concurrent writers of the same content each rename their own complete copy;
            # whichever lands last wins and all are identical, so the race is harmless.
            os.replace(tmp, final)
            tmp_path = None
            _fsync_dir(final_dir)
            return digest, size
        finally:
            _unlink_quietly(tmp_path)

    def _remote_put_stream(self, stream: BinaryIO, expected: str | None) -> tuple[str, int]:
        # A stream can be read only once, so spool it to local disk while hashing; the spool is
        # private, so unlike put_file nothing can change it between hashing and uploading.
        with tempfile.NamedTemporaryFile(prefix="shipyard-put-", suffix=".part") as spool:
            digest, size = _copy_hashing(stream, spool)  # type: ignore[arg-type]
            spool.flush()
            if expected is not None and digest != expected:
                raise _mismatch(expected, digest, "upload does not match its declared digest")
            if not self.has(digest):
                self._remote_upload_file(spool.name, digest, size)
        return digest, size

    def _remote_upload_file(self, local: str, digest: str, size: int) -> None:
        final = self._object_path(digest)
        if self._atomic_put:
            self._fs.put_file(local, final)
            # The source could have changed after it was hashed; a size check catches the
            # usual case (a file still being written) at the cost of one HEAD.
            got = int(self._fs.info(final)["size"])
            if got != size:
                self._fs.rm_file(final)
                raise IntegrityError(f"{local} changed while it was being stored", field="path")
            return
        tmp = f"{self._root_path}/tmp/{uuid.uuid4().hex}.part"
        self._fs.makedirs(f"{self._root_path}/tmp", exist_ok=True)
        try:
            self._fs.put_file(local, tmp)
            if int(self._fs.info(tmp)["size"]) != size:
                raise IntegrityError(f"{local} changed while it was being stored", field="path")
            self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm_file(tmp)
            raise

    def _remote_upload_bytes(self, data: bytes, digest: str) -> None:
        final = self._object_path(digest)
        if self._atomic_put:
            self._fs.pipe_file(final, data)
            return
        tmp = f"{self._root_path}/tmp/{uuid.uuid4().hex}.part"
        self._fs.makedirs(f"{self._root_path}/tmp", exist_ok=True)
        try:
            self._fs.pipe_file(tmp, data)
            self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            self._fs.mv(tmp, final)
        except BaseException:
            with contextlib.suppress(Exception):
                self._fs.rm_file(tmp)
            raise

    # -- reads --------------------------------------------------------------------------

    def open(self, digest: str) -> BinaryIO:
        """Raw, unverified read stream of an object; the caller closes it."""
        digest = normalize_digest(digest)
        path = self._object_path(digest)
        try:
            if self._local_root is not None:
                return open(path, "rb")
            if self._is_memory:
                # fsspec's memory filesystem hands every reader the same shared file object, so
                # concurrent readers would move each other's position; the bytes are in RAM anyway.
                return io.BytesIO(self._fs.cat_file(path))
            return self._fs.open(path, "rb")  # type: ignore[no-any-return]
        except FileNotFoundError:
            raise self._not_found(digest) from None

    def read_bytes(self, digest: str, verify: bool = True) -> bytes:
        digest = normalize_digest(digest)
        with self.open(digest) as f:
            data = f.read()
        if verify:
            actual = hash_bytes(data)
            if actual != digest:
                raise _mismatch(digest, actual, f"stored object {digest} is corrupt")
        return data

    def get_file(self, digest: str, dest_path: str | os.PathLike[str], verify: bool = True) -> None:
        """Write an object to ``dest_path``; the file appears complete and verified, or not at all."""
        digest = normalize_digest(digest)
        dest = os.path.abspath(os.fspath(dest_path))
        parent = os.path.dirname(dest)
        os.makedirs(parent, exist_ok=True)
        with self.open(digest) as src:
            # Temp file beside dest: same filesystem, so the final rename is atomic.
            # Name truncated so a near-NAME_MAX destination name still leaves room for the suffixes.
            prefix = f".{os.path.basename(dest)[:100]}."
            fd, tmp = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=".part")
            tmp_path: str | None = tmp
            try:
                with os.fdopen(fd, "wb") as out:
                    actual, _ = _copy_hashing(src, out)
                if verify and actual != digest:
                    raise _mismatch(digest, actual, f"stored object {digest} is corrupt")
                os.chmod(tmp, FILE_MODE)
                os.replace(tmp, dest)
                tmp_path = None
            finally:
                _unlink_quietly(tmp_path)

    def verify(self, digest: str) -> bool:
        """Rehash a stored object: True if intact, False if corrupt; NotFound if absent."""
        digest = normalize_digest(digest)
        with self.open(digest) as f:
            actual, _ = hash_stream(f)
        return actual == digest

    # -- housekeeping -------------------------------------------------------------------

    def sweep_tmp(self, older_than: float = 24 * 3600) -> int:
        """Delete temp files left by crashed writers (local roots only); returns how many.

        Only files older than ``older_than`` seconds go, so live writes are left alone.
        """
        if self._local_root is None:
            return 0
        cutoff = time.time() - older_than
        removed = 0
        with os.scandir(self._tmp_dir()) as it:
            for entry in it:
                with contextlib.suppress(FileNotFoundError):
                    if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                        removed += 1
        return removed


def _open_source(path: str) -> BinaryIO:
    try:
        return open(path, "rb")
    except FileNotFoundError:
        raise NotFound(f"no such file: {path}", field="path") from None
    except IsADirectoryError:
        raise InvalidInput(f"is a directory, not a file: {path}", field="path") from None


def _apply_s3_endpoint_default(options: dict[str, Any]) -> None:
    """Let SHIPYARD_S3_ENDPOINT_URL point s3:// roots at MinIO/moto unless options already say."""
    endpoint = os.environ.get("SHIPYARD_S3_ENDPOINT_URL")
    if not endpoint or options.get("endpoint_url"):
        return
    client_kwargs = dict(options.get("client_kwargs") or {})
    if client_kwargs.get("endpoint_url"):
        return
    client_kwargs["endpoint_url"] = endpoint
    options["client_kwargs"] = client_kwargs
