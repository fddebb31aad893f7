"""Deployments: endpoints, rollout strategies, the statistical judge and the serving runtime's plan."""
