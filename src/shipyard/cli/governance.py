"""``shipyard review …`` (the version lifecycle) and ``shipyard policy …`` (policies as code and their gates).

A transition a policy blocks prints one line per violated rule — the rule, its policy, the measured
value and the threshold — and exits 1; with ``--json`` the violations are printed as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli.output import State, cell, clip, emit_json, key_values, short_digest, state, table, when
from shipyard.core.errors import PolicyViolation
from shipyard.governance.lifecycle_entities import Policy, PolicyCheck, ReviewStatus

review_app = typer.Typer(no_args_is_help=True)
policy_app = typer.Typer(no_args_is_help=True)

ModelArg = Annotated[str, typer.Argument(help="Registered model name.")]
VersionArg = Annotated[int, typer.Argument(help="Version number.")]
CommentOpt = Annotated[str | None, typer.Option("--message", "-m", help="A comment, journaled with the transition.")]
OverrideOpt = Annotated[
    str | None,
    typer.Option("--override", help="Admin only: the written justification to pass despite policy violations."),
]


def _value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "none" if value is None else str(value)


@contextmanager
def _blocked(st: State) -> Iterator[None]:
    """Render a PolicyViolation as one line per violated rule (or JSON), then exit 1."""
    try:
        yield
    except PolicyViolation as exc:
        violations = exc.details.get("violations", [])
        if st.json:
            emit_json({"error": exc.to_dict()})
        else:
            gate = exc.details.get("gate", "?")
            for v in violations:
                st.err.print(
                    f"blocked at {gate}: {v['rule']} [{v['policy']}@{v['policy_version']}]: "
                    f"measured {_value(v.get('value'))}, threshold {_value(v.get('threshold'))}",
                    soft_wrap=True,
                    markup=False,
                    highlight=False,
                )
        raise typer.Exit(1) from None


def _transition(ctx: typer.Context, call: Callable[[Any], ReviewStatus]) -> None:
    st = state(ctx)
    with _blocked(st):
        status = call(st.client)
    _show_status(st, status)


def _show_status(st: State, status: ReviewStatus) -> None:
    if st.json:
        emit_json(status)
        return
    key_values(
        st,
        [
            ("model", f"{status.model}/{status.version}"),
            ("stage", status.stage),
            ("digest", status.digest),
            ("author", status.author),
            ("submitter", status.submitter),
            ("round", status.round or "-"),
            ("approvals", f"{len(status.approvals)} of {status.required}: {', '.join(status.approvals) or '-'}"),
            ("rejected by", status.rejected_by),
            ("approver roles", "; ".join(" or ".join(r) for r in status.rules.roles) or "any"),
            ("approver groups", "; ".join(" or ".join(g) for g in status.rules.groups) or "any"),
            ("policies", ", ".join(status.rules.policies) or "none (default rule)"),
            ("may approve", ", ".join(status.may_approve) if status.stage == "in_review" else "-"),
        ],
    )
    if status.reviews:
        grid = table("when", "who", "decision", "counts", "comment")
        for r in status.reviews:
            grid.add_row(
                when(r.created_at), cell(r.reviewer), r.decision, "yes" if r.counts else "", cell(clip(r.comment))
            )
        st.out.print(grid)


# --------------------------------------------------------------------------------------------------
# shipyard review …


@review_app.command("submit")
def submit(
    ctx: typer.Context, name: ModelArg, version: VersionArg, message: CommentOpt = None, override: OverrideOpt = None
) -> None:
    """Submit a version for review (from draft or rejected); the review gate's rules must pass."""
    _transition(ctx, lambda c: c.submit_for_review(name, version, message, override_justification=override))


@review_app.command("approve")
def approve(
    ctx: typer.Context, name: ModelArg, version: VersionArg, message: CommentOpt = None, override: OverrideOpt = None
) -> None:
    """Approve a version in review; the approval reaching the required count makes it approved."""
    _transition(ctx, lambda c: c.approve_version(name, version, message, override_justification=override))


@review_app.command("reject")
def reject(ctx: typer.Context, name: ModelArg, version: VersionArg, message: CommentOpt = None) -> None:
    """Reject a version in review (it can be resubmitted)."""
    _transition(ctx, lambda c: c.reject_version(name, version, message))


@review_app.command("retire")
def retire(ctx: typer.Context, name: ModelArg, version: VersionArg, message: CommentOpt = None) -> None:
    """Retire a version (final)."""
    _transition(ctx, lambda c: c.retire_version(name, version, message))


@review_app.command("status")
def status(ctx: typer.Context, name: ModelArg, version: VersionArg) -> None:
    """Stage, approvals so far and required, who may still approve, and the current round's reviews."""
    st = state(ctx)
    _show_status(st, st.client.review_status(name, version))


@review_app.command("history")
def history(ctx: typer.Context, name: ModelArg, version: VersionArg) -> None:
    """Every submission, approval and rejection of a version, with its round."""
    st = state(ctx)
    reviews = st.client.list_reviews(name, version)
    if st.json:
        emit_json(reviews)
        return
    grid = table("round", "when", "who", "decision", "counts", "digest", "comment")
    for r in reviews:
        grid.add_row(
            str(r.round),
            when(r.created_at),
            cell(r.reviewer),
            r.decision,
            "yes" if r.counts else "",
            short_digest(r.digest),
            cell(clip(r.comment)),
        )
    st.out.print(grid)


# --------------------------------------------------------------------------------------------------
# shipyard policy …


def _show_policy(st: State, policy: Policy, with_text: bool = True) -> None:
    if st.json:
        emit_json(policy)
        return
    key_values(
        st,
        [
            ("policy", f"{policy.name} (version {policy.version})"),
            ("enabled", "yes" if policy.enabled else "no"),
            ("digest", policy.digest),
            ("created", f"{when(policy.created_at)} by {policy.created_by or '-'}"),
            ("description", policy.spec.get("description")),
        ],
    )
    if with_text:
        st.out.print(policy.text.rstrip(), markup=False, highlight=False, soft_wrap=True)


@policy_app.command("add")
def add(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The policy's YAML file.", exists=True, dir_okay=False)],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Policy name (default: the YAML's name, else the file's stem).")
    ] = None,
) -> None:
    """Add a policy, or its next version when the text changed (admin)."""
    st = state(ctx)
    text = file.read_text()
    if name is None:
        from shipyard.governance.policies import load_policy

        name = load_policy(text).get("name") or file.stem
    _show_policy(st, st.client.add_policy(name, text), with_text=False)


@policy_app.command("list")
def list_(ctx: typer.Context) -> None:
    """Policies (their current versions), what they select and require."""
    st = state(ctx)
    policies = st.client.list_policies()
    if st.json:
        emit_json(policies)
        return
    grid = table("policy", "version", "enabled", "models", "risk tiers", "approvals", "rules")
    for p in policies:
        applies = p.spec.get("applies_to", {})
        grid.add_row(
            cell(p.name),
            str(p.version),
            "yes" if p.enabled else "no",
            cell(", ".join(applies.get("models") or []) or "all"),
            ", ".join(applies.get("risk_tiers") or []) or "any",
            str(p.spec.get("approvals", {}).get("required", 1)),
            str(len(p.spec.get("rules", []))),
        )
    st.out.print(grid)


@policy_app.command("show")
def show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Policy name.")],
    version: Annotated[int | None, typer.Option("--version", "-v", help="A given version (default: current).")] = None,
) -> None:
    """A policy's YAML and metadata."""
    st = state(ctx)
    _show_policy(st, st.client.get_policy(name, version))


@policy_app.command("enable")
def enable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Policy name.")]) -> None:
    """Enable a policy (admin)."""
    st = state(ctx)
    _show_policy(st, st.client.set_policy_enabled(name, True), with_text=False)


@policy_app.command("disable")
def disable(ctx: typer.Context, name: Annotated[str, typer.Argument(help="Policy name.")]) -> None:
    """Disable a policy: it stops applying at every gate (admin)."""
    st = state(ctx)
    _show_policy(st, st.client.set_policy_enabled(name, False), with_text=False)


@policy_app.command("risk")
def risk(
    ctx: typer.Context,
    name: ModelArg,
    tier: Annotated[str, typer.Argument(help="low, medium, high, or none to clear it.")],
) -> None:
    """Set a registered model's risk tier (admin)."""
    st = state(ctx)
    model = st.client.set_risk_tier(name, None if tier == "none" else tier)
    if st.json:
        emit_json(model)
    else:
        st.out.print(f"model {model.name}: risk tier {model.risk_tier or 'none'}")


@policy_app.command("check")
def check(
    ctx: typer.Context,
    name: ModelArg,
    version: VersionArg,
    gate: Annotated[str, typer.Option("--gate", "-g", help="review, approve or deploy.")] = "deploy",
    strategy: Annotated[
        str | None, typer.Option("--strategy", "-s", help="For the deploy gate: the strategy to judge.")
    ] = None,
) -> None:
    """Dry-run a gate on a version: every rule with its measured value and threshold; exits 1 if it would block."""
    st = state(ctx)
    result: PolicyCheck = st.client.check_version(name, version, gate=gate, strategy=strategy)
    if st.json:
        emit_json(result)
    else:
        grid = table("policy", "rule", "result", "measured", "threshold", "detail")
        for r in result.results:
            grid.add_row(
                cell(f"{r.policy}@{r.policy_version}"),
                cell(r.rule),
                cell("pass" if r.passed else "FAIL", None if r.passed else "bold red"),
                cell(clip(_value(r.value), 30)),
                cell(clip(_value(r.threshold), 30)),
                cell(clip(r.message, 60)),
            )
        if result.results:
            st.out.print(grid)
        verdict = "passes" if result.passed else f"would be blocked by {len(result.violations)} rule(s)"
        scope = ", ".join(result.policies) or "no policy applies"
        st.out.print(f"{name}/{version} {verdict} at the {gate} gate ({scope})")
    if not result.passed:
        raise typer.Exit(1)


@policy_app.command("decisions")
def decisions(
    ctx: typer.Context,
    name: ModelArg,
    version: Annotated[int | None, typer.Option("--version", "-v", help="One version only.")] = None,
) -> None:
    """Stored gate evaluations of a model: who, when, passed or overridden and why."""
    st = state(ctx)
    found = st.client.list_policy_decisions(name, version)
    if st.json:
        emit_json(found)
        return
    grid = table("when", "version", "gate", "result", "actor", "violations / justification")
    for d in found:
        failed = [r["rule"] for r in d.results if not r.get("passed")]
        result = "override" if d.override else "pass" if d.passed else "blocked"
        detail = d.justification if d.override else ", ".join(failed)
        grid.add_row(when(d.created_at), str(d.version), d.gate, result, cell(d.actor), cell(clip(detail, 60)))
    st.out.print(grid)
