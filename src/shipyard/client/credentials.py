"""Where the SDK finds its API token for a server: argument, then SHIPYARD_TOKEN, then the credentials file.

``shipyard login`` writes the credentials file (``$SHIPYARD_CONFIG_DIR`` or ``~/.config/shipyard``,
``credentials.json``, mode 0600), one token per server URL, so one machine can talk to several
servers. Tokens are never printed or logged by the SDK.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

TOKEN_ENV = "SHIPYARD_TOKEN"
CONFIG_DIR_ENV = "SHIPYARD_CONFIG_DIR"


def credentials_path() -> Path:
    base = os.environ.get(CONFIG_DIR_ENV) or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "shipyard"
    )
    return Path(base) / "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def _read() -> dict[str, str]:
    try:
        data = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def resolve_token(url: str, token: str | None = None) -> str | None:
    return token or os.environ.get(TOKEN_ENV) or _read().get(_key(url))


def save_token(url: str, token: str) -> Path:
    """Store ``token`` for ``url`` (replacing any earlier one), atomically and readable by the owner only."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read()
    data[_key(url)] = token
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def forget_token(url: str) -> bool:
    data = _read()
    if _key(url) not in data:
        return False
    del data[_key(url)]
    path = credentials_path()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
    return True
