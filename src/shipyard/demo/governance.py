"""The demo's governance chapter: a release policy, reviewers, and the champion approved under it.

The demo acts as several people on the embedded store (``acting_as``): the local user trains and
submits; two reviewers approve (the author may not: separation of duties); a deployer moves the
protected ``champion`` alias. Every step is checked by the policy and journaled; the chapter ends
by printing the champion's audit trail and verifying the journal's hash chain and an evidence
bundle offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from shipyard.core.context import acting_as
from shipyard.core.errors import NotFound, PermissionDenied
from shipyard.demo.pipeline import MODEL_NAME

POLICY_NAME = "demo-release"
POLICY = f"""\
description: What a release of the demo classifier needs before it may serve.
applies_to: {{models: [{MODEL_NAME}]}}
approvals: {{required: 2, roles: [reviewer]}}
rules:
  - metric: roc_auc
    min: 0.95
    source: run
  - signature: valid
deployment: {{strategies: [canary, shadow, bluegreen, direct, rolling, ab]}}
"""
REVIEWERS = ("rita", "sam")
DEPLOYER = "ops"


def set_up(client: Any) -> None:
    """The people and the policy (idempotent, so the demo can run again on the same home)."""
    people = {"rita": ("reviewer", ["risk"]), "sam": ("reviewer", ["ml-platform"]), DEPLOYER: ("deployer", [])}
    for name, (role, groups) in people.items():
        try:
            client.get_principal(name)
        except NotFound:
            client.create_principal(name, groups=groups)
        client.grant_role(name, role)
    client.add_policy(POLICY_NAME, POLICY)
    client.set_risk_tier(MODEL_NAME, "medium")
    client.protect_alias("champion", model=MODEL_NAME, role="deployer", require_stage="approved")


def release(client: Any, version: int, console: Console | None = None) -> str:
    """Take ``version`` through review to approved (two reviewers); returns its stage."""
    stage = client.get_version(MODEL_NAME, version).stage
    if stage in ("approved", "deployed"):
        return stage
    if stage != "in_review":
        client.submit_for_review(MODEL_NAME, version, comment="ready for release")
    if console is not None:
        try:  # the author approving their own version: refused, whatever their roles
            client.approve_version(MODEL_NAME, version)
        except PermissionDenied as refused:
            console.print(f"    author approves own version → refused: {refused.message}")
    for reviewer in REVIEWERS:
        with acting_as(reviewer):
            status = client.approve_version(MODEL_NAME, version, comment="metrics, signature and lineage checked")
        if console is not None:
            console.print(
                f"    {reviewer} approves → {len(status.approvals)} of {status.required} approvals, {status.stage}"
            )
    return client.get_version(MODEL_NAME, version).stage


def run_governance(client: Any, version: int, console: Console) -> dict[str, Any]:
    """Approve the champion under the release policy, alias it as the deployer, verify the trail."""
    console.print("\n[bold]Governance[/bold]: release policy, review and approval")
    set_up(client)
    policy = client.get_policy(POLICY_NAME)
    console.print(
        f"  policy {POLICY_NAME} v{policy.version}: 2 approvals by reviewers, roc_auc ≥ 0.95 (from the training "
        "run), a valid signature; @champion only by deployers, only to approved versions"
    )
    check = client.check_version(MODEL_NAME, version, gate="approve")
    for rule in check.results:
        measured = f"{rule.value:.4f}" if isinstance(rule.value, float) else rule.value
        console.print(f"    rule {rule.rule}: {'pass' if rule.passed else 'FAIL'} (measured {measured})")
    stage = release(client, version, console)
    with acting_as(DEPLOYER):
        client.set_alias(MODEL_NAME, "champion", version)
    console.print(f"  {DEPLOYER} (deployer) points @champion at version {version} ({stage})")
    return {"stage": stage, "policy_version": policy.version}


def show_audit_trail(client: Any, version: int, console: Console) -> dict[str, Any]:
    """The champion's audit trail, the chain verified, and an evidence bundle verified offline."""
    console.print(f"\n[bold]Audit trail of {MODEL_NAME}/{version}[/bold]")
    entries = client.audit_log(MODEL_NAME, version=version)
    for entry in entries:
        console.print(f"  #{entry.seq:<5} {entry.actor:<8} {entry.action:<22} {entry.summary}", markup=False)
    verified = client.verify_journal()
    console.print(
        f"  journal chain: {'intact' if verified['ok'] else 'BROKEN at ' + str(verified['first_bad_seq'])} "
        f"({verified['checked']} entries)"
    )
    checkpoint = client.create_checkpoint()
    console.print(f"  signed checkpoint at #{checkpoint.seq} (key {checkpoint.key_id[:16]}…)")
    from shipyard.governance.verify_bundle import summary_lines, verify_bundle

    bundle_dir = Path(client.settings.home) / "evidence"
    bundle_dir.mkdir(parents=True, exist_ok=True)
    path = bundle_dir / f"{MODEL_NAME}-{version}.zip"
    client.download_bundle(MODEL_NAME, version, path)
    offline = verify_bundle(path)  # what an auditor runs: python -m shipyard.governance.verify_bundle FILE
    console.print(f"  evidence bundle {path}")
    for line in summary_lines(offline):
        console.print(f"  {line}", markup=False)
    return {
        "audit_entries": len(entries),
        "actions": [e.action for e in entries],
        "journal_ok": verified["ok"],
        "bundle_ok": offline["ok"],
        "bundle": str(path),
    }
