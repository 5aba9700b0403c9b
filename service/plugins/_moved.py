"""Old import paths of the plugin contracts, kept working for external plugins with a warning.

The contracts moved to :mod:`service.sdk` (docs/plugins.md, "Import paths"). Each old module
is a shim whose names resolve in the new modules, so ``from service.plugins.base import Source``
gives the very same class as ``from service.sdk import Source``.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from typing import Any


def shim(old: str, *new: str) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``old`` that finds names in the ``new`` modules."""
    warnings.warn(
        f"{old} is deprecated: import from service.sdk instead (docs/plugins.md)",
        DeprecationWarning,
        stacklevel=3,
    )
    modules = [importlib.import_module(name) for name in new]

    def __getattr__(name: str) -> Any:
        for module in modules:
            if hasattr(module, name):
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return __getattr__
