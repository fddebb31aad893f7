"""The first admin of a store: whoever can open the store directly acts as the local admin and may
create principals, so ``issue_admin_token`` is how a new server gets its first credential."""

from __future__ import annotations

from shipyard.core.errors import NotFound
from shipyard.core.settings import Settings


def issue_admin_token(settings: Settings, name: str = "admin", token_name: str = "bootstrap") -> str:
    """Create ``name`` as a global admin if missing and return a fresh API token for it."""
    from shipyard.services import Services

    services = Services(settings)  # embedded: acts as the local OS user, an admin
    try:
        access = services.access
        try:
            access.get_principal(name)
        except NotFound:
            access.create_principal(name, kind="user")
        access.grant_role(name, "admin")
        return access.create_token(name, name=token_name).token
    finally:
        services.close()
