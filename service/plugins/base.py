"""Deprecated path of the plugin contracts, records and modules: import from service.sdk."""

from service.plugins._moved import shim

__getattr__ = shim(__name__, "service.sdk.base", "service.sdk.records", "service.sdk.modules")
