"""Metrics, request ids, logs, readiness and the rate limit (docs/observability.md)."""
