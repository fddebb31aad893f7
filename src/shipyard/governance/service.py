"""Model version lifecycle, reviews and approvals, policies as code and their gates.

Transitions (``submit_for_review``, ``approve_version``, ``reject_version``, ``retire_version``)
change ``model_versions.stage`` and are journaled in the same transaction with actor and comment
(entity ``model``, payload ``{"version", "from", "to", "comment", ...}``). Review decisions are
``version_reviews`` rows bound to the version's digest; a submission is a row too (decision
``submit``), which opens a new round. Gates (review, approve, deploy) judge the rules of every
enabled policy that applies to the model; each evaluation is stored in ``policy_decisions`` and
journaled, a blocked one raises PolicyViolation listing every violated rule, and an admin may
override it with a written justification (journaled as ``policy.override``).

The deployment service calls :meth:`deploy_gate` before writing a deployment and :meth:`mark_live`
inside the transaction where a version goes live (both wired in ``services.py``).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from shipyard.core.context import current_actor
from shipyard.core.errors import Conflict, InvalidInput, NotFound, PolicyViolation
from shipyard.core.hashing import hash_bytes
from shipyard.core.ids import new_id
from shipyard.core.names import MAX_DESCRIPTION, check_name, check_text
from shipyard.core.time import now_ms
from shipyard.deploy.entities import STRATEGIES
from shipyard.governance import lifecycle
from shipyard.governance.lifecycle_entities import (
    ApproverRule,
    Policy,
    PolicyCheck,
    PolicyDecision,
    Review,
    ReviewStatus,
    RuleResult,
)
from shipyard.governance.policies import GATES, RISK_TIERS, load_policy
from shipyard.governance.policy_rules import (
    Evidence,
    PolicyRef,
    Subject,
    applies,
    evidence_results,
    strategy_results,
)
from shipyard.registry.entities import RegisteredModel
from shipyard.store import schema as t
from shipyard.store.database import Tx

MAX_POLICY_TEXT = 100_000
MAX_NUMBER = 2**31 - 1


class GovernanceService:
    def __init__(self, services: Any):
        # the assembled Services: this service reaches the store and its sibling services through it
        self.services = services
        self.db = services.db

    # ----------------------------------------------------------------------------------------------
    # Lifecycle transitions

    def submit_for_review(
        self, name: str, version: int, comment: str | None = None, override_justification: str | None = None
    ) -> ReviewStatus:
        """draft | rejected -> in_review: open a review round (earlier approvals stop counting).
        The review gate's rules must pass (or an admin overrides them)."""
        comment = _comment(comment)
        self._check_override(override_justification, name)
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
        lifecycle.check_transition("submit", subject.stage, name, version)
        gate = self._gate(subject, "review", override_justification)
        with self.db.write() as tx:
            subject = self._subject(tx.conn, name, version, lock=True)
            target = lifecycle.check_transition("submit", subject.stage, name, version)
            at = self._insert_review(tx, subject, "submit", comment)
            self._set_stage(tx, subject, target)
            rounds = self._round_count(tx.conn, subject.version_id)
            tx.journal(
                "version.submitted",
                "model",
                subject.model_id,
                {
                    "version": version,
                    "from": subject.stage,
                    "to": target,
                    "comment": comment,
                    "digest": subject.digest,
                    "round": rounds,
                    "at": at,
                },
            )
            self._store_gate(tx, subject, gate, override_justification)
        return self.review_status(name, version)

    def approve_version(
        self, name: str, version: int, comment: str | None = None, override_justification: str | None = None
    ) -> ReviewStatus:
        """Record the caller's approval; the one that reaches the required count moves the version to
        approved, provided the approve gate passes (or an admin overrides it)."""
        comment = _comment(comment)
        self._check_override(override_justification, name)
        reviewer = current_actor()
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
        lifecycle.check_transition("approve", subject.stage, name, version)
        policies = self._policies(subject)
        rule = lifecycle.approver_rule(policies, subject.risk_tier)
        status = self.review_status(name, version)
        self._check_reviewer(subject, status, rule, reviewer)
        completes = len(status.approvals) + 1 >= rule.required
        gate = self._gate(subject, "approve", override_justification, policies=policies) if completes else None
        with self.db.write() as tx:
            subject = self._subject(tx.conn, name, version, lock=True)
            lifecycle.check_transition("approve", subject.stage, name, version)
            fresh = self._round_state(tx.conn, subject)
            if reviewer in fresh["voters"]:  # a concurrent vote by the same reviewer
                raise Conflict(f"{reviewer!r} already reviewed version {version} of {name!r} in this round")
            self._insert_review(tx, subject, "approve", comment)
            approvals = [*fresh["approvals"], reviewer]
            tx.journal(
                "version.review",
                "model",
                subject.model_id,
                {
                    "version": version,
                    "decision": "approve",
                    "comment": comment,
                    "digest": subject.digest,
                    "approvals": len(approvals),
                    "required": rule.required,
                },
            )
            if len(approvals) >= rule.required:
                if gate is None:  # a concurrent approval made this one the last: judge the gate now
                    gate = self._evaluate(subject, "approve", policies)
                    if gate.violations and override_justification is None:
                        raise violation(gate)
                self._set_stage(tx, subject, "approved")
                tx.journal(
                    "version.approved",
                    "model",
                    subject.model_id,
                    {
                        "version": version,
                        "from": subject.stage,
                        "to": "approved",
                        "comment": comment,
                        "digest": subject.digest,
                        "approvers": approvals,
                        "required": rule.required,
                        "policies": rule.policies,
                    },
                )
                self._store_gate(tx, subject, gate, override_justification)
        return self.review_status(name, version)

    def reject_version(self, name: str, version: int, comment: str | None = None) -> ReviewStatus:
        """One rejection by an eligible reviewer moves the version to rejected (it can be resubmitted)."""
        comment = _comment(comment)
        reviewer = current_actor()
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
        lifecycle.check_transition("reject", subject.stage, name, version)
        rule = lifecycle.approver_rule(self._policies(subject), subject.risk_tier)
        status = self.review_status(name, version)
        self._check_reviewer(subject, status, rule, reviewer)
        with self.db.write() as tx:
            subject = self._subject(tx.conn, name, version, lock=True)
            target = lifecycle.check_transition("reject", subject.stage, name, version)
            self._insert_review(tx, subject, "reject", comment)
            self._set_stage(tx, subject, target)
            tx.journal(
                "version.rejected",
                "model",
                subject.model_id,
                {"version": version, "from": subject.stage, "to": target, "comment": comment, "digest": subject.digest},
            )
        return self.review_status(name, version)

    def retire_version(self, name: str, version: int, comment: str | None = None) -> ReviewStatus:
        """Any stage but retired -> retired (final: a retired version is never deployed under a policy)."""
        comment = _comment(comment)
        with self.db.write() as tx:
            subject = self._subject(tx.conn, name, version, lock=True)
            target = lifecycle.check_transition("retire", subject.stage, name, version)
            self._set_stage(tx, subject, target)
            tx.journal(
                "version.stage",
                "model",
                subject.model_id,
                {"version": version, "from": subject.stage, "to": target, "comment": comment},
            )
        return self.review_status(name, version)

    # ----------------------------------------------------------------------------------------------
    # Reviews

    def list_reviews(self, name: str, version: int) -> list[Review]:
        """Every submission, approval and rejection of a version, oldest first, with its round."""
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
            return lifecycle.rounds(name, version, subject.digest, self._review_rows(conn, subject.version_id))

    def review_status(self, name: str, version: int) -> ReviewStatus:
        """Where the review stands: approvals that count, how many are required, who may still approve."""
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
            reviews = lifecycle.rounds(name, version, subject.digest, self._review_rows(conn, subject.version_id))
        rule = lifecycle.approver_rule(self._policies(subject), subject.risk_tier)
        current = lifecycle.current_round(reviews)
        submission = current[0] if current else None
        status = ReviewStatus(
            model=name,
            version=version,
            stage=subject.stage,
            digest=subject.digest,
            author=subject.author,
            submitter=submission.reviewer if submission else None,
            submitted_at=submission.created_at if submission else None,
            round=submission.round if submission else 0,
            required=rule.required,
            approvals=[r.reviewer for r in current if r.counts],
            rejected_by=next((r.reviewer for r in reversed(current) if r.decision == "reject"), None),
            rules=rule,
            reviews=current,
        )
        if subject.stage == "in_review":
            status.may_approve = self._may_approve(subject, status, rule)
        return status

    def _may_approve(self, subject: Subject, status: ReviewStatus, rule: ApproverRule) -> list[str]:
        """Known principals who may still approve: one query for every principal's roles and groups."""
        p, g = t.principals, t.role_grants
        in_scope = sa.or_(g.c.scope_type == "global", sa.and_(g.c.scope_type == "model", g.c.scope == subject.name))
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(p.c.name, p.c.groups, g.c.role)
                .select_from(p.outerjoin(g, sa.and_(g.c.principal_id == p.c.id, in_scope)))
                .where(p.c.disabled_at.is_(None))
            ).all()
        roles: dict[str, set[str]] = {}
        groups: dict[str, list[str]] = {}
        for row in rows:
            roles.setdefault(row.name, set()).update([row.role] if row.role else [])
            groups[row.name] = list(row.groups or [])
        local_admin = self.services.access.local_admin
        if local_admin:  # embedded mode: the local OS user holds every permission
            roles[local_admin] = {"admin"}
            groups.setdefault(local_admin, [])
        voted = {r.reviewer for r in status.reviews if r.decision != "submit"}
        return [
            name
            for name in sorted(roles)
            if name not in voted
            and name != status.submitter
            and lifecycle.ineligibility(name, sorted(roles[name]), groups[name], rule, subject.author) is None
        ]

    def _check_reviewer(self, subject: Subject, status: ReviewStatus, rule: ApproverRule, reviewer: str) -> None:
        access = self.services.access
        if reviewer == status.submitter:
            raise lifecycle.denied(
                "they submitted it for review (separation of duties)", subject.name, subject.version, reviewer
            )
        roles = access.roles_of(reviewer, model=subject.name)
        reason = lifecycle.ineligibility(reviewer, roles, access.groups_of(reviewer), rule, subject.author)
        if reason is not None:
            raise lifecycle.denied(reason, subject.name, subject.version, reviewer)
        if any(r.reviewer == reviewer and r.decision != "submit" for r in status.reviews):
            raise Conflict(
                f"{reviewer!r} already reviewed version {subject.version} of {subject.name!r} in this round "
                "(one vote per reviewer)",
                field="reviewer",
            )

    # ----------------------------------------------------------------------------------------------
    # Policies

    def add_policy(self, name: str, text: str) -> Policy:
        """Store a policy's YAML (admin). The same text as the current version returns it; new text
        becomes the next version (enabled unless the policy was disabled)."""
        self.services.access.require("admin")
        check_name(name, "name")
        if not isinstance(text, str):
            raise InvalidInput("policy text must be a string of YAML", field="text")
        check_text(text, "text", MAX_POLICY_TEXT)
        spec = load_policy(text)
        if spec.get("name") not in (None, name):
            raise InvalidInput(
                f"the YAML names the policy {spec['name']!r} but it is being added as {name!r}", field="name"
            )
        spec["name"] = name
        digest = hash_bytes(text.encode())
        with self.db.write() as tx:
            latest = self._policy_row(tx.conn, name, required=False)
            if latest is not None and latest.digest == digest:
                return _policy(latest)
            number = 1 if latest is None else latest.version + 1
            enabled = True if latest is None else bool(latest.enabled)
            values = {
                "id": new_id(),
                "name": name,
                "version": number,
                "text": text,
                "spec": spec,
                "digest": digest,
                "enabled": enabled,
                "created_by": tx.actor,
                "created_at": now_ms(),
            }
            tx.conn.execute(t.policies.insert().values(**values))
            tx.journal("policy.added", "policy", name, {"version": number, "digest": digest, "enabled": enabled})
        return self.get_policy(name, number)

    def list_policies(self) -> list[Policy]:
        """The current (latest) version of every policy."""
        p = t.policies
        latest = sa.select(p.c.name, sa.func.max(p.c.version).label("version")).group_by(p.c.name).subquery()
        with self.db.read() as conn:
            rows = conn.execute(
                sa.select(p)
                .join(latest, sa.and_(p.c.name == latest.c.name, p.c.version == latest.c.version))
                .order_by(p.c.name)
            ).all()
        return [_policy(r) for r in rows]

    def get_policy(self, name: str, version: int | None = None) -> Policy:
        with self.db.read() as conn:
            return _policy(self._policy_row(conn, name, version))

    def list_policy_versions(self, name: str) -> list[Policy]:
        with self.db.read() as conn:
            rows = conn.execute(sa.select(t.policies).where(t.policies.c.name == name).order_by(t.policies.c.version))
            found = [_policy(r) for r in rows]
        if not found:
            raise NotFound(f"policy {name!r} not found", field="name")
        return found

    def set_policy_enabled(self, name: str, enabled: bool) -> Policy:
        """Enable or disable a policy (every version of it; admin)."""
        self.services.access.require("admin")
        if not isinstance(enabled, bool):
            raise InvalidInput("enabled must be true or false", field="enabled")
        with self.db.write() as tx:
            latest = self._policy_row(tx.conn, name)
            if bool(latest.enabled) != enabled:
                tx.conn.execute(t.policies.update().where(t.policies.c.name == name).values(enabled=enabled))
                tx.journal(
                    "policy.enabled" if enabled else "policy.disabled", "policy", name, {"version": latest.version}
                )
        return self.get_policy(name)

    def set_risk_tier(self, name: str, tier: str | None) -> RegisteredModel:
        """Set (or clear, with None) a registered model's risk tier: low, medium or high (admin)."""
        self.services.access.require("admin", model=name)
        if tier is not None and tier not in RISK_TIERS:
            raise InvalidInput(f"risk tier must be one of {', '.join(RISK_TIERS)}, not {tier!r}", field="tier")
        with self.db.write() as tx:
            row = self.services.registry._model_row(tx.conn, name, lock=True)
            if row.risk_tier != tier:
                tx.conn.execute(
                    t.registered_models.update()
                    .where(t.registered_models.c.id == row.id)
                    .values(risk_tier=tier, updated_at=now_ms())
                )
                tx.journal(
                    "model.risk_tier",
                    "model",
                    row.id,
                    {"before": {"risk_tier": row.risk_tier}, "after": {"risk_tier": tier}},
                )
        return self.services.registry.get_model(name)

    def check_version(self, name: str, version: int, gate: str = "deploy", strategy: str | None = None) -> PolicyCheck:
        """A dry run of ``gate`` (review, approve or deploy; with ``strategy`` for deploy): every rule result."""
        if gate not in GATES:
            raise InvalidInput(f"gate must be one of {', '.join(GATES)}, not {gate!r}", field="gate")
        if strategy is not None and strategy not in STRATEGIES:
            raise InvalidInput(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}", field="strategy")
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
        return self._evaluate(subject, gate, self._policies(subject), strategy)

    def list_policy_decisions(self, name: str, version: int | None = None) -> list[PolicyDecision]:
        """Stored gate evaluations of a model (or one version), oldest first."""
        d, v = t.policy_decisions, t.model_versions
        with self.db.read() as conn:
            model = self.services.registry._model_row(conn, name)
            query = (
                sa.select(d, v.c.version)
                .join(v, v.c.id == d.c.version_id)
                .where(v.c.model_id == model.id)
                .order_by(d.c.created_at, d.c.id)
            )
            if version is not None:
                _check_number(version, "version")
                query = query.where(v.c.version == version)
            rows = conn.execute(query).all()
        return [
            PolicyDecision(
                id=r.id,
                model=name,
                version=r.version,
                gate=r.gate,
                passed=r.passed,
                override=r.override,
                justification=r.justification,
                actor=r.actor,
                created_at=r.created_at,
                results=list(r.results or []),
            )
            for r in rows
        ]

    # ----------------------------------------------------------------------------------------------
    # The deployment gate (wired into DeploymentService by services.py)

    def deploy_gate(self, model: str, version: int, strategy: str, override_justification: str | None = None) -> None:
        """Refuse a deployment policy says is not deployable. Without an applying policy anything deploys."""
        with self.db.read() as conn:
            subject = self._subject(conn, model, version)
        policies = self._policies(subject)
        if not policies:
            return
        self._check_override(override_justification, model)
        check = self._gate(subject, "deploy", override_justification, policies=policies, strategy=strategy)
        with self.db.write() as tx:
            self._store_gate(tx, subject, check, override_justification)

    def mark_live(self, tx: Tx, model: str, version: int, endpoint: str) -> None:
        """Inside the deployment's transaction: an approved version that goes live becomes deployed."""
        subject = self._subject(tx.conn, model, version, lock=True)
        if subject.stage != "approved":
            return
        self._set_stage(tx, subject, "deployed")
        tx.journal(
            "version.stage",
            "model",
            subject.model_id,
            {"version": version, "from": "approved", "to": "deployed", "comment": f"live on endpoint {endpoint}"},
        )

    # ----------------------------------------------------------------------------------------------
    # Gate evaluation

    def _evaluate(
        self, subject: Subject, gate: str, policies: list[PolicyRef], strategy: str | None = None
    ) -> PolicyCheck:
        ev = Evidence(self.services, subject)
        results: list[RuleResult] = []
        if gate == "deploy" and policies:
            results.extend(self._deployable(subject, policies))
        for policy in policies:
            results.extend(evidence_results(policy, gate, ev))
            if gate == "deploy":
                results.extend(strategy_results(policy, ev, strategy))
        violations = [r for r in results if not r.passed]
        return PolicyCheck(
            model=subject.name,
            version=subject.version,
            gate=gate,
            passed=not violations,
            policies=[p.label for p in policies],
            results=results,
            violations=violations,
        )

    def _deployable(self, subject: Subject, policies: list[PolicyRef]) -> list[RuleResult]:
        """Under a policy a version deploys only when approved (or already deployed) by enough approvals
        bound to its current digest."""
        rule = lifecycle.approver_rule(policies, subject.risk_tier)
        first = policies[0]
        ok_stage = subject.stage in ("approved", "deployed")
        with self.db.read() as conn:
            reviews = lifecycle.rounds(
                subject.name, subject.version, subject.digest, self._review_rows(conn, subject.version_id)
            )
        approvals = sum(1 for r in lifecycle.current_round(reviews) if r.counts)
        return [
            RuleResult(
                policy=first.name,
                policy_version=first.version,
                rule="approved",
                kind="stage",
                gate="deploy",
                passed=ok_stage,
                value=subject.stage,
                threshold="approved",
                message=f"version {subject.version} is {subject.stage}"
                + ("" if ok_stage else "; it must be approved before it is deployed"),
            ),
            RuleResult(
                policy=first.name,
                policy_version=first.version,
                rule="approvals",
                kind="approvals",
                gate="deploy",
                passed=approvals >= rule.required,
                value=approvals,
                threshold=rule.required,
                message=f"{approvals} approval(s) bound to digest {subject.digest[:19]}…, {rule.required} required",
            ),
        ]

    def _gate(
        self,
        subject: Subject,
        gate: str,
        override_justification: str | None,
        *,
        policies: list[PolicyRef] | None = None,
        strategy: str | None = None,
    ) -> PolicyCheck:
        """Judge ``gate``; a violation without an override is stored and raised as PolicyViolation."""
        policies = self._policies(subject) if policies is None else policies
        check = self._evaluate(subject, gate, policies, strategy)
        if check.violations and override_justification is None:
            with self.db.write() as tx:
                self._store_gate(tx, subject, check, None)
            raise violation(check)
        return check

    def _store_gate(self, tx: Tx, subject: Subject, check: PolicyCheck, justification: str | None) -> None:
        if not check.policies:  # nothing applied: nothing was judged
            return
        override = bool(check.violations) and justification is not None
        decision_id = new_id()
        tx.conn.execute(
            t.policy_decisions.insert().values(
                id=decision_id,
                version_id=subject.version_id,
                gate=check.gate,
                passed=check.passed,
                results=[r.model_dump(mode="json") for r in check.results],
                override=override,
                justification=justification if override else None,
                actor=tx.actor,
                created_at=now_ms(),
            )
        )
        summary = [_brief(r) for r in check.violations]
        payload = {
            "version": subject.version,
            "gate": check.gate,
            "passed": check.passed,
            "policies": check.policies,
            "decision_id": decision_id,
            "violations": summary,
        }
        tx.journal("policy.evaluated", "model", subject.model_id, payload)
        if override:
            tx.journal(
                "policy.override",
                "model",
                subject.model_id,
                {**payload, "justification": justification, "digest": subject.digest},
            )

    def _check_override(self, justification: str | None, model: str) -> None:
        if justification is None:
            return
        if not isinstance(justification, str) or not justification.strip():
            raise InvalidInput(
                "an override needs a written justification (override_justification is empty)",
                field="override_justification",
            )
        check_text(justification, "override_justification", MAX_DESCRIPTION)
        self.services.access.require_role("admin", model=model)

    # ----------------------------------------------------------------------------------------------
    # Store helpers

    def _subject(self, conn: sa.Connection, name: str, version: int, lock: bool = False) -> Subject:
        _check_number(version, "version")
        model, row = self.services.registry._version_row(conn, name, version)
        if lock and conn.dialect.name == "postgresql":
            row = conn.execute(
                sa.select(t.model_versions).where(t.model_versions.c.id == row.id).with_for_update()
            ).one()
        return Subject(
            model_id=model.id,
            name=name,
            version=version,
            version_id=row.id,
            digest=row.digest,
            stage=row.stage,
            author=row.created_by,
            source_run_id=row.source_run_id,
            data_refs=list(row.data_refs or []),
            risk_tier=model.risk_tier,
        )

    def applying_policies(self, name: str, version: int) -> tuple[str, list[PolicyRef]]:
        """The version's lifecycle stage and the policies that select its model (none: no gate applies)."""
        with self.db.read() as conn:
            subject = self._subject(conn, name, version)
        return subject.stage, self._policies(subject)

    def _policies(self, subject: Subject) -> list[PolicyRef]:
        """The latest version of every enabled policy that selects the subject's model."""
        return [
            PolicyRef(p.name, p.version, p.spec)
            for p in self.list_policies()
            if p.enabled and applies(p.spec, subject.name, subject.risk_tier)
        ]

    def _policy_row(self, conn: sa.Connection, name: str, version: int | None = None, required: bool = True) -> Any:
        query = sa.select(t.policies).where(t.policies.c.name == name)
        if version is not None:
            _check_number(version, "version")
            query = query.where(t.policies.c.version == version)
        row = conn.execute(query.order_by(t.policies.c.version.desc()).limit(1)).first()
        if row is None and required:
            what = f"policy {name!r}" + (f" has no version {version}" if version is not None else " not found")
            raise NotFound(what, field="version" if version is not None else "name")
        return row

    def _review_rows(self, conn: sa.Connection, version_id: str) -> list[Any]:
        r = t.version_reviews
        return conn.execute(sa.select(r).where(r.c.version_id == version_id).order_by(r.c.created_at, r.c.id)).all()

    def _round_state(self, conn: sa.Connection, subject: Subject) -> dict[str, Any]:
        reviews = lifecycle.rounds(
            subject.name, subject.version, subject.digest, self._review_rows(conn, subject.version_id)
        )
        current = lifecycle.current_round(reviews)
        return {
            "approvals": [r.reviewer for r in current if r.counts],
            "voters": {r.reviewer for r in current if r.decision != "submit"},
        }

    def _round_count(self, conn: sa.Connection, version_id: str) -> int:
        r = t.version_reviews
        return int(
            conn.execute(
                sa.select(sa.func.count()).where(r.c.version_id == version_id, r.c.decision == "submit")
            ).scalar_one()
        )

    def _insert_review(self, tx: Tx, subject: Subject, decision: str, comment: str | None) -> int:
        # Rounds are ordered by time: keep each version's review times strictly increasing (the version
        # row is locked, or SQLite's write lock is held), so a vote never ties with the submission.
        r = t.version_reviews
        last = tx.conn.execute(
            sa.select(sa.func.max(r.c.created_at)).where(r.c.version_id == subject.version_id)
        ).scalar()
        at = max(now_ms(), (last or 0) + 1)
        tx.conn.execute(
            r.insert().values(
                id=new_id(),
                version_id=subject.version_id,
                digest=subject.digest,
                reviewer=tx.actor,
                decision=decision,
                comment=comment,
                created_at=at,
            )
        )
        return at

    def _set_stage(self, tx: Tx, subject: Subject, stage: str) -> None:
        tx.conn.execute(
            t.model_versions.update()
            .where(t.model_versions.c.id == subject.version_id)
            .values(stage=stage, updated_at=now_ms())
        )


def _check_number(value: Any, field: str) -> None:
    """Version numbers are positive 32-bit integers; anything else is bad input, never a database error."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_NUMBER:
        raise InvalidInput(f"{field} must be a whole number between 1 and {MAX_NUMBER}, not {value!r}", field=field)


def _comment(comment: str | None) -> str | None:
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InvalidInput("comment must be a string", field="comment")
    return check_text(comment, "comment", MAX_DESCRIPTION).strip() or None


def _policy(row: Any) -> Policy:
    return Policy(
        name=row.name,
        version=row.version,
        text=row.text,
        spec=row.spec,
        digest=row.digest,
        enabled=bool(row.enabled),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _brief(r: RuleResult) -> dict[str, Any]:
    return {
        "policy": r.policy,
        "policy_version": r.policy_version,
        "rule": r.rule,
        "value": r.value,
        "threshold": r.threshold,
        "message": r.message,
    }


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return "none" if value is None else str(value)


def violation(check: PolicyCheck) -> PolicyViolation:
    """The error of a blocked gate: every violated rule with its measured value and threshold."""
    parts = [
        f"{r.rule} [{r.policy}@{r.policy_version}]: measured {_show(r.value)}, threshold {_show(r.threshold)}"
        for r in check.violations
    ]
    return PolicyViolation(
        f"version {check.version} of {check.model!r} is blocked at the {check.gate} gate by "
        f"{len(parts)} rule(s): " + "; ".join(parts),
        field="policy",
        details={
            "model": check.model,
            "version": check.version,
            "gate": check.gate,
            "violations": [_brief(r) for r in check.violations],
        },
    )
