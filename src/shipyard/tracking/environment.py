"""Capture the environment a run executes in (Python, packages, platform, host, git) and seed RNGs.

Enumerating installed distributions and probing the platform are slow and cannot change within a
process, so they are cached per process; git state is re-read on every call (two short ``git``
invocations, each with a 5 s timeout). Every git field is None outside a repository or without git.
"""

from __future__ import annotations

import functools
import os
import platform
import random
import re
import socket
import subprocess
import sys
from importlib import metadata as importlib_metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from shipyard.core.errors import InvalidInput
from shipyard.core.time import now_ms

GIT_TIMEOUT_S = 5.0

__all__ = ["capture_environment", "git_info", "requirements_from_environment", "set_seed", "strip_credentials"]


@functools.lru_cache(maxsize=1)
def _packages() -> tuple[tuple[str, str], ...]:
    found: dict[str, tuple[str, str]] = {}
    for dist in importlib_metadata.distributions():
        name = dist.metadata.get("Name")
        if not name:
            continue
        found.setdefault(_normalize(name), (name, dist.version))  # first on sys.path wins, like imports
    return tuple(sorted(found.values(), key=lambda nv: nv[0].lower()))


@functools.lru_cache(maxsize=1)
def _platform() -> tuple[tuple[str, str], ...]:
    return (
        ("system", platform.system()),
        ("release", platform.release()),
        ("machine", platform.machine()),
        ("os", platform.platform()),
    )


@functools.lru_cache(maxsize=1)
def _module_distributions() -> dict[str, list[str]]:
    return {k: list(dict.fromkeys(v)) for k, v in importlib_metadata.packages_distributions().items()}


def _normalize(name: str) -> str:
    """PEP 503 normalized distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _default_dir() -> str:
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    if main_file:
        return os.path.dirname(os.path.abspath(main_file))
    return os.getcwd()


def strip_credentials(url: str) -> str:
    """A remote URL without passwords or tokens.

    For http(s)/ftp the whole user-info part is dropped (tokens are often passed as the user name);
    for other URL schemes (ssh://git@host/...) the user name is kept and any password dropped. Query
    strings and fragments are removed. scp-style ``git@host:path`` addresses cannot carry a password
    and are returned unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.netloc:
        return url
    userinfo, at, host = parts.netloc.rpartition("@")
    if at:
        if parts.scheme.lower() in ("http", "https", "ftp", "ftps"):
            netloc = host
        else:
            user = userinfo.partition(":")[0]
            netloc = f"{user}@{host}" if user else host
    else:
        netloc = parts.netloc
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _git(args: list[str], cwd: str) -> subprocess.CompletedProcess[str] | None:
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_TERMINAL_PROMPT": "0"}
    try:
        return subprocess.run(
            ["git", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None


def git_info(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """``commit``, ``branch``, ``dirty`` and ``remote`` of the repository containing ``cwd``.

    ``dirty`` means tracked files differ from HEAD (staged or not); untracked files do not count,
    so tool state such as ``.shipyard/`` inside a checkout does not make every run dirty. ``branch``
    is None on a detached HEAD, ``commit`` None before the first commit; ``remote`` is ``origin``
    (else the first remote) with credentials stripped. All four are None outside a repository.
    """
    info: dict[str, Any] = {"commit": None, "branch": None, "dirty": None, "remote": None}
    directory = os.fspath(cwd) if cwd is not None else _default_dir()
    status = _git(["status", "--porcelain=v2", "--branch", "--untracked-files=no"], directory)
    if status is None or status.returncode != 0:
        return info
    dirty = False
    for line in status.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split(" ", 2)[2].strip()
            info["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(" ", 2)[2].strip()
            info["branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            dirty = True
    info["dirty"] = dirty
    remotes = _git(["config", "--get-regexp", r"^remote\..*\.url$"], directory)
    if remotes is not None and remotes.returncode == 0:
        urls: dict[str, str] = {}
        for line in remotes.stdout.splitlines():
            key, _, url = line.partition(" ")
            urls.setdefault(key[len("remote.") : -len(".url")], url.strip())
        if urls:
            info["remote"] = strip_credentials(urls.get("origin") or next(iter(urls.values())))
    return info


def capture_environment(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything needed to explain or rebuild where a run executed.

    Keys: ``python`` {version, implementation, executable}, ``packages`` {name: version} sorted by
    name, ``platform`` {system, release, machine, os}, ``host`` {hostname}, ``git`` (see
    :func:`git_info`; for the repository containing ``cwd``, default the main script's directory,
    else the working directory), ``command`` (``sys.argv``) and ``captured_at`` (epoch ms, UTC).
    """
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "packages": dict(_packages()),
        "platform": dict(_platform()),
        "host": {"hostname": socket.gethostname()},
        "git": git_info(cwd),
        "command": list(sys.argv),
        "captured_at": now_ms(),
    }


def set_seed(seed: int) -> dict[str, int]:
    """Seed Python's ``random`` and numpy's global RNG, and set PYTHONHASHSEED for child processes.

    (The current process's hash seed is fixed at interpreter start and cannot be changed.)
    Returns what was seeded, for the caller to record as run parameters.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InvalidInput(f"seed must be an integer in [0, 2**32), got {seed!r}", field="seed")
    random.seed(seed)
    import numpy as np

    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    return {"python": seed, "numpy": seed}


def requirements_from_environment(env: dict[str, Any], modules: list[str]) -> list[str]:
    """Pinned ``name==version`` lines for the distributions providing the given import names.

    Import names map to distributions via ``importlib.metadata.packages_distributions()`` (falling
    back to a distribution of the same name, which covers editable installs); versions come from
    ``env["packages"]`` as captured by :func:`capture_environment`. Standard-library modules are
    skipped; a module no recorded distribution provides raises InvalidInput naming it.
    """
    packages: dict[str, str] = env.get("packages") or {}
    recorded = {_normalize(name): (name, version) for name, version in packages.items()}
    mapping = _module_distributions()
    lines: set[str] = set()
    for module in modules:
        top = module.split(".", 1)[0].strip()
        if not top or top in sys.stdlib_module_names:
            continue
        candidates = [*mapping.get(top, []), top]
        found = [recorded[_normalize(d)] for d in dict.fromkeys(candidates) if _normalize(d) in recorded]
        if not found:
            raise InvalidInput(f"no recorded distribution provides the module {module!r}", field="modules")
        if len(found) > 1 and mapping.get(top):  # keep only the mapped ones when the fallback also hit
            mapped = {_normalize(d) for d in mapping[top]}
            found = [nv for nv in found if _normalize(nv[0]) in mapped] or found
        lines.update(f"{name}=={version}" for name, version in found)
    return sorted(lines, key=str.lower)
