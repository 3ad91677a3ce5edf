"""Argo Rollouts: reading (and later driving) a Rollout the way `kubectl argo rollouts` does."""
