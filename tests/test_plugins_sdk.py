"""Plugin authors import from service.sdk; the old paths still work, with a warning."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import service.sdk as sdk
from service.sdk import base, config, feature, modules, offload, progress, records

OLD = {
    "service.plugins.base": (base, records, modules),
    "service.plugins.config": (config,),
    "service.plugins.feature": (feature,),
    "service.plugins.progress": (progress,),
    "service.plugins.offload": (offload,),
}


def test_the_sdk_exports_what_a_plugin_needs() -> None:
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None, name
    assert sdk.Source is base.Source
    assert sdk.Record is records.Record
    assert sdk.Module is modules.Module
    assert sdk.field is config.field


@pytest.mark.parametrize("old", sorted(OLD))
def test_an_old_path_warns_and_gives_the_same_objects(old: str) -> None:
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match="import from service.sdk"):
        module = importlib.import_module(old)
    for new in OLD[old]:
        public = [n for n in vars(new) if not n.startswith("_")]
        for name in public:
            assert getattr(module, name) is getattr(new, name), (old, name)
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = module.Nope


def test_a_plugin_written_for_the_old_paths_still_loads() -> None:
    """As an external plugin would: a class defined against the old import paths."""
    code = (
        "import warnings\n"
        "warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n"
        "    from service.plugins.base import Source\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        "from service.plugins.base import Source, SourceContext, Record\n"
        "from service.plugins.config import field\n"
        "import service.sdk as sdk\n"
        "print(Source is sdk.Source and Record is sdk.Record and field is sdk.field)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "warned: service.plugins.base is deprecated" in out
    assert out.strip().endswith("True")


def test_the_sdk_loads_without_the_server() -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, service.sdk; print(sorted({m.split('.')[1] for m in sys.modules"
            " if m.startswith('service.')}), 'aiohttp' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert out.strip() == "['kernel', 'sdk'] False"
