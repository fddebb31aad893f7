"""The dashboard's login: the API token kept in an HttpOnly, SameSite=Strict cookie.

A request without an ``Authorization`` header may authenticate with this cookie. Because a cookie
rides along on any request the browser makes, a state-changing request authenticated by it must
also carry the ``X-Shipyard-CSRF`` header, which a cross-site form cannot set.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

COOKIE = "shipyard_token"
CSRF_HEADER = b"x-shipyard-csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Reachable without a session: the login form, logging out (only drops the cookie) and static assets.
PUBLIC_PREFIXES = ("/login", "/logout", "/ui/static/")


def cookie_token(headers: dict[bytes, bytes]) -> str | None:
    raw = headers.get(b"cookie", b"").decode("latin-1")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header is the same as none
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def is_dashboard_path(path: str) -> bool:
    """Pages (answered with a redirect to the login form) as opposed to the JSON API (answered 401)."""
    return not path.startswith("/api/")


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)
