"""Start-up preloads: ``-sources L=P``, ``-source-L-FIELD V…`` and ``-config FILE.yaml``.

Per-label options are taken out of argv before argparse sees it, because their names depend on
the labels given. Labels from the command line replace the same labels from the YAML file.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from service.sdk.base import KINDS, Kind
from service.settings import Preload

PRELOAD_KINDS: tuple[Kind, ...] = ("source", "model", "scorer")
_PER_LABEL = re.compile(r"^--?(source|model|scorer)-(.+)$")
_NUMBER = re.compile(r"^-\d+(\.\d*)?([eE][-+]?\d+)?$")
_KIND_SECTIONS: dict[str, Kind] = {kind + "s": kind for kind in KINDS}

# (kind, "LABEL-FIELD" as written after "-kind-", the values that followed)
PerLabel = tuple[Kind, str, list[str]]


class PreloadError(Exception):
    """A preload the command line or -config file gets wrong (a usage error)."""


def collect_preloads(
    config_file: Path | None,
    declared: Mapping[Kind, list[str]],
    per_label: list[PerLabel],
) -> tuple[Preload, ...]:
    """Every preload: ``config_file``'s, then ``declared`` (``-sources`` …) with their options."""
    preloads: dict[tuple[Kind, str], Preload] = {}
    if config_file is not None:
        for preload in _load_config_file(config_file):
            preloads[(preload.kind, preload.label)] = preload
    pairs = {kind: _label_pairs(kind, items) for kind, items in declared.items()}
    options: dict[tuple[Kind, str], dict[str, list[str]]] = {}
    for kind, rest, values in per_label:
        labels = sorted(
            (label for label in pairs.get(kind, {}) if rest.startswith(label + "-")),
            key=len,
            reverse=True,
        )
        if not labels:
            raise PreloadError(f"-{kind}-{rest}: no -{kind}s LABEL=PLUGIN declares its label")
        field = rest[len(labels[0]) + 1 :].replace("-", "_")
        config = options.setdefault((kind, labels[0]), {})
        if field in config:
            raise PreloadError(f"-{kind}-{rest} given twice (list fields take several values)")
        config[field] = values
    for kind, labelled in pairs.items():
        for label, plugin in labelled.items():
            config = options.get((kind, label), {})
            preloads[(kind, label)] = Preload(kind, label, plugin, config, from_cli=True)
    return tuple(preloads.values())


def split_per_label(argv: Sequence[str]) -> tuple[list[str], list[PerLabel]]:
    """Take ``-source-LABEL-FIELD VALUE…`` options out of argv."""
    rest: list[str] = []
    found: list[PerLabel] = []
    i = 0
    while i < len(argv):
        match = _PER_LABEL.match(argv[i])
        if match is None:
            rest.append(argv[i])
            i += 1
            continue
        i += 1
        values = []
        while i < len(argv) and (not argv[i].startswith("-") or _NUMBER.match(argv[i])):
            values.append(argv[i])
            i += 1
        found.append((typing.cast(Kind, match.group(1)), match.group(2), values))
    return rest, found


def _label_pairs(kind: Kind, items: list[str]) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in items:
        label, sep, plugin = item.partition("=")
        if not (sep and label and plugin):
            raise PreloadError(f"-{kind}s takes LABEL=PLUGIN, got {item!r}")
        if label in pairs:
            raise PreloadError(f"-{kind}s: label {label!r} given twice")
        pairs[label] = plugin
    return pairs


def _load_config_file(path: Path) -> list[Preload]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise PreloadError(f"cannot read -config {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PreloadError(f"cannot read -config {path}: not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        raise PreloadError(f"-config {path} is not valid YAML: {_yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise PreloadError(f"-config {path}: expected a mapping at the top level")
    preloads = []
    for section, entries in data.items():
        kind = _KIND_SECTIONS.get(section) if isinstance(section, str) else None
        if kind is None or not isinstance(entries, dict):
            raise PreloadError(
                f"-config {path}: unknown section {section!r} "
                "(use sources, models, scorers, modules, each a mapping of labels)"
            )
        for label, entry in entries.items():
            if isinstance(entry, str):
                entry = {"plugin": entry}
            if not (isinstance(entry, dict) and isinstance(entry.get("plugin"), str)):
                raise PreloadError(f"-config {path}: {section}.{label} needs 'plugin: NAME'")
            config = entry.get("config") or {}
            if not isinstance(config, dict) or set(entry) - {"plugin", "config"}:
                raise PreloadError(
                    f"-config {path}: {section}.{label} takes 'plugin' and a 'config' mapping"
                )
            preloads.append(Preload(kind, str(label), entry["plugin"], config))
    return preloads


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """One line: what is wrong and where (PyYAML's own message spans several)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return f"{exc.problem or exc.context}{where}"
    return str(exc).splitlines()[0]
