"""The two ways the SDK reaches the service layer, behind one ``call(service, operation, **kwargs)``.

``EmbeddedBackend`` calls the services in-process (SQLite or PostgreSQL straight from this
process); ``RemoteBackend`` sends the same call over HTTP to ``shipyard server`` using the same
operations table the server generated its routes from. Results come back as the same pydantic
entities either way, and errors as the same exception classes.
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

import pydantic_core
from pydantic import TypeAdapter

from shipyard.api.operations import BY_NAME, Operation, return_type
from shipyard.client.credentials import resolve_token
from shipyard.core.errors import IntegrityError, NotFound, ShipyardError, Unavailable
from shipyard.core.hashing import hash_file, hash_stream, normalize_digest
from shipyard.core.settings import Settings

if TYPE_CHECKING:
    import httpx

_PATH_PARAM = re.compile(r"{(\w+)}")
API_PREFIX = "/api/v1"
TRANSIENT_STATUS = {502, 503, 504}


class EmbeddedBackend:
    remote = False

    def __init__(self, settings: Settings):
        from shipyard.services import Services

        self.settings = settings
        self.services = Services(settings)
        self.artifacts = self.services.artifacts

    def call(self, service: str, operation: str, **kwargs: Any) -> Any:
        BY_NAME[(service, operation)]  # only contract operations, so embedded cannot do more than remote
        return getattr(getattr(self.services, service), operation)(**kwargs)

    def close(self) -> None:
        self.services.close()


class RemoteBackend:
    remote = True

    def __init__(self, settings: Settings, timeout: float = 60.0, retries: int = 3, token: str | None = None):
        assert settings.remote_uri
        self.settings = settings
        self.base_url = settings.remote_uri.rstrip("/")
        self.retries = retries
        import httpx  # only the remote backend needs it: embedded processes start faster without it

        headers = {"user-agent": "shipyard-sdk"}
        token = resolve_token(self.base_url, token)
        if token:
            headers["authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)
        self.artifacts = RemoteArtifactStore(self)
        self._returns: dict[tuple[str, str], TypeAdapter[Any]] = {}
        self._lock = threading.Lock()

    def call(self, service: str, operation: str, **kwargs: Any) -> Any:
        op = BY_NAME[(service, operation)]
        path_names = _PATH_PARAM.findall(op.path)
        path = op.path
        for name in path_names:
            path = path.replace("{" + name + "}", quote(str(kwargs.pop(name)), safe=""))
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        if op.method == "GET":
            response = self.request(op.method, API_PREFIX + path, params=kwargs)
        else:
            body = pydantic_core.to_json(kwargs, inf_nan_mode="strings")
            response = self.request(
                op.method, API_PREFIX + path, content=body, headers={"content-type": "application/json"}
            )
        return self._adapter(op).validate_json(response.content)

    def _adapter(self, op: Operation) -> TypeAdapter[Any]:
        key = (op.service, op.name)
        adapter = self._returns.get(key)
        if adapter is None:
            adapter = TypeAdapter(return_type(op))
            with self._lock:
                self._returns[key] = adapter
        return adapter

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """One HTTP request with retries on connection failures and 502/503/504; errors become ShipyardError."""
        import httpx

        last: Exception | None = None
        for attempt in range(self.retries + 1):
            try:
                response = self.http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                last = exc
            else:
                if response.status_code < 400:
                    return response
                if response.status_code not in TRANSIENT_STATUS:
                    raise _error_from(response)
                last = _error_from(response)
            if attempt < self.retries and _rewindable(kwargs):
                threading.Event().wait(min(0.2 * 2**attempt, 2.0))
            else:
                break
        if isinstance(last, ShipyardError):
            raise last
        raise Unavailable(f"Shipyard server at {self.base_url} is unreachable: {last}")

    def close(self) -> None:
        self.http.close()


def _rewindable(kwargs: dict[str, Any]) -> bool:
    content = kwargs.get("content")
    if content is None or isinstance(content, (bytes, str)):
        return True
    if hasattr(content, "seek"):
        content.seek(0)
        return True
    return False


def _error_from(response: httpx.Response) -> ShipyardError:
    try:
        body = response.json().get("error") or {}
    except Exception:
        body = {"message": response.text[:500] or response.reason_phrase}
    if not isinstance(body, dict):
        body = {"message": str(body)}
    return ShipyardError.from_dict(response.status_code, body)


class RemoteArtifactStore:
    """The artifact store's interface over HTTP, so tree functions work the same remotely."""

    def __init__(self, backend: RemoteBackend):
        self.backend = backend

    def has(self, digest: str) -> bool:
        digest = normalize_digest(digest)
        try:
            self.backend.request("HEAD", f"{API_PREFIX}/blobs/{digest}")
        except NotFound:
            return False
        except ShipyardError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def put_file(self, path: str) -> tuple[str, int]:
        digest, size = hash_file(path)
        if not self.has(digest):
            with open(path, "rb") as f:
                self.backend.request("PUT", f"{API_PREFIX}/blobs/{digest}", content=f)
        return digest, size

    def put_stream(self, stream: BinaryIO, expected_digest: str | None = None) -> tuple[str, int]:
        data = stream.read()
        return self.put_bytes(data)

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if not self.has(digest):
            self.backend.request("PUT", f"{API_PREFIX}/blobs/{digest}", content=data)
        return digest, len(data)

    def read_bytes(self, digest: str, verify: bool = True) -> bytes:
        digest = normalize_digest(digest)
        data = self.backend.request("GET", f"{API_PREFIX}/blobs/{digest}").content
        if verify:
            import hashlib

            actual = "sha256:" + hashlib.sha256(data).hexdigest()
            if actual != digest:
                raise IntegrityError(f"object {digest} arrived with digest {actual}", field="digest")
        return data

    def get_file(self, digest: str, dest_path: str, verify: bool = True) -> None:
        import os
        import tempfile

        digest = normalize_digest(digest)
        directory = os.path.dirname(os.path.abspath(dest_path))
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".download-", dir=directory)
        try:
            with os.fdopen(fd, "wb") as out, self.backend.http.stream("GET", f"{API_PREFIX}/blobs/{digest}") as r:
                if r.status_code >= 400:
                    r.read()
                    raise _error_from(r)
                for chunk in r.iter_bytes(1024 * 1024):
                    out.write(chunk)
            if verify:
                with open(tmp, "rb") as f:
                    actual, _ = hash_stream(f)
                if actual != digest:
                    raise IntegrityError(f"object {digest} arrived with digest {actual}", field="digest")
            os.replace(tmp, dest_path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def local_path(self, digest: str) -> str | None:
        return None

    @property
    def is_local(self) -> bool:
        return False
