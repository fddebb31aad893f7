"""API operations of identities and access: principals, role grants, API tokens, protected aliases."""

from __future__ import annotations

from shipyard.api.operation import Operation

ACCESS_OPERATIONS: tuple[Operation, ...] = (
    Operation("whoami", "access", "GET", "/auth/whoami", "The calling identity and its roles", "authenticated"),
    Operation("create_principal", "access", "POST", "/principals", "Create a user or service account", "admin"),
    Operation("list_principals", "access", "GET", "/principals", "Users and service accounts", "admin"),
    Operation("get_principal", "access", "GET", "/principals/{name}", "A principal with its grants", "admin"),
    Operation("update_principal", "access", "PATCH", "/principals/{name}", "Groups; disable or enable", "admin"),
    Operation("grant_role", "access", "POST", "/principals/{principal}/roles", "Grant a role", "admin"),
    Operation("revoke_role", "access", "POST", "/principals/{principal}/roles/revoke", "Revoke a role", "admin"),
    Operation(
        "create_token", "access", "POST", "/principals/{principal}/tokens", "Issue an API token", "authenticated"
    ),
    Operation("list_tokens", "access", "GET", "/tokens", "API tokens (never their secrets)", "authenticated"),
    Operation("revoke_token", "access", "DELETE", "/tokens/{token_id}", "Revoke an API token", "authenticated"),
    Operation("protect_alias", "access", "PUT", "/protected-aliases/{alias}", "Protect an alias", "admin"),
    Operation("unprotect_alias", "access", "DELETE", "/protected-aliases/{alias}", "Unprotect an alias", "admin"),
    Operation("list_protected_aliases", "access", "GET", "/protected-aliases", "Protected aliases", "read"),
)
