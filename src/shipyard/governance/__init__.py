"""Governance and security: identities and roles, lifecycle and approvals, policies, model cards,
fairness and explanations, signing and audit, privacy (erasure and retention)."""
