"""Gymnasium environments, task sources, wrappers, the registry and the rollout loop (planned: issue 4)."""
