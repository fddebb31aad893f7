"""``shipyard access …`` (users, service accounts, role grants, API tokens, protected aliases) and
``shipyard login / logout / whoami``.

On a fresh server nobody can log in yet: create the first admin against the store directly
(embedded mode acts as the local OS user, an admin): ``shipyard access user create alice --role admin --token``.
"""

from __future__ import annotations

from typing import Annotated

import typer

from shipyard.cli.output import emit_json, key_values, state, table, when
from shipyard.core.errors import InvalidInput, Unauthenticated
from shipyard.governance.entities import Principal

app = typer.Typer(no_args_is_help=True)
user_app = typer.Typer(no_args_is_help=True)
token_app = typer.Typer(no_args_is_help=True)
alias_app = typer.Typer(no_args_is_help=True)
app.add_typer(user_app, name="user", help="Users and service accounts.")
app.add_typer(token_app, name="token", help="API tokens: create (shown once), list, revoke.")
app.add_typer(alias_app, name="alias", help="Protected aliases: who may move them, and to which versions.")

ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Only on this registered model.")]
ExperimentOpt = Annotated[str | None, typer.Option("--experiment", "-e", help="Only on this experiment.")]


def _show_principal(st, p: Principal) -> None:
    if st.json:
        emit_json(p)
        return
    grants = ", ".join(
        g.role if g.scope_type == "global" else f"{g.role} on {g.scope_type} {g.scope}" for g in p.grants
    )
    key_values(
        st,
        [
            ("name", p.name),
            ("kind", p.kind),
            ("groups", ", ".join(p.groups) or "-"),
            ("roles", "admin (local user, embedded)" if p.local_admin else grants or "-"),
            ("disabled", "yes" if p.disabled else "no"),
        ],
    )


@user_app.command("create")
def user_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="User or service-account name.")],
    service: Annotated[bool, typer.Option("--service", help="A service account (a program, not a person).")] = False,
    group: Annotated[list[str] | None, typer.Option("--group", "-g", help="Group membership (repeatable).")] = None,
    role: Annotated[list[str] | None, typer.Option("--role", "-r", help="Grant this global role (repeatable).")] = None,
    token: Annotated[bool, typer.Option("--token", help="Also issue an API token (printed once).")] = False,
    expires_days: Annotated[float | None, typer.Option("--expires-days", help="The token's lifetime.")] = None,
) -> None:
    """Create a user or service account, optionally with roles and a first token (admin)."""
    st = state(ctx)
    client = st.client
    client.create_principal(name, kind="service" if service else "user", groups=group or [])
    for r in role or []:
        client.grant_role(name, r)
    issued = client.create_token(name, expires_in_days=expires_days) if token else None
    principal = client.get_principal(name)
    if st.json:
        emit_json({"principal": principal, "token": issued.token if issued else None})
        return
    _show_principal(st, principal)
    if issued:
        st.out.print(f"token  {issued.token}", markup=False, soft_wrap=True)
        st.err.print("Store this token now: it is not shown again.", markup=False)


@user_app.command("list")
def user_list(ctx: typer.Context) -> None:
    """Users and service accounts with their roles (admin)."""
    st = state(ctx)
    principals = st.client.list_principals()
    if st.json:
        emit_json(principals)
        return
    grid = table("name", "kind", "groups", "roles", "disabled")
    for p in principals:
        roles = ", ".join(g.role if g.scope_type == "global" else f"{g.role}@{g.scope}" for g in p.grants)
        grid.add_row(p.name, p.kind, ", ".join(p.groups) or "-", roles or "-", "yes" if p.disabled else "")
    st.out.print(grid)


@user_app.command("show")
def user_show(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Principal name.")]) -> None:
    st = state(ctx)
    _show_principal(st, st.client.get_principal(name))


@user_app.command("disable")
def user_disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Principal name.")]) -> None:
    """Disable a principal: every one of its tokens stops working at once (admin)."""
    st = state(ctx)
    _show_principal(st, st.client.update_principal(name, disabled=True))


@user_app.command("enable")
def user_enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Principal name.")]) -> None:
    st = state(ctx)
    _show_principal(st, st.client.update_principal(name, disabled=False))


@app.command("grant")
def grant(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="User or service account.")],
    role: Annotated[str, typer.Argument(help="viewer, developer, reviewer, deployer or admin.")],
    model: ModelOpt = None,
    experiment: ExperimentOpt = None,
) -> None:
    """Grant a role globally, or on one model or experiment (admin)."""
    st = state(ctx)
    g = st.client.grant_role(principal, role, model=model, experiment=experiment)
    if st.json:
        emit_json(g)
    else:
        where = "globally" if g.scope_type == "global" else f"on {g.scope_type} {g.scope}"
        st.out.print(f"{principal} is {role} {where}", markup=False)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    principal: Annotated[str, typer.Argument(help="User or service account.")],
    role: Annotated[str, typer.Argument(help="The role to withdraw.")],
    model: ModelOpt = None,
    experiment: ExperimentOpt = None,
) -> None:
    """Withdraw a role grant (admin)."""
    st = state(ctx)
    st.client.revoke_role(principal, role, model=model, experiment=experiment)
    if st.json:
        emit_json({"revoked": True})
    else:
        st.out.print(f"revoked {role} from {principal}", markup=False)


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Argument(help="Whose token (default: yourself).")] = None,
    name: Annotated[str, typer.Option("--name", "-n", help="A label to tell tokens apart.")] = "default",
    expires_days: Annotated[float | None, typer.Option("--expires-days", help="Lifetime in days.")] = None,
) -> None:
    """Issue an API token; the secret is printed once and stored only as a salted hash."""
    st = state(ctx)
    who = principal or st.client.whoami().name
    issued = st.client.create_token(who, name=name, expires_in_days=expires_days)
    if st.json:
        emit_json(issued)
        return
    st.out.print(issued.token, markup=False, soft_wrap=True)
    expiry = when(issued.info.expires_at) if issued.info.expires_at else "never"
    st.err.print(f"token {issued.info.id} for {who}, expires {expiry}; it is not shown again.", markup=False)


@token_app.command("list")
def token_list(
    ctx: typer.Context,
    principal: Annotated[str | None, typer.Argument(help="Whose tokens (default: everyone's, admin).")] = None,
) -> None:
    st = state(ctx)
    tokens = st.client.list_tokens(principal)
    if st.json:
        emit_json(tokens)
        return
    grid = table("id", "principal", "name", "created", "expires", "last used", "revoked")
    for tk in tokens:
        grid.add_row(
            tk.id,
            tk.principal,
            tk.name,
            when(tk.created_at),
            when(tk.expires_at),
            when(tk.last_used_at),
            when(tk.revoked_at) if tk.revoked_at else "",
        )
    st.out.print(grid)


@token_app.command("revoke")
def token_revoke(ctx: typer.Context, token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token (your own, or anyone's as admin); it stops working at once."""
    st = state(ctx)
    tk = st.client.revoke_token(token_id)
    if st.json:
        emit_json(tk)
    else:
        st.out.print(f"revoked token {tk.id} of {tk.principal}", markup=False)


@alias_app.command("protect")
def alias_protect(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="Alias, e.g. production.")],
    model: Annotated[str, typer.Option("--model", "-m", help="Only on this model (default: every model).")] = "*",
    role: Annotated[str, typer.Option("--role", help="The role that may move it.")] = "deployer",
    require: Annotated[
        str | None, typer.Option("--require", help="Lifecycle stage the target version must have reached.")
    ] = "approved",
    any_stage: Annotated[bool, typer.Option("--any-stage", help="Do not require a lifecycle stage.")] = False,
) -> None:
    """Protect an alias: only ROLE may move it, and only to a version that is approved (admin)."""
    st = state(ctx)
    p = st.client.protect_alias(alias, role=role, require_stage=None if any_stage else require, model=model)
    if st.json:
        emit_json(p)
    else:
        stage = f", only to {p.require_stage} versions" if p.require_stage else ""
        st.out.print(f"@{p.alias} on {p.model}: only {p.role}s may move it{stage}", markup=False)


@alias_app.command("unprotect")
def alias_unprotect(
    ctx: typer.Context,
    alias: Annotated[str, typer.Argument(help="Alias.")],
    model: Annotated[str, typer.Option("--model", "-m", help="The model the protection names.")] = "*",
) -> None:
    st = state(ctx)
    st.client.unprotect_alias(alias, model=model)
    if st.json:
        emit_json({"unprotected": True})
    else:
        st.out.print(f"@{alias} on {model} is no longer protected", markup=False)


@alias_app.command("list")
def alias_list(ctx: typer.Context) -> None:
    st = state(ctx)
    found = st.client.list_protected_aliases()
    if st.json:
        emit_json(found)
        return
    grid = table("model", "alias", "role", "requires")
    for p in found:
        grid.add_row(p.model, p.alias, p.role, p.require_stage or "-")
    st.out.print(grid)


# --------------------------------------------------------------------------------------------------
# login / logout / whoami (top-level commands, registered in main.py)


def login(
    ctx: typer.Context,
    token: Annotated[
        str | None, typer.Option("--token", help="The API token (default: read from stdin or a hidden prompt).")
    ] = None,
) -> None:
    """Check a token against the server (--uri / SHIPYARD_URI) and keep it for later commands."""
    from shipyard.client import Client
    from shipyard.client.credentials import save_token

    st = state(ctx)
    if not st.uri:
        raise InvalidInput("login needs a server: pass --uri URL or set SHIPYARD_URI", field="uri")
    if token is None:
        import sys

        token = sys.stdin.readline().strip() if not sys.stdin.isatty() else typer.prompt("API token", hide_input=True)
    if not token:
        raise Unauthenticated("no token given")
    with Client(st.uri, token=token) as client:
        me = client.whoami()
    path = save_token(st.uri, token)
    if st.json:
        emit_json({"principal": me, "credentials": str(path)})
    else:
        st.out.print(f"logged in to {st.uri} as {me.name}; token kept in {path}", markup=False)


def logout(ctx: typer.Context) -> None:
    """Forget the token kept for the server."""
    from shipyard.client.credentials import forget_token

    st = state(ctx)
    if not st.uri:
        raise InvalidInput("logout needs a server: pass --uri URL or set SHIPYARD_URI", field="uri")
    forgotten = forget_token(st.uri)
    if st.json:
        emit_json({"forgotten": forgotten})
    else:
        st.out.print(f"forgot the token for {st.uri}" if forgotten else f"no token kept for {st.uri}", markup=False)


def whoami(ctx: typer.Context) -> None:
    """Who this command line acts as, and its roles."""
    st = state(ctx)
    _show_principal(st, st.client.whoami())
