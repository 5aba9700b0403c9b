"""Deprecated path: moved to service.sdk.feature (import from service.sdk; docs/plugins.md)."""

from service.plugins._moved import shim

__getattr__ = shim(__name__, "service.sdk.feature")
